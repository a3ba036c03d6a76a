"""What the app does for the user's requests: start a run, pause, resume, abort, quit, help and
the command bar. A mixin of the app class, kept apart so each module stays short."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from textual.notifications import SeverityLevel

from orchestrator_tui.commands import CommandContext, execute, parse_slash
from orchestrator_tui.core.errors import OrchestratorError
from orchestrator_tui.core.states import SessionState
from orchestrator_tui.ui import messages as msg
from orchestrator_tui.ui.screens.command_bar import CommandBarScreen
from orchestrator_tui.ui.screens.confirm import ConfirmScreen
from orchestrator_tui.ui.screens.help import HelpScreen
from orchestrator_tui.views import seconds

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine
    from pathlib import Path
    from typing import Any

    from textual.app import App as _Base
    from textual.worker import Worker

    from orchestrator_tui.engine.events import Snapshot
    from orchestrator_tui.ui.feed import Feed
    from orchestrator_tui.ui.host import RunHost
else:
    _Base = object

OUTCOME_SEVERITY: dict[SessionState, SeverityLevel] = {
    SessionState.COMPLETED: "information", SessionState.ABORTED: "warning"}


class SessionActions(_Base):  # type: ignore[type-arg]
    """Starting and controlling runs, quitting, help and commands (mixed into the app)."""

    if TYPE_CHECKING:  # provided by the app class
        host: RunHost
        feed: Feed
        clock: Callable[[], float]
        db_path: Path
        workspace: Path
        settings: dict[str, str]

        def work(self, job: Callable[[], Coroutine[Any, Any, Any]], *, group: str,
                 description: str, exclusive: bool = True) -> Worker[Any]: ...

        def _busy(self, group: str) -> bool: ...

        def action_go(self, mode: str) -> None: ...

        def show_snapshot(self, snap: Snapshot) -> None: ...

    def run_busy(self) -> bool:
        """Whether a run of this app is starting or going on."""
        return bool(self.host.active or self._busy("run"))

    # ----- runs --------------------------------------------------------------------------

    def on_start_intent(self, event: msg.StartIntent) -> None:
        intent = event.intent
        if self.run_busy():
            current = self.host.execution
            what = f" ({current.session_id}, {current.session_state})" if current else ""
            self.notify(f"A run is already active{what}: pause, abort or wait for it before "
                        f"starting {intent}.", severity="warning", markup=False)
            return
        self.action_go("dashboard")
        self.work(partial(self._run_intent, intent), group="run",
                  description=f"run intent {intent}")

    async def _run_intent(self, intent: str) -> None:
        execution = await self.host.start(intent)
        self.post_message(msg.FocusSession(execution.session_id))
        self.post_message(msg.RunStarted(execution.session_id, intent))
        began = self.clock()
        final = await self.host.run(execution)
        self.post_message(msg.RunFinished(execution.session_id, final, self.clock() - began))

    def carry_on(self, session_id: str | None = None, *, at_start: bool = False) -> None:
        """Bring back a session whose engine is gone (the app quit, or crashed) where it was:
        the one named, else the newest of this workspace."""
        if self.run_busy():
            if at_start:
                return
            self.notify("A run is already active here; carry the other session on after it.",
                        severity="warning", markup=False)
            return
        self.work(partial(self._carry_on, session_id), group="run",
                  description="carry on a session")

    async def _carry_on(self, session_id: str | None) -> None:
        orphans = await self.host.orphans()
        if session_id is not None:
            orphans = [s for s in orphans if s.id.startswith(session_id)]
            if not orphans:
                self.notify(f"No session {session_id} of this workspace waits to carry on.",
                            severity="warning", markup=False)
                return
        if not orphans:
            return
        execution, settled = await self.host.recover(orphans[0])
        self.notify(settled.summary(), title="Carried on", markup=False, timeout=8)
        if len(orphans) > 1:
            others = ", ".join(s.id for s in orphans[1:4])
            self.notify(f"Also waiting: {others} (/resume SESSION)", markup=False)
        self.post_message(msg.FocusSession(execution.session_id, "dashboard"))
        began = self.clock()
        final = await self.host.run(execution)
        self.post_message(msg.RunFinished(execution.session_id, final, self.clock() - began))

    def on_run_started(self, event: msg.RunStarted) -> None:
        self.notify(f"{event.session_id}: {event.intent} started", markup=False, timeout=3)

    def on_run_finished(self, event: msg.RunFinished) -> None:
        severity = OUTCOME_SEVERITY.get(SessionState(event.state), "error")
        self.notify(f"{event.session_id} {event.state} after {seconds(event.seconds)}",
                    severity=severity, markup=False)
        snap = self.feed.take_live()
        if snap is not None:
            self.show_snapshot(snap)

    # ----- control -----------------------------------------------------------------------

    def on_session_control(self, event: msg.SessionControl) -> None:
        self.control(event.action)

    def control(self, action: str) -> None:
        """Pause, resume or abort the live run here; else the session run by another process,
        through the command grammar (as `orchestrator pause` would)."""
        live = self.host.execution
        if live is not None and self.host.active:
            if action == "pause" and live.session_state != SessionState.EXECUTING:
                self.notify(f"Not paused: the session is {live.session_state}.", markup=False)
                return
            if action == "resume" and live.session_state != SessionState.PAUSED:
                self.notify(f"Not resumed: the session is {live.session_state}.", markup=False)
                return
            self.host.request(action)
            self.feed.focus(live.session_id)
            return
        if action == "resume":
            self.work(partial(self._resume_elsewhere, None), group="control",
                      description="resume the session")
            return
        self.work(partial(self._control_elsewhere, action), group="control",
                  description=f"{action} the session")

    async def _resume_elsewhere(self, session_id: str | None) -> None:
        """Resume a session of another process, or carry it on here if its engine is gone."""
        if any(session_id is None or s.id.startswith(session_id)
               for s in await self.host.orphans()):
            self.carry_on(session_id)
            return
        await self._control_elsewhere("resume" + (f" {session_id}" if session_id else ""))

    async def _control_elsewhere(self, action: str) -> None:
        try:
            result = await execute(parse_slash(action), self.command_context())
        except OrchestratorError as error:
            self.notify(f"Nothing to {action}: {error}", severity="warning", markup=False)
            return
        self.notify(result.text, severity="information" if result.ok else "warning",
                    markup=False)
        self.feed.next_read = 0.0

    def on_settings_changed(self, event: msg.SettingsChanged) -> None:
        self.settings.update(event.values)
        theme = event.values.get("theme")
        if theme and theme in self.available_themes:
            self.theme = theme
        limit = event.values.get("parallel_limit")
        if limit:
            self.host.request("set-limit", limit)  # stored for later sessions; this one now

    def command_context(self) -> CommandContext:
        """Where commands of the command bar act."""
        return CommandContext(db_path=self.db_path, workspace=self.workspace)

    # ----- quitting, help, commands ------------------------------------------------------

    async def action_quit(self) -> None:
        """Quit; with a run active, ask first. The session is kept: its agents are stopped
        and it carries on where it was when the app starts here again."""
        live = self.host.execution
        if live is None or not self.run_busy():
            self.exit()
            return

        def decided(yes: bool | None) -> None:
            if yes:
                self.notify("Stopping the agents, then quitting…", timeout=5)
                self.work(self._suspend_then_exit, group="quit", description="quit")

        self.push_screen(ConfirmScreen(
            f"Session {live.session_id} is {live.session_state}.",
            "Quit? Its agents are stopped now; the session carries on where it was when you "
            "open the app here again (or run `orchestrator resume`). To end it instead, "
            "abort it first (a).", yes="Quit"), decided)

    async def _suspend_then_exit(self) -> None:
        await self.host.suspend()
        self.exit()

    def action_help(self) -> None:
        """Show the keys of this screen, the keys that work everywhere, and the commands."""
        self.push_screen(HelpScreen(self.screen))

    def action_command_bar(self, text: str = "", run: bool = False) -> None:
        """Open the command bar, optionally with a command typed in (and run)."""
        if not isinstance(self.screen, CommandBarScreen):
            self.push_screen(CommandBarScreen(text, run=run))
