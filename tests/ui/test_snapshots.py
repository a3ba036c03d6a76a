"""Each screen as SVG at 120x40 and 80x24, from fixed data: a database with sessions at fixed
times, a frozen live run, a frozen clock, a fixed resource sample, UTC time stamps."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input
from textual.worker import WorkerCancelled, WorkerFailed

from orchestrator_tui.ui.app import OrchestratorApp
from orchestrator_tui.ui.host import RunHost
from orchestrator_tui.ui.screens.base import ModeScreen

from .conftest import FixedSampler, until
from .fixed_data import LIVE, NOW, FakeExecution, fill_database

SIZES = [(120, 40), (80, 24)]


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Time stamps in UTC whatever the machine's zone."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def frozen_app(tmp_path: Path) -> Callable[[], OrchestratorApp]:
    """An app over fixed database content and a frozen live run."""
    db = tmp_path / "state.db"
    fill_database(db)
    workspace = tmp_path / "repo"
    workspace.mkdir()

    def make() -> OrchestratorApp:
        host = RunHost(workspace, db, None)
        host.execution = FakeExecution()  # type: ignore[assignment]
        app = OrchestratorApp(workspace, db, None, clock=lambda: NOW, sampler=FixedSampler(),
                              resource_period=3600.0, host=host)
        app.feed.focus(LIVE)
        return app
    return make


async def idle(pilot: Pilot[None]) -> None:
    """Wait until no worker is pending or running (replaced ones count as done)."""
    while any(not worker.is_finished for worker in pilot.app.workers):
        with contextlib.suppress(WorkerCancelled, WorkerFailed):
            await pilot.app.workers.wait_for_complete()
        await pilot.pause()


def settle(*keys: str) -> Callable[[Pilot[None]], Any]:
    """Press `keys`, then wait until every worker is done and the screen is drawn."""
    async def run_before(pilot: Pilot[None]) -> None:
        app = pilot.app
        assert isinstance(app, OrchestratorApp)
        await until(pilot, lambda: app.feed.latest is not None, what="the first snapshot")
        await idle(pilot)
        for key in keys:
            await pilot.press(key)
            shown = app.screen
            if isinstance(shown, ModeScreen):
                await until(pilot, partial(lambda s: s.snapshot == app.feed.latest, shown))
            await idle(pilot)
        for field in pilot.app.screen.query(Input):
            field.cursor_blink = False
        await pilot.pause()
        await idle(pilot)
    return run_before


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("screen,keys", [
    ("menu", ()), ("dashboard", ("b",)), ("messages", ("j",)), ("graph", ("g",)),
    ("insights", ("i",)),
])
def test_screen(snap_compare: Any, frozen_app: Callable[[], OrchestratorApp], screen: str,
                keys: tuple[str, ...], size: tuple[int, int]) -> None:
    assert snap_compare(frozen_app(), run_before=settle(*keys), terminal_size=size)


@pytest.mark.parametrize("screen,keys", [
    ("help", ("b", "h")), ("details", ("b", "d")), ("abort", ("b", "a")),
    ("command", ("slash", *"state history sess-0000aaaa", "enter")), ("settings", ("s",)),
])
def test_modal(snap_compare: Any, frozen_app: Callable[[], OrchestratorApp], screen: str,
               keys: tuple[str, ...]) -> None:
    assert snap_compare(frozen_app(), run_before=settle(*keys), terminal_size=(120, 40))
