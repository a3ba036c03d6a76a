"""The dashboard's live time remaining, and the learned time limit in an agent's details."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path

from textual.widgets import DataTable

from orchestrator_tui.core.models import IntentSpec, TaskSpec
from orchestrator_tui.core.plan import Plan
from orchestrator_tui.engine.session import Engine, SessionRequest
from orchestrator_tui.ui.app import OrchestratorApp
from orchestrator_tui.ui.screens.details import DetailsScreen

from .conftest import SLOW_CODE, running_pids, text_of, until

MakeApp = Callable[..., OrchestratorApp]
SIZE = (120, 40)
QUICK = (sys.executable, "-c", "pass")


async def record_history(db: Path, workspace: Path, count: int = 6) -> None:
    """Quick runs of this interpreter: the kind of every task of the slow workflow."""
    plan = Plan(IntentSpec(name="warm", tasks=tuple(
        TaskSpec(id=f"warm-{n}", command=QUICK) for n in range(count))))
    async with await Engine.open(db) as engine:
        execution = await engine.start(SessionRequest(plan=plan, workspace=workspace,
                                                      workflow="test", parallel_limit=3))
        assert await engine.run(execution) == "COMPLETED"


async def test_the_dashboard_shows_the_time_remaining_of_its_run(
        make_app: MakeApp, slow_workflow: Path, db: Path, workspace: Path) -> None:
    app = make_app(slow_workflow)
    async with app.run_test(size=SIZE) as pilot:  # no history yet
        await pilot.press("1")
        await until(pilot, lambda: len(running_pids(app)) == 2)
        await until(pilot, lambda: "EXECUTING" in text_of(app, "#state-line"))
        assert "Remaining: no data yet" in text_of(app, "#predictions")
        await pilot.press("a", "y")
        await until(pilot, lambda: "ABORTED" in text_of(app, "#state-line"))
    await record_history(db, workspace)
    app = make_app(slow_workflow)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("1")
        await until(pilot, lambda: len(running_pids(app)) == 2)
        await until(pilot, lambda: "Remaining ~" in text_of(app, "#predictions"),
                    what="the time remaining")
        assert "(80%: " in text_of(app, "#predictions")
        await until(pilot, lambda: app.screen.query_one("#agents-table", DataTable).row_count)
        await pilot.press("d")
        assert isinstance(app.screen, DetailsScreen)
        await until(pilot, lambda: "learned from 6 runs" in text_of(app, "#details-timeout"),
                    what="the learned time limit")
        assert "Time limit of attempt 1: 12" in text_of(app, "#details-timeout")
        await pilot.press("escape", "a", "y")
        await until(pilot, lambda: "ABORTED" in text_of(app, "#state-line"))


async def test_a_session_run_elsewhere_shows_it_too(make_app: MakeApp, db: Path,
                                                   workspace: Path) -> None:
    await record_history(db, workspace)
    plan = Plan(IntentSpec(name="remote", tasks=tuple(
        TaskSpec(id=f"slow-{n}", command=(sys.executable, "-c", SLOW_CODE))
        for n in range(2))))
    engine = await Engine.open(db)
    execution = await engine.start(SessionRequest(plan=plan, workspace=workspace,
                                                  workflow="test"))
    running = asyncio.get_running_loop().create_task(engine.run(execution))
    try:
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("b")
            await until(pilot, lambda: "EXECUTING" in text_of(app, "#state-line"))
            await until(pilot, lambda: "Remaining ~" in text_of(app, "#predictions"),
                        what="the time remaining read from the database")
            await pilot.press("a", "y")
            await until(pilot, running.done, what="the remote run to end")
            await until(pilot, lambda: "Remaining: -" in text_of(app, "#predictions"))
    finally:
        await running
        await engine.close()
