"""The messages, graph and insights screens, and the dashboard of a session that another engine
runs (read from the database, controlled through the command grammar)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from textual.widgets import DataTable, Input, RichLog, Select

from orchestrator_tui.core.models import IntentSpec, TaskSpec
from orchestrator_tui.core.plan import Plan
from orchestrator_tui.engine.patterns import Metric
from orchestrator_tui.engine.session import Engine, SessionRequest
from orchestrator_tui.ui.app import OrchestratorApp
from orchestrator_tui.ui.screens.insights import metrics_text
from orchestrator_tui.ui.screens.messages import MessagesScreen
from orchestrator_tui.ui.widgets.plan_tree import PlanTree

from .conftest import SLOW_CODE, gone, proc_state, text_of, until

MakeApp = Callable[..., OrchestratorApp]
SIZE = (120, 40)
NOOP = "orchestrator_tui.engine.runners.python:noop"


def log_lines(app: OrchestratorApp) -> list[str]:
    return [strip.text for strip in app.screen.query_one("#journal", RichLog).lines]


async def run_fast(app: OrchestratorApp, pilot: object, key: str = "1") -> None:
    await pilot.press(key)  # type: ignore[attr-defined]
    await until(pilot, lambda: app.host.execution is not None  # type: ignore[arg-type]
                and app.host.execution.session_state in ("COMPLETED", "FAILED"))


async def test_messages_show_the_journal_and_filter_it(make_app: MakeApp,
                                                       fast_workflow: Path) -> None:
    app = make_app(fast_workflow)
    async with app.run_test(size=SIZE) as pilot:
        await run_fast(app, pilot)
        await pilot.press("l")
        assert isinstance(app.screen, MessagesScreen)
        await until(pilot, lambda: any("COMPLETED" in line for line in log_lines(app)))
        everything = log_lines(app)
        assert any("summary" in line and "succeeded" in line for line in everything)
        assert "live log of" in text_of(app, "#journal-status")
        app.screen.query_one("#kind-filter", Select).value = "session"
        await until(pilot, lambda: not any(" task " in line for line in log_lines(app)))
        assert len(log_lines(app)) == 2  # PLANNING -> EXECUTING -> COMPLETED
        await pilot.press("c")
        await until(pilot, lambda: len(log_lines(app)) == len(everything))
        app.screen.query_one("#task-filter", Input).value = "scan"
        await until(pilot, lambda: all(" scan " in line for line in log_lines(app)))
        assert len(log_lines(app)) == 3  # to ready, to running, to succeeded
        app.screen.query_one("#task-filter", Input).value = ""
        await pilot.press("f", *"dependencies met")
        await until(pilot, lambda: log_lines(app) and all(
            "dependencies met" in line for line in log_lines(app)))
        assert len(log_lines(app)) == 3  # scan, review, summary


def test_journal_announcements_collapse_into_the_newest() -> None:
    older, newer = MessagesScreen.JournalAdvanced(3), MessagesScreen.JournalAdvanced(9)
    assert older.can_replace(newer)
    assert not older.can_replace(object())  # type: ignore[arg-type]


async def run_elsewhere(db: Path, workspace: Path, tasks: list[TaskSpec], *,
                        name: str = "bench", parallel: int = 16) -> tuple[Engine, object]:
    plan = Plan(IntentSpec(name=name, tasks=tuple(tasks)))
    engine = await Engine.open(db)
    execution = await engine.start(SessionRequest(plan=plan, workspace=workspace,
                                                  workflow="test", parallel_limit=parallel))
    return engine, execution


def layered(layers: int = 10, width: int = 100) -> list[TaskSpec]:
    tasks = []
    for layer in range(layers):
        for index in range(width):
            deps = tuple(f"t{layer - 1}-{(index + k) % width}" for k in range(3)) \
                if layer else ()
            tasks.append(TaskSpec(id=f"t{layer}-{index}", python=NOOP, depends_on=deps))
    return tasks


async def test_the_graph_of_a_thousand_tasks(make_app: MakeApp, db: Path,
                                             workspace: Path) -> None:
    engine, execution = await run_elsewhere(db, workspace, layered())
    async with engine:
        assert await engine.run(execution) == "COMPLETED"  # type: ignore[arg-type]
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("g")
        tree = app.screen.query_one(PlanTree)
        await until(pilot, lambda: tree.plan is not None, what="the plan")
        levels = tree.root.children
        assert len(levels) == 10
        assert "Level 4 · 100 tasks" in str(levels[4].label)
        assert "✓ 100 succeeded" in str(levels[4].label)
        assert not levels[4].children  # wide levels are built only when opened
        assert "★" in str(levels[0].label)
        await pilot.press("f", *"t5-17", "enter")
        await until(pilot, lambda: tree.cursor_node is not None and tree.cursor_node.data
                    is not None and tree.cursor_node.data.task_id == "t5-17")
        details = text_of(app, "#node-details")
        await until(pilot, lambda: "depends on (3)" in text_of(app, "#node-details"))
        details = text_of(app, "#node-details")
        assert "✓ t4-17" in details and "needed by (3)" in details and "✓ t6-15" in details
        assert len(levels[5].children) == 100 and not levels[6].children
        await pilot.press("escape", "n")  # the next match of "t5-17": none, so the same
        assert tree.cursor_node is not None and tree.cursor_node.data is not None
        assert tree.cursor_node.data.task_id == "t5-17"
        app.screen.query_one("#search", Input).value = "t5-"
        await pilot.press("n", "n")
        await until(pilot, lambda: tree.cursor_node is not None and tree.cursor_node.data
                    is not None and tree.cursor_node.data.task_id == "t5-1")


async def test_the_dashboard_follows_a_session_run_elsewhere(make_app: MakeApp, db: Path,
                                                             workspace: Path) -> None:
    slow = [TaskSpec(id=f"slow-{n}", command=(sys.executable, "-c", SLOW_CODE))
            for n in range(2)]
    engine, execution = await run_elsewhere(db, workspace, slow, name="remote")
    import asyncio

    running = asyncio.get_running_loop().create_task(engine.run(execution))  # type: ignore[arg-type]
    try:
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("b")
            await until(pilot, lambda: "EXECUTING" in text_of(app, "#state-line"))
            table = app.screen.query_one("#agents-table", DataTable)
            await until(pilot, lambda: table.row_count == 2)
            pids = [view.pid for view in execution.snapshot().running]  # type: ignore[attr-defined]
            await pilot.press("p")
            await until(pilot, lambda: all(proc_state(pid) == "T" for pid in pids))
            await until(pilot, lambda: "PAUSED" in text_of(app, "#state-line"))
            await pilot.press("r")
            await until(pilot, lambda: "EXECUTING" in text_of(app, "#state-line"))
            await pilot.press("a", "y")
            await until(pilot, running.done, what="the remote run to end")
            await until(pilot, lambda: "ABORTED" in text_of(app, "#state-line"))
            assert all(gone(pid) for pid in pids)
            await pilot.press("j")
            await until(pilot, lambda: "recorded transitions" in
                        text_of(app, "#journal-status"))
            assert any("ABORTED" in line for line in log_lines(app))
    finally:
        await running
        await engine.close()


async def test_insights_list_sessions_and_their_tasks(make_app: MakeApp,
                                                      fast_workflow: Path) -> None:
    app = make_app(fast_workflow)
    async with app.run_test(size=SIZE) as pilot:
        assert app.current_mode == "menu"
        await pilot.press("i")
        await until(pilot, lambda: "no history yet" in text_of(app, "#learning"))
        await pilot.press("m")
        await run_fast(app, pilot, "1")
        first = app.host.execution.session_id  # type: ignore[union-attr]
        await pilot.press("m")
        await run_fast(app, pilot, "5")
        await pilot.press("i")
        sessions = app.screen.query_one("#sessions", DataTable)
        await until(pilot, lambda: sessions.row_count == 2)
        learning = text_of(app, "#learning")
        assert "analyze: 1 finished, 1 completed (100%)" in learning
        assert "fix: 1 finished, 0 completed (0%), median no completed run yet" in learning
        tasks = app.screen.query_one("#session-tasks", DataTable)
        await until(pilot, lambda: tasks.row_count == 1)  # the newest: fix, one task
        await pilot.press("down")
        await until(pilot, lambda: tasks.row_count == 3)
        assert first in str(tasks.border_title)
        await pilot.press("o")
        assert app.current_mode == "dashboard"
        await until(pilot, lambda: first in text_of(app, "#state-line"))


def test_metrics_read_in_their_own_units() -> None:
    metrics = [Metric("cache hit rate", ">= 40%", 0.5, True, "2 hits in 4 lookups"),
               Metric("agent generation time", "< 30 s", 0.0026, True,
                      "median of 1 generated agent file(s)", unit="s"),
               Metric("time reduction after learning", ">= 30%", None, None, "not yet known")]
    text = metrics_text(metrics).plain
    assert "cache hit rate: 50% / >= 40%" in text
    assert "agent generation time: 3 ms / < 30 s" in text
    assert "time reduction after learning: not yet known / >= 30%" in text
