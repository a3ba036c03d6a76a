"""The message bus in the app: a message sent with the CLI while the app shows a running
session appears in the dashboard's counts and on the messages screen, and its state follows."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from textual.widgets import Static

from orchestrator_tui.store import bus
from orchestrator_tui.ui.app import OrchestratorApp
from orchestrator_tui.ui.screens.messages import MessagesScreen, bus_rows, short_payload
from tests.conftest import CLI

from .conftest import gone, running_pids, text_of, until

MakeApp = Callable[..., OrchestratorApp]
SIZE = (120, 40)


def cli(db: Path, *args: str, session: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ORCHESTRATOR_DB": str(db), "ORCHESTRATOR_SESSION": session,
           "ORCHESTRATOR_AGENT": "lead"}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, timeout=60,
                          check=False, cwd=db.parent)


def bus_text(app: OrchestratorApp) -> str:
    """What the messages screen's bus panel shows, as plain text."""
    console = Console(width=110, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(app.screen.query_one("#bus-list", Static).content)
    console.file.close()
    return console.export_text()


async def test_a_message_sent_with_the_cli_shows_live(make_app: MakeApp, db: Path,
                                                      slow_workflow: Path) -> None:
    app = make_app(slow_workflow)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("1")
        await until(pilot, lambda: len(running_pids(app)) == 2, what="two running agents")
        pids = running_pids(app)
        session = app.feed.session_id
        assert session is not None and "No messages yet." in text_of(app, "#messages-panel")
        with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as conn:
            bus.register(conn, "helper")
        sent = await asyncio.to_thread(cli, db, "comm", "send", "helper", "review_request",
                                       '{"file": "app.py", "lines": [1, 2]}', "--priority",
                                       "high", session=session)
        assert sent.returncode == 0, sent.stderr
        await until(pilot, lambda: "Pending 1 · Processed 0" in text_of(app, "#messages-panel"),
                    what="the message in the dashboard's counts")
        assert "1 message in this session" in text_of(app, "#messages-panel")
        await pilot.press("j")
        assert isinstance(app.screen, MessagesScreen)
        await until(pilot, lambda: "review_request" in bus_text(app),
                    what="the message on the messages screen")
        line = next(row for row in bus_text(app).splitlines() if "review_request" in row)
        for cell in ("lead → helper", "high", "pending", '{"file": "app.py"'):
            assert cell in line
        received = await asyncio.to_thread(cli, db, "comm", "receive", "--agent", "helper",
                                           "--ack", session=session)
        assert received.returncode == 0, received.stderr
        await until(pilot, lambda: "acknowledged" in bus_text(app),
                    what="the acknowledgement on the messages screen")
        await pilot.press("b")
        await until(pilot, lambda: "Pending 0 · Processed 1" in text_of(app, "#messages-panel"))
        await pilot.press("a", "y")
        await until(pilot, lambda: all(gone(pid) for pid in pids))


def test_bus_rows_interleave_messages_and_events_newest_last() -> None:
    message = bus.Message(7, "s", "lead", "agent", "helper", "helper", "note", '{"a": 1}',
                          "normal", "pending", 0, None, 20.0)
    event = {"id": 1, "session": "s", "source": "engine", "type": "task_completed",
             "payload": {"task": "t"}, "subscribers": 1, "created_at": 10.0}
    rows = [cells for _, cells in bus_rows([message], [event], 5)]
    assert [cells[1] for cells in rows] == ["event", "#7"]
    assert rows[0][2] == "engine → 1 listener" and rows[1][2] == "lead → helper"
    assert [cells[1] for _, cells in bus_rows([message], [event], 1)] == ["#7"]
    assert short_payload({"text": "x" * 200}, 20) == '{"text": "xxxxxxxxx…'
