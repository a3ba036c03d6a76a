"""The dashboard: state, session and progress; active agents; resources; messages; predictions;
and the keys of the spec's ACTIONS row (pause, abort, resume, details, logs, help).

The app's timer assigns one snapshot to `snapshot`; the panels are bound to it and update in
their own watch methods. Resources are sampled once a second while the screen is shown; the
message counts are read from the bus as snapshots arrive, at most once a second.
"""

from __future__ import annotations

import json
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.timer import Timer
from textual.widgets import DataTable, Static

from orchestrator_tui.core.plan import Plan
from orchestrator_tui.core.states import ACTIVE_SESSION_STATES
from orchestrator_tui.engine.events import Snapshot
from orchestrator_tui.store import queries
from orchestrator_tui.ui import messages as msg
from orchestrator_tui.ui.format import show
from orchestrator_tui.ui.intents import IntentHistory, intent_history
from orchestrator_tui.ui.screens.base import ModeScreen
from orchestrator_tui.ui.screens.confirm import ConfirmScreen
from orchestrator_tui.ui.screens.details import DetailsScreen
from orchestrator_tui.ui.widgets.agents_table import AgentsTable
from orchestrator_tui.ui.widgets.info_panels import MessagesPanel, PredictionsPanel
from orchestrator_tui.ui.widgets.resources_panel import ResourcesPanel
from orchestrator_tui.ui.widgets.status_panel import StatusPanel

IDLE_EVERY = 5
"""With no active session, resources are sampled once in this many periods."""


class DashboardScreen(ModeScreen):
    """The spec's monitoring dashboard."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("p,P", "pause", "Pause"),
        Binding("r,R", "resume", "Resume"),
        Binding("a,A", "abort", "Abort"),
        Binding("d,D", "details", "Details"),
        Binding("l,L", "app.go('messages')", "Logs"),
        Binding("h,H", "app.help", "Help"),
        Binding("j,J", "app.go('messages')", "Messages", show=False),
        Binding("question_mark", "app.help", "Help", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._history: IntentHistory | None = None
        self._history_for: str | None = None
        self._plan: Plan | None = None
        self._sampling: Timer | None = None
        self._ticks = 0

    def compose_body(self) -> ComposeResult:
        feed = self.orchestrator.feed
        status = StatusPanel(id="status", classes="panel")
        status.border_title = "ORCHESTRATOR DASHBOARD"
        agents = Vertical(id="agents", classes="panel")
        agents.border_title = "ACTIVE AGENTS"
        resources = ResourcesPanel(id="resources", classes="panel")
        resources.border_title = "RESOURCES"
        messages = MessagesPanel(id="messages-panel", classes="panel")
        messages.border_title = "MESSAGES"
        predictions = PredictionsPanel("Remaining: no data yet", id="predictions",
                                       classes="panel")
        predictions.border_title = "PREDICTIONS"
        with Vertical(id="dashboard"):
            yield status.data_bind(DashboardScreen.snapshot)
            with agents:
                yield AgentsTable(feed.task_state, feed.journal, id="agents-table").data_bind(
                    DashboardScreen.snapshot)
                yield Static("", id="queue-line")
            with Horizontal(id="lower"):
                yield resources
                yield messages
                yield predictions

    def on_mount(self) -> None:
        self._sample()
        self._sampling = self.set_interval(self.orchestrator.resource_period, self._sample)

    def on_screen_suspend(self) -> None:
        if self._sampling is not None:
            self._sampling.pause()

    def _resumed(self) -> None:
        super()._resumed()
        if self._sampling is not None:
            self._sampling.resume()

    def _sample(self) -> None:
        """Sample every period while a session is active, else every IDLE_EVERY periods (a
        redraw costs the same however little changed)."""
        self._ticks += 1
        if self.orchestrator.feed.state not in ACTIVE_SESSION_STATES and \
                (self._ticks - 1) % IDLE_EVERY:
            return
        self.query_one(ResourcesPanel).add(self.orchestrator.sampler.sample())

    def refresh_data(self) -> None:
        self.orchestrator.work(self._load_history, group="dashboard",
                               description="read past sessions for predictions")
        self._want_bus(force=True)

    def _want_bus(self, *, force: bool = False) -> None:
        """Read the message counts when due (or now, with `force`)."""
        app = self.orchestrator
        if app.feed.wants_bus(app.clock(), force=force):
            app.work(self._read_bus, group="bus", description="read the message bus")

    async def _read_bus(self) -> None:
        feed = self.orchestrator.feed
        bus = await self.orchestrator.reader.bus()
        if bus is not None:
            await feed.read_bus(bus, lists=False)
            self.query_one(MessagesPanel).show_counts(feed.bus.counts)  # redraws on change

    async def _load_history(self) -> None:
        feed = self.orchestrator.feed
        live = feed.live
        intent = live.plan.intent.name if live else feed.session.intent if feed.session else None
        self._plan = live.plan if live else None
        conn = await self.orchestrator.reader.get()
        if conn is None or feed.session_id is None:
            return
        if intent is None or self._plan is None:
            session = await queries.find_session(conn, feed.session_id)
            intent = session.intent
            self._plan = Plan.from_dict(json.loads(session.plan))
        sessions = await queries.list_sessions(conn, limit=500)
        past = [s for s in sessions if s.id != feed.session_id]
        self._history, self._history_for = intent_history(past, intent), feed.session_id
        if self.snapshot is not None:
            self._show_predictions(self.snapshot)

    def watch_snapshot(self, old: Snapshot | None, snap: Snapshot | None) -> None:
        if snap is None:
            return
        running = len(snap.running)
        self.query_one("#agents").border_title = \
            f"ACTIVE AGENTS ({running}/{snap.parallel_limit})"
        ready, pending = snap.counts.get("ready", 0), snap.counts.get("pending", 0)
        show(self.query_one("#queue-line", Static),
             f"Queued: ○ {ready} ready · · {pending} waiting for dependencies")
        if old is None or old.state != snap.state:
            self.refresh_bindings()
        if self._history_for != snap.session_id:
            self._history_for = snap.session_id
            self.refresh_data()
        else:
            self._want_bus()
        self._show_predictions(snap)

    def _show_predictions(self, snap: Snapshot) -> None:
        self.query_one(PredictionsPanel).show(self._history, snap.remaining,
                                              snap.state in ACTIVE_SESSION_STATES, self._plan)

    # ----- actions -----------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Pause only while executing, resume only while paused, abort while active."""
        state = self.orchestrator.feed.state
        if action == "pause":
            return state == "EXECUTING"
        if action == "resume":
            return state == "PAUSED"
        if action == "abort":
            return state in ACTIVE_SESSION_STATES
        if action == "details":
            return self.snapshot is not None
        return True

    def action_pause(self) -> None:
        """Pause the session: its agent processes are stopped where they are."""
        self.post_message(msg.SessionControl("pause"))

    def action_resume(self) -> None:
        """Resume the paused session."""
        self.post_message(msg.SessionControl("resume"))

    def action_abort(self) -> None:
        """Abort the session after confirmation with `y`."""
        snap = self.snapshot
        if snap is None:
            return

        def decided(yes: bool | None) -> None:
            if yes:
                self.post_message(msg.SessionControl("abort"))

        self.app.push_screen(ConfirmScreen(
            f"Abort session {snap.session_id} ({snap.state})?",
            "Every agent process it started is stopped; finished work is kept.",
            yes="Abort"), decided)

    def action_details(self) -> None:
        """Show the selected agent: its live output, attempts and timings."""
        task_id = self.query_one(AgentsTable).selected_task
        if task_id is None or self.snapshot is None:
            self.notify("No agent selected: the table is empty.", timeout=3)
            return
        self.app.push_screen(DetailsScreen(self.snapshot.session_id, task_id))

    @on(DataTable.RowSelected, "#agents-table")
    def _row_chosen(self) -> None:
        self.action_details()
