"""Every key of the app, driven with Pilot on real runs: the menu's operations and options, the
dashboard's actions (pause really stops the agent processes), navigation, help and quitting."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import DataTable, Input, OptionList, Select

from orchestrator_tui.ui.app import OrchestratorApp
from orchestrator_tui.ui.screens.confirm import ConfirmScreen
from orchestrator_tui.ui.screens.details import DetailsScreen
from orchestrator_tui.ui.screens.help import HelpScreen
from orchestrator_tui.ui.screens.settings import SettingsScreen

from .conftest import argv, gone, proc_state, running_pids, text_of, until

MakeApp = Callable[..., OrchestratorApp]
SIZE = (120, 40)


def session_state(app: OrchestratorApp) -> str | None:
    execution = app.host.execution
    return str(execution.session_state) if execution else None


async def until_state(pilot: Pilot[None], app: OrchestratorApp, state: str) -> None:
    """Wait for the app's session to reach `state`; if it does not, fail with its journal."""
    def report() -> str:
        execution = app.host.execution
        if execution is None:
            return f"{state}: no session"
        counts = {str(name): count for name, count in execution.counts.items()}
        running = [view.task_id for view in execution.snapshot().running]
        tail = "\n".join(f"  {entry.kind} {entry.task_id} {entry.old}->{entry.new} {entry.text}"
                         for entry in execution.journal_since(0)[-25:])
        return f"{state}: the session is {execution.session_state}, {counts}, " \
               f"running {running}\n{tail}"
    await until(pilot, lambda: session_state(app) == state, what=report)


async def test_key_1_runs_analyze_and_the_dashboard_follows_it(make_app: MakeApp,
                                                               fast_workflow: Path) -> None:
    app = make_app(fast_workflow)
    async with app.run_test(size=SIZE) as pilot:
        assert app.current_mode == "menu"
        await pilot.press("1")
        assert app.current_mode == "dashboard"
        await until_state(pilot, app, "COMPLETED")
        await until(pilot, lambda: "COMPLETED" in text_of(app, "#state-line"))
        assert "3/3 tasks finished" in text_of(app, "#done-label")
        table = app.screen.query_one("#agents-table", DataTable)
        assert {str(key.value) for key in table.rows} == {"scan", "review", "summary"}
        assert "COMPLETED" in app.sub_title and app.host.execution is not None
        assert app.host.execution.session_id in app.sub_title


async def test_keys_1_to_8_start_the_eight_operations(make_app: MakeApp,
                                                      tmp_path: Path) -> None:
    names = ("analyze", "build", "research", "document", "fix", "improve", "deploy", "report")
    quick = argv("pass")
    flow = tmp_path / "eight.yaml"
    flow.write_text("intents:\n" + "".join(
        f"  {name}:\n    tasks:\n      - {{id: {name}-task, command: {quick}}}\n"
        for name in names))
    app = make_app(flow)
    async with app.run_test(size=SIZE) as pilot:
        for number, name in enumerate(names, start=1):
            await pilot.press(str(number))
            assert app.current_mode == "dashboard"
            await until_state(pilot, app, "COMPLETED")
            assert app.host.execution is not None
            assert app.host.execution.plan.intent.name == name
            await until(pilot, lambda: not app.run_busy(), what="the run to be over")
            await pilot.press("m")


async def test_a_failing_run_says_so(make_app: MakeApp, fast_workflow: Path) -> None:
    app = make_app(fast_workflow)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.workflow is not None, what="the workflow")
        await pilot.press("5")  # FIX: its only task exits 2
        await until_state(pilot, app, "FAILED")
        await until(pilot, lambda: any("FAILED" in str(n.message)
                                       for n in app._notifications))


async def test_pause_resume_and_abort_keys_stop_the_processes(make_app: MakeApp,
                                                              slow_workflow: Path) -> None:
    app = make_app(slow_workflow)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("1")
        await until(pilot, lambda: len(running_pids(app)) == 2, what="two running agents")
        pids = running_pids(app)
        for pause, resume in (("p", "r"), ("P", "R")):
            pressed = time.monotonic()
            await pilot.press(pause)
            await until(pilot, lambda: "PAUSED" in text_of(app, "#state-line"), timeout=1.0,
                        what="PAUSED on screen within a second")
            assert time.monotonic() - pressed < 1.0
            await until(pilot, lambda: all(proc_state(pid) == "T" for pid in pids),
                        what="stopped processes")
            await pilot.press(resume)
            await until(pilot, lambda: "EXECUTING" in text_of(app, "#state-line"))
            await until(pilot, lambda: all(proc_state(pid) in "SR" for pid in pids),
                        what="continued processes")
        await pilot.press("a")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        assert not isinstance(app.screen, ConfirmScreen)
        assert session_state(app) == "EXECUTING"
        await pilot.press("A", "y")
        await until(pilot, lambda: "ABORTED" in text_of(app, "#state-line"), what="ABORTED")
        await until(pilot, lambda: all(gone(pid) for pid in pids), what="no process left")


async def test_pause_from_the_menu_and_resume_with_capital_r(make_app: MakeApp,
                                                             slow_workflow: Path) -> None:
    app = make_app(slow_workflow)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("1")
        await until(pilot, lambda: len(running_pids(app)) == 2)
        pids = running_pids(app)
        await pilot.press("m")
        assert app.current_mode == "menu"
        await until(pilot, lambda: app.screen.snapshot is not None
                    and app.screen.snapshot.state == "EXECUTING")
        await pilot.press("P")
        await until(pilot, lambda: all(proc_state(pid) == "T" for pid in pids))
        await until(pilot, lambda: "PAUSED" in app.sub_title)
        await pilot.press("R")
        await until(pilot, lambda: all(proc_state(pid) in "SR" for pid in pids))
        await pilot.press("b", "a", "y")
        await until(pilot, lambda: all(gone(pid) for pid in pids))


async def test_details_show_the_live_output_tail(make_app: MakeApp,
                                                 slow_workflow: Path) -> None:
    app = make_app(slow_workflow)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("1")
        await until(pilot, lambda: len(running_pids(app)) == 2)
        await until(pilot, lambda: app.screen.query_one("#agents-table", DataTable).row_count)
        await pilot.press("d")
        assert isinstance(app.screen, DetailsScreen)
        await until(pilot, lambda: "working on it" in "\n".join(
            app.screen.query_one("#output").lines), what="the output tail")
        await until(pilot, lambda: app.screen.query_one("#attempts", DataTable).row_count == 1)
        await pilot.press("escape")
        await pilot.press("enter")
        assert isinstance(app.screen, DetailsScreen)
        await pilot.press("D")
        assert not isinstance(app.screen, DetailsScreen)
        await pilot.press("a", "y")
        await until_state(pilot, app, "ABORTED")


async def test_navigation_keys_reach_every_screen(make_app: MakeApp,
                                                  fast_workflow: Path) -> None:
    app = make_app(fast_workflow)
    async with app.run_test(size=SIZE) as pilot:
        for key, mode in (("b", "dashboard"), ("j", "messages"), ("g", "graph"),
                          ("i", "insights"), ("m", "menu"), ("B", "dashboard"),
                          ("l", "messages"), ("M", "menu"), ("L", "insights"), ("m", "menu"),
                          ("l", "insights"), ("G", "graph"), ("J", "messages"),
                          ("I", "insights")):
            await pilot.press(key)
            assert app.current_mode == mode, (key, mode)
        for key in ("question_mark", "escape", "b", "h", "escape", "H"):
            await pilot.press(key)
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert app.current_mode == "dashboard"


async def test_help_lists_this_screens_keys_and_the_commands(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("b", "h")
        assert isinstance(app.screen, HelpScreen)
        shown = "\n".join(str(w.render()) for w in app.screen.query("Static"))
        for words in ("Details", "Logs", "Quit", "/parallel set-limit LIMIT", "✓ succeeded"):
            assert words in shown


async def test_quit_without_a_run_exits_at_once(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running, what="the app to exit")
    assert app.return_code in (None, 0)


async def test_quit_keeps_the_run_and_the_next_start_carries_it_on(
        make_app: MakeApp, slow_workflow: Path, db: Path) -> None:
    app = make_app(slow_workflow)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("1")
        await until(pilot, lambda: len(running_pids(app)) == 2)
        pids = running_pids(app)
        await pilot.press("q")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        assert app.is_running and session_state(app) == "EXECUTING"
        await pilot.press("q", "y")
        await until(pilot, lambda: not app.is_running, what="the app to exit")
    assert all(gone(pid) for pid in pids)  # no agent outlives the app
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT state FROM sessions").fetchall() == [("EXECUTING",)]
    again = make_app(slow_workflow)
    async with again.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: len(running_pids(again)) == 2, what="the run to carry on")
        assert session_state(again) == "EXECUTING"
        assert again.current_mode == "dashboard"
        await pilot.press("a", "y")
        await until(pilot, lambda: session_state(again) == "ABORTED")
    with sqlite3.connect(db) as conn:
        states = [r[0] for r in conn.execute(
            "SELECT to_state FROM transitions WHERE task_id IS NULL ORDER BY id")]
    assert states[-4:] == ["EXECUTING", "RECOVERING", "EXECUTING", "ABORTED"]


async def test_free_text_starts_the_intent_it_names(make_app: MakeApp,
                                                    fast_workflow: Path) -> None:
    app = make_app(fast_workflow)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.workflow is not None)
        await pilot.press("tab")
        assert isinstance(app.focused, Input)
        await pilot.press(*"build me a spaceship", "enter")
        await until(pilot, lambda: any("Could not tell" in str(n.message)
                                       for n in app._notifications))
        assert app.current_mode == "menu"
        field = app.screen.query_one("#describe", Input)
        field.value = ""
        await pilot.press(*"please analyze things")
        assert "Intent: analyze" in text_of(app, "#hint")
        assert "no history yet" in text_of(app, "#hint")
        await pilot.press("enter")
        assert app.current_mode == "dashboard"
        await until_state(pilot, app, "COMPLETED")


async def test_menu_shows_recent_intents_and_estimates_from_history(
        make_app: MakeApp, fast_workflow: Path) -> None:
    app = make_app(fast_workflow)
    async with app.run_test(size=SIZE) as pilot:
        assert "none yet" in text_of(app, "#recent")
        await pilot.press("1")
        await until_state(pilot, app, "COMPLETED")
        await pilot.press("m")
        await until(pilot, lambda: "analyze" in text_of(app, "#recent"))
        assert "analyze (1 run)" in text_of(app, "#favourites")
        app.screen.query_one("#operations", OptionList).highlighted = 0
        # one run recorded every task's duration: the estimate is the plan's forecast
        await until(pilot, lambda: "learned)" in text_of(app, "#hint"))
        assert "80%:" in text_of(app, "#hint")


async def test_settings_are_stored_and_applied(make_app: MakeApp, slow_workflow: Path,
                                               db: Path) -> None:
    app = make_app(slow_workflow)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("1")
        await until(pilot, lambda: len(running_pids(app)) == 2)
        await pilot.press("m", "s")
        assert isinstance(app.screen, SettingsScreen)
        field = app.screen.query_one("#parallel-limit", Input)
        field.value = "0"
        await pilot.press("ctrl+s")
        assert isinstance(app.screen, SettingsScreen)
        assert "1 to 256" in text_of(app, "#settings-note")
        field.value = "1"
        app.screen.query_one("#theme", Select).value = "textual-light"
        app.screen.query_one("#runner", Select).value = "codex"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: not isinstance(app.screen, SettingsScreen))
        assert app.theme == "textual-light"
        execution = app.host.execution
        assert execution is not None
        await until(pilot, lambda: execution.parallel_limit == 1, what="the live limit")
        await pilot.press("b", "a", "y")
        await until_state(pilot, app, "ABORTED")
    with sqlite3.connect(db) as conn:
        stored = dict(conn.execute("SELECT key, value FROM settings").fetchall())
    assert stored == {"parallel_limit": "1", "theme": "textual-light", "default_runner": "codex"}
    again = make_app()
    async with again.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: again.theme == "textual-light", what="the stored theme")
        assert again.settings["default_runner"] == "codex"


async def test_an_engine_error_is_a_notification_not_a_crash(make_app: MakeApp,
                                                             tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("intents:\n  analyze:\n    agents: [no-such-agent]\n")
    app = make_app(bad)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.workflow is not None)
        await pilot.press("1")
        await until(pilot, lambda: any("unknown agent 'no-such-agent'" in str(n.message)
                                       for n in app._notifications))
        assert app.is_running and "Traceback" not in str(list(app._notifications))
