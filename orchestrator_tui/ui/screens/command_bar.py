"""The command bar: `/parallel status` and friends, parsed and run by the one command grammar
(`orchestrator_tui.commands`), with the same text output as the CLI."""

from __future__ import annotations

import argparse
from functools import partial
from typing import TYPE_CHECKING, ClassVar, cast

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from orchestrator_tui.commands import CommandError, CommandResult, execute, parse_slash
from orchestrator_tui.core.errors import OrchestratorError
from orchestrator_tui.store import queries
from orchestrator_tui.ui import messages as msg
from orchestrator_tui.ui.grammar import CommandSuggester

if TYPE_CHECKING:
    from orchestrator_tui.ui.app import OrchestratorApp

HISTORY_LIMIT = 100


class CommandBarScreen(ModalScreen[None]):
    """An input at the bottom of the screen; Enter runs the command, Esc closes."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close"),
        Binding("up", "recall(-1)", "Previous", show=False),
        Binding("down", "recall(1)", "Next", show=False),
        Binding("tab", "complete", "Complete", show=False),
    ]
    def __init__(self, text: str = "", *, run: bool = False) -> None:
        super().__init__()
        self.text, self.run_now = text, run
        self._recall = 0

    @property
    def orchestrator(self) -> OrchestratorApp:
        """The app, typed."""
        return cast("OrchestratorApp", self.app)

    def compose(self) -> ComposeResult:
        with Vertical(id="command-bar"):
            yield Static("", id="command-output")
            yield Static(Text("Commands: state current|history · parallel status|set-limit N|"
                              "show-graph · pause · resume · abort   (Tab completes, Esc "
                              "closes)", style="dim"), id="command-status")
            yield Input(self.text, placeholder="/command", id="command-input",
                        suggester=CommandSuggester())

    @property
    def history(self) -> list[str]:
        """The app's commands run so far, oldest first."""
        return self.orchestrator.command_history

    def on_mount(self) -> None:
        self._recall = len(self.history)
        self.query_one("#command-output").display = False
        if self.run_now and self.text:
            self._run(self.text)

    def action_close(self) -> None:
        """Close the bar."""
        self.dismiss(None)

    def action_complete(self) -> None:
        """Accept the suggested completion."""
        field = self.query_one("#command-input", Input)
        if field._suggestion:
            field.value = field._suggestion + " "
            field.cursor_position = len(field.value)

    def action_recall(self, step: int) -> None:
        """Step through the commands run before."""
        if not self.history:
            return
        self._recall = max(0, min(len(self.history), self._recall + step))
        field = self.query_one("#command-input", Input)
        field.value = self.history[self._recall] if self._recall < len(self.history) else ""
        field.cursor_position = len(field.value)

    @on(Input.Submitted, "#command-input")
    def _submitted(self, event: Input.Submitted) -> None:
        line = event.value.strip()
        if line:
            self._run(line)

    def _run(self, line: str) -> None:
        if not self.history or self.history[-1] != line:
            self.history.append(line)
            del self.history[:-HISTORY_LIMIT]
        self._recall = len(self.history)
        try:
            args = parse_slash(line)
        except CommandError as error:
            self._show_error(str(error).strip() or "cannot read the command")
            return
        self._status(Text(f"running {line}…", style="dim"))
        self.orchestrator.work(partial(self._execute, line, args), group="command",
                               description=f"run {line}")

    async def _execute(self, line: str, args: argparse.Namespace) -> None:
        app = self.orchestrator
        if args.group == "resume" and any(args.session is None or s.id.startswith(args.session)
                                          for s in await app.host.orphans()):
            # its engine is gone: the app carries it on, as `orchestrator resume` would
            app.carry_on(args.session)
            self.post_message(msg.CommandDone(line, CommandResult(
                "carrying the session on here: its engine had stopped")))
            return
        try:
            result = await execute(args, app.command_context())
        except OrchestratorError as error:
            result = CommandResult(str(error), None, ok=False)
        self.post_message(msg.CommandDone(line, result))
        if result.ok and (args.group, getattr(args, "action", None)) == ("parallel", "show-graph"):
            conn = await app.reader.get()
            if conn is not None:
                session = await queries.find_session(conn, args.session)
                app.post_message(msg.FocusSession(session.id, mode="graph"))
                self.dismiss(None)

    def on_command_done(self, event: msg.CommandDone) -> None:
        output = self.query_one("#command-output", Static)
        output.display = True
        output.update(Text(event.result.text))
        state = "done" if event.result.ok else "refused"
        self._status(Text(f"/{event.line.lstrip('/:')}: {state}",
                          style="" if event.result.ok else "bold"))
        self.query_one("#command-input", Input).value = ""
        self.orchestrator.feed.next_read = 0.0

    def _show_error(self, text: str) -> None:
        first = text.splitlines()[0] if text else "cannot read the command"
        self._status(Text(first, style="bold"))

    def _status(self, text: Text) -> None:
        self.query_one("#command-status", Static).update(text)
