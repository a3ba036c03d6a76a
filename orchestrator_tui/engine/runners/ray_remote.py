"""What runs on a Ray node for the Ray runner: one job's process, and a per-node signaller.

`run_job` is a generator run as a Ray streaming task. It starts the job's argv in its own
process group (never a shell) and yields plain dictionaries as things happen:
`{"event": "started", node, ip, pid}` first, then `{"event": "output", out, err}` with the
bytes written since the last report (at most `cap` of each; the rest counted), and last
`{"event": "ended", code, out, err, total}`. A python job (`target`) is run with
`asyncio.run` on the node and ends with `{"event": "ended", value}`. Nothing here imports
the engine's event loop machinery; Ray is imported only inside the functions.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

REPORT_FIRST = 0.2
"""Seconds after the start at which new output is first reported."""
REPORT_EVERY = 0.5
"""Seconds between later reports of new output."""


class Tail:
    """Bytes read from one pipe since the last report, capped to the last `cap`."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.fresh = bytearray()
        self.total = 0
        self.lock = threading.Lock()

    def pump(self, pipe: IO[bytes]) -> None:
        """Read `pipe` to its end (in a thread of its own)."""
        while chunk := os.read(pipe.fileno(), 65536):
            with self.lock:
                self.total += len(chunk)
                self.fresh += chunk
                if len(self.fresh) > 2 * self.cap:
                    del self.fresh[: len(self.fresh) - self.cap]
        pipe.close()

    def take(self) -> bytes:
        """What arrived since the last call (its last `cap` bytes)."""
        with self.lock:
            data = bytes(self.fresh[-self.cap:])
            self.fresh.clear()
        return data


def where() -> tuple[str, str]:
    """This node's Ray id and IP address."""
    import ray

    node: str = ray.get_runtime_context().get_node_id()
    ip: str = ray.util.get_node_ip_address()  # type: ignore[no-untyped-call]
    return node, ip


def run_job(spec: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Run one job on this node, reporting as it goes (see the module's docstring)."""
    node, ip = where()
    if spec.get("target"):
        yield {"event": "started", "node": node, "ip": ip, "pid": os.getpid()}
        yield {"event": "ended", "value": run_python(spec)}
        return
    env = {**os.environ, **spec["env"]}
    try:
        proc = subprocess.Popen(
            spec["argv"], stdin=subprocess.PIPE if spec.get("stdin") is not None
            else subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            cwd=spec["workspace"], env=env, start_new_session=True)
    except OSError as error:
        what = f"cannot start: {error.strerror or error}"
        yield {"event": "ended", "error": what + (f" ({error.filename})"
                                                  if error.filename else "")}
        return
    yield {"event": "started", "node": node, "ip": ip, "pid": proc.pid}
    tails = (Tail(spec["cap"]), Tail(spec["cap"]))
    assert proc.stdout is not None and proc.stderr is not None
    pumps = [threading.Thread(target=tail.pump, args=(pipe,), daemon=True)
             for tail, pipe in zip(tails, (proc.stdout, proc.stderr), strict=True)]
    if spec.get("stdin") is not None:
        pumps.append(threading.Thread(target=feed, args=(proc.stdin, spec["stdin"]),
                                      daemon=True))
    for pump in pumps:
        pump.start()
    try:
        interval = REPORT_FIRST
        while True:
            try:
                code = proc.wait(timeout=interval)
                break
            except subprocess.TimeoutExpired:
                interval = REPORT_EVERY
            out, err = tails[0].take(), tails[1].take()
            if out or err:
                yield {"event": "output", "out": out, "err": err}
        for pump in pumps[:2]:
            pump.join(timeout=1.0)  # a leftover child may hold a pipe open
        yield {"event": "ended", "code": code, "out": tails[0].take(), "err": tails[1].take(),
               "total": tails[0].total + tails[1].total}
    finally:
        if proc.poll() is None:  # cancelled, or the generator was closed: leave no orphan
            kill_group(proc.pid, grace=2.0)


def feed(stdin: IO[bytes] | None, data: bytes) -> None:
    """Write the job's input and close the pipe."""
    if stdin is None:
        return
    with contextlib.suppress(BrokenPipeError):
        stdin.write(data)
    with contextlib.suppress(BrokenPipeError):
        stdin.close()


def run_python(spec: dict[str, Any]) -> str:
    """Run a python job's async callable on this node; its one-line summary."""
    from orchestrator_tui.engine.runners.python import TaskContext, describe, resolve

    function = resolve(spec["target"])
    context = TaskContext(spec["session_id"], spec["task_id"], spec["attempt"],
                          Path(spec["workspace"]), spec["args"])
    return describe(asyncio.run(function(context)))


def kill_group(pgid: int, grace: float) -> None:
    """SIGTERM the group (continued first if stopped), then SIGKILL it after `grace`."""
    for signum in (signal.SIGTERM, signal.SIGCONT):
        send(pgid, signum)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not send(pgid, 0):
            return
        time.sleep(0.05)
    send(pgid, signal.SIGKILL)


def send(pgid: int, signum: int) -> bool:
    """Signal a process group; False when it is gone."""
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        return False
    return True


class Signaller:
    """A small Ray actor pinned to one node: pauses, resumes and terminates process groups
    there. Calls from one caller run in order, so a pause is never overtaken by its resume,
    and each call is quick (the caller waits out a termination's grace period itself)."""

    def signal(self, pgid: int, signums: list[int]) -> bool:
        """Send each of `signums` to the group; False when it is gone."""
        sent = [send(pgid, signum) for signum in signums]  # every one, even after a failure
        return all(sent)
