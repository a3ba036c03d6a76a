"""The command bar and the command palette: the one grammar of `orchestrator_tui.commands`,
completion from its command words, the CLI's text output, one-line errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from textual.widgets import Input

from orchestrator_tui.ui.app import OrchestratorApp
from orchestrator_tui.ui.grammar import CommandSuggester, command_specs, completions
from orchestrator_tui.ui.palette import SlashCommands
from orchestrator_tui.ui.screens.command_bar import CommandBarScreen

from .conftest import running_pids, text_of, until

MakeApp = Callable[..., OrchestratorApp]
SIZE = (120, 40)


def test_the_grammar_is_read_from_the_parser() -> None:
    lines = {spec.line: spec for spec in command_specs()}
    assert {"state current", "state history", "parallel status", "parallel set-limit",
            "parallel show-graph", "pause", "resume", "abort"} <= set(lines)
    assert lines["parallel set-limit"].needs_argument
    assert lines["parallel set-limit"].usage == "/parallel set-limit LIMIT"
    assert not lines["parallel status"].needs_argument
    assert completions(()) == ["state", "parallel", "task", "pause", "resume", "abort",
                              "checkpoint", "agent", "comm", "progress", "context",
                              "learn", "settings", "db", "doctor"]
    assert completions(("parallel",)) == ["status", "set-limit", "show-graph"]


async def test_the_suggester_completes_command_words() -> None:
    suggester = CommandSuggester()
    assert await suggester.get_suggestion("/par") == "/parallel"
    assert await suggester.get_suggestion("parallel se") == "parallel set-limit"
    assert await suggester.get_suggestion(":state h") == ":state history"
    assert await suggester.get_suggestion("/parallel ") is None
    assert await suggester.get_suggestion("/zzz") is None


async def test_slash_opens_the_bar_and_a_command_prints_its_text(make_app: MakeApp,
                                                                 fast_workflow: Path) -> None:
    app = make_app(fast_workflow)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("1")
        await until(pilot, lambda: app.host.execution is not None
                    and app.host.execution.session_state == "COMPLETED")
        await pilot.press("slash")
        assert isinstance(app.screen, CommandBarScreen)
        await pilot.press(*"state current", "enter")
        await until(pilot, lambda: "state: COMPLETED" in text_of(app, "#command-output"))
        assert "intent: analyze" in text_of(app, "#command-output")
        await pilot.press(*"parallel status", "enter")
        await until(pilot, lambda: "limit 4" in text_of(app, "#command-output"))
        await pilot.press("escape")
        assert not isinstance(app.screen, CommandBarScreen)
        await pilot.press("colon")
        assert isinstance(app.screen, CommandBarScreen)


async def test_unknown_and_malformed_commands_get_one_line(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("slash", *"frobnicate", "enter")
        status = text_of(app, "#command-status")
        assert "invalid choice" in status and "\n" not in status
        field = app.screen.query_one("#command-input", Input)
        field.value = "parallel set-limit many"
        await pilot.press("enter")
        assert "invalid int value" in text_of(app, "#command-status")
        field.value = "state current"
        await pilot.press("enter")
        await until(pilot, lambda: "no session in this database" in
                    text_of(app, "#command-output"))
        assert app.is_running


async def test_tab_accepts_the_completion_and_up_recalls(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("slash", *"par")
        field = app.screen.query_one("#command-input", Input)
        await until(pilot, lambda: field._suggestion == "par" + "allel")
        await pilot.press("tab", *"st")
        await until(pilot, lambda: field._suggestion == "parallel status")
        await pilot.press("tab")
        assert field.value == "parallel status "
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.press("up")
        assert field.value == "parallel status"


async def test_pause_and_resume_commands_reach_the_live_run(make_app: MakeApp,
                                                            slow_workflow: Path) -> None:
    app = make_app(slow_workflow)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("1")
        await until(pilot, lambda: len(running_pids(app)) == 2)
        await pilot.press("slash", *"pause", "enter")
        await until(pilot, lambda: "paused; 2 agent process group(s) stopped"
                    in text_of(app, "#command-output"))
        field = app.screen.query_one("#command-input", Input)
        field.value = "abort"
        await pilot.press("enter")
        await until(pilot, lambda: app.host.execution is not None
                    and app.host.execution.session_state == "ABORTED")


async def test_show_graph_command_opens_the_graph(make_app: MakeApp,
                                                  fast_workflow: Path) -> None:
    app = make_app(fast_workflow)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("1")
        await until(pilot, lambda: app.host.execution is not None
                    and app.host.execution.session_state == "COMPLETED")
        await pilot.press("slash", *"parallel show-graph", "enter")
        await until(pilot, lambda: app.current_mode == "graph", what="the graph screen")


async def test_the_palette_lists_the_same_commands(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        provider = SlashCommands(app.screen)
        found = [hit async for hit in provider.search("set-limit")]
        assert [str(hit.text) for hit in found] == ["/parallel set-limit LIMIT"]
        listed = [str(hit.text) async for hit in provider.discover()]
        assert listed == [spec.usage for spec in command_specs()]
        found[0].command()  # needs an argument: opens the bar with it typed
        await pilot.pause()
        assert isinstance(app.screen, CommandBarScreen)
        assert app.screen.query_one("#command-input", Input).value == "parallel set-limit "
        await pilot.press("escape")
        await pilot.press("ctrl+p")
        await pilot.press(*"parallel status")
        await until(pilot, lambda: "parallel status" in str(
            [str(o.prompt) for o in app.screen.query_one("CommandList").options]))
