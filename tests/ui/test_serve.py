"""`serve()` puts the app on a local web page: started in a subprocess, it answers a GET on
127.0.0.1 with the textual-serve page, and stops when terminated."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from orchestrator_tui.ui.serve import app_command


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(url: str, timeout: float = 20.0) -> tuple[int, str]:
    """The status and body of the first answer, retrying while the server starts."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                return answer.status, answer.read().decode()
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


async def first_frame(url: str, text: bytes, timeout: float = 30.0) -> bool:
    """Connect as the browser page does and read until the app has drawn `text`."""
    import aiohttp

    seen = b""
    async with aiohttp.ClientSession() as client, client.ws_connect(url) as socket:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                message = await socket.receive(timeout=deadline - time.monotonic())
            except TimeoutError:
                break
            if message.type == aiohttp.WSMsgType.BINARY:
                seen += message.data
            elif message.type == aiohttp.WSMsgType.TEXT:
                seen += message.data.encode()
            else:
                break
            if text in seen:
                return True
    return False


async def test_serve_answers_a_page_and_runs_the_app(workspace: Path, tmp_path: Path) -> None:
    port = free_port()
    code = ("import sys; from pathlib import Path; from orchestrator_tui.ui.serve import serve;"
            "serve(Path(sys.argv[1]), Path(sys.argv[2]), port=int(sys.argv[3]))")
    server = subprocess.Popen([sys.executable, "-c", code, str(workspace),
                               str(tmp_path / "state.db"), str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        status, page = await asyncio.to_thread(get, f"http://127.0.0.1:{port}/")
        assert status == 200
        assert "<html" in page.lower() and "orchestrator" in page
        assert await first_frame(f"ws://127.0.0.1:{port}/ws?width=120&height=40",
                                 b"STANDARD OPERATIONS")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)


def test_the_served_command_is_argv_quoted_for_the_shell(tmp_path: Path) -> None:
    odd = tmp_path / "my repo; rm -rf"
    argv = app_command(odd, odd / "state.db", "flow 'x'.yaml")
    assert argv[1:3] == ["-m", "orchestrator_tui"]
    assert argv[argv.index("--workspace") + 1] == str(odd)
    assert argv[-2:] == ["--workflow", "flow 'x'.yaml"]
