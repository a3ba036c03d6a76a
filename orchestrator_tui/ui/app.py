"""The application: one mode per top-level screen, the engine on the app's loop, one 4 Hz timer
that hands the focused session's snapshot to the active screen, and `run_app`."""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine, Sequence
from functools import partial
from pathlib import Path, PurePath
from typing import Any, ClassVar

from textual import on
from textual.app import App
from textual.binding import Binding, BindingType
from textual.worker import Worker, WorkerState

from orchestrator_tui.core.errors import OrchestratorError
from orchestrator_tui.core.models import Workflow
from orchestrator_tui.engine.events import Snapshot
from orchestrator_tui.engine.shipped import shipped_dir
from orchestrator_tui.engine.workflows import read_workflow, workflow_path
from orchestrator_tui.store import queries
from orchestrator_tui.ui import messages as msg
from orchestrator_tui.ui.feed import Feed
from orchestrator_tui.ui.format import session_mark, theme_colours
from orchestrator_tui.ui.host import RunHost
from orchestrator_tui.ui.palette import SlashCommands
from orchestrator_tui.ui.reader import Reader
from orchestrator_tui.ui.resources import PsutilSampler, Sampler
from orchestrator_tui.ui.screens.base import ModeScreen
from orchestrator_tui.ui.screens.dashboard import DashboardScreen
from orchestrator_tui.ui.screens.graph import GraphScreen
from orchestrator_tui.ui.screens.insights import InsightsScreen
from orchestrator_tui.ui.screens.menu import MenuScreen
from orchestrator_tui.ui.screens.messages import MessagesScreen
from orchestrator_tui.ui.session_actions import SessionActions
from orchestrator_tui.ui.settings_store import load_settings

TICK_SECONDS = 0.25
"""The one timer's period: snapshots reach the active screen four times a second."""
STYLES = ("app", "menu", "dashboard", "messages", "graph", "insights", "modals")


class OrchestratorApp(SessionActions, App[None]):
    """Plan, run and watch agents: menu, dashboard, messages, graph and insights."""

    TITLE = "ORCHESTRATOR"
    CSS_PATH: ClassVar[list[str | PurePath]] = [shipped_dir("styles") / f"{name}.tcss"
                                                for name in STYLES]
    MODES: ClassVar[dict[str, Any]] = {
        "menu": MenuScreen, "dashboard": DashboardScreen, "messages": MessagesScreen,
        "graph": GraphScreen, "insights": InsightsScreen,
    }
    DEFAULT_MODE: ClassVar[str] = "menu"
    COMMANDS = App.COMMANDS | {SlashCommands}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q,Q", "quit", "Quit"),
        Binding("question_mark", "help", "Help"),
        Binding("slash,colon", "command_bar", "Cmd", tooltip="Open the command bar"),
        Binding("m,M", "go('menu')", "Menu"),
        Binding("b,B", "go('dashboard')", "Dashboard"),
        Binding("j,J", "go('messages')", "Messages"),
        Binding("g,G", "go('graph')", "Graph"),
        Binding("i,I", "go('insights')", "Insights"),
    ]

    def __init__(self, workspace: Path, db_path: Path, workflow: str | None = None, *,
                 clock: Callable[[], float] = time.time, sampler: Sampler | None = None,
                 resource_period: float = 1.0, host: RunHost | None = None,
                 agent_dirs: Sequence[Path] = ()) -> None:
        super().__init__()
        self.workspace, self.db_path = workspace, db_path
        self.clock = clock
        self.sampler: Sampler = sampler or PsutilSampler()
        self.resource_period = resource_period
        self.host = host or RunHost(workspace, db_path, workflow, agent_dirs)
        self.feed = Feed(self.host, clock)
        self.reader = Reader(db_path)
        self.workflow_file = workflow_path(workflow)
        self.workflow: Workflow | None = None
        """The workflow's intents; None when it cannot be read (see `workflow_error`)."""
        self.workflow_error: str | None = None
        try:
            self.workflow = read_workflow(self.workflow_file)  # small: before the first frame
        except OrchestratorError as error:
            self.workflow_error = str(error)
        self.settings: dict[str, str] = {}
        self.command_history: list[str] = []
        """Commands run in the command bar, oldest first."""
        self.colours: dict[str, str] = {}
        self.sub_title = "no session yet"

    # ----- start and ticking -------------------------------------------------------------

    def on_mount(self) -> None:
        self.colours = theme_colours(self.get_css_variables())
        self.theme_changed_signal.subscribe(self, self._theme_changed)
        self.set_interval(TICK_SECONDS, self._tick)
        self.work(self._load, group="load", description="read the workflow and settings")

    def _theme_changed(self, _theme: object) -> None:
        self.colours = theme_colours(self.get_css_variables())

    async def _load(self) -> None:
        if self.workflow_error:
            self.notify(self.workflow_error, title="Workflow", severity="error", markup=False)
        self.settings = await load_settings(self.db_path)
        theme = self.settings.get("theme")
        if theme and theme in self.available_themes:
            self.theme = theme
        conn = await self.reader.get()
        if conn is not None and self.feed.session_id is None:
            latest = await queries.list_sessions(conn, limit=1)
            if latest:
                self.feed.focus(latest[0].id)
        self._refresh_screen()
        if conn is not None:
            self.carry_on(at_start=True)

    def work(self, job: Callable[[], Coroutine[Any, Any, Any]], *, group: str,
             description: str, exclusive: bool = True) -> Worker[Any]:
        """Run the async function `job` as a worker of the app; errors become notifications.

        A function rather than a coroutine, so that a job replaced before it starts (the
        group is exclusive) leaves no coroutine unawaited.
        """
        return self.run_worker(job, group=group, description=description,
                               exclusive=exclusive, exit_on_error=False)

    def _tick(self) -> None:
        snap = self.feed.take_live()
        if snap is not None:
            self.show_snapshot(snap)
            return
        if self.feed.wants_read(self.clock()) and not self._busy("read"):
            self.work(self._read_database, group="read",
                      description="read the session from the database")

    async def _read_database(self, with_journal: bool = False) -> None:
        conn = await self.reader.get()
        if conn is None:
            return
        with_journal = with_journal or isinstance(self.screen, MessagesScreen)
        snap = await self.feed.read_database(conn, with_journal=with_journal)
        if snap is not None:
            self.show_snapshot(snap)

    def want_journal(self) -> None:
        """Read the recorded transitions now if the journal shown would be out of date."""
        feed = self.feed
        if feed.session_id is not None and feed.live is None and not feed.journal_fresh:
            self.work(partial(self._read_database, True), group="read",
                      description="read the session's transitions")

    def show_snapshot(self, snap: Snapshot) -> None:
        """Show the state in the header and hand the snapshot to the active mode screen."""
        with self.batch_update():
            self.sub_title = f"{session_mark(snap.state)} {snap.state} · {snap.session_id}"
            screen = self.screen
            if isinstance(screen, ModeScreen) and screen.ready:
                screen.snapshot = snap

    def _refresh_screen(self) -> None:
        screen = self.screen
        if isinstance(screen, ModeScreen) and screen.ready:
            screen.refresh_data()

    def _busy(self, group: str) -> bool:
        return any(worker.group == group and not worker.is_finished for worker in self.workers)

    # ----- errors ------------------------------------------------------------------------

    @on(Worker.StateChanged)
    def _worker_failed(self, event: Worker.StateChanged) -> None:
        if event.state != WorkerState.ERROR:
            return
        error = event.worker.error
        if isinstance(error, OrchestratorError):
            text = str(error)
        else:
            text = f"internal error while trying to {event.worker.description}: " \
                   f"{type(error).__name__}: {error}"
        self.notify(text, title="Error", severity="error", timeout=12, markup=False)

    # ----- navigation --------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Hide the key of the screen already shown; other keys always work."""
        return not (action == "go" and parameters and parameters[0] == self.current_mode)

    def action_go(self, mode: str) -> None:
        """Switch to a top-level screen."""
        if mode != self.current_mode:
            self.switch_mode(mode)

    @on(msg.FocusSession)
    def _focus_session(self, event: msg.FocusSession) -> None:
        if self.feed.focus(event.session_id):
            self.sub_title = f"{event.session_id}"
            self.feed.next_read = 0.0
        if event.mode is not None:
            self.action_go(event.mode)
        self._refresh_screen()

    async def on_unmount(self) -> None:
        await self.host.close()
        await self.reader.close()


def run_app(workspace: Path, db_path: Path, workflow: str | None = None,
            agent_dirs: Sequence[Path] = ()) -> int:
    """Run the app in this terminal until the user quits; the exit code is 0."""
    OrchestratorApp(workspace, db_path, workflow, agent_dirs=agent_dirs).run()
    return 0
