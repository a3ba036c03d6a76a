"""Insights: what the recorded sessions say. Per intent: runs, completions and the median
duration; every session with its state, duration and task counts; and the tasks of the
selected session. Learned predictions will join these figures; without history it says so."""

from __future__ import annotations

from collections import Counter
from functools import partial
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from orchestrator_tui.store import queries
from orchestrator_tui.store.queries import SessionRow
from orchestrator_tui.ui import messages as msg
from orchestrator_tui.ui.format import styled_state, task_mark
from orchestrator_tui.ui.intents import intent_history
from orchestrator_tui.ui.screens.base import ModeScreen
from orchestrator_tui.views import seconds, stamp

SESSIONS_SHOWN = 200


def learning_text(sessions: list[SessionRow]) -> Text:
    """Per-intent figures from the sessions, or `no history yet`."""
    if not sessions:
        return Text("LEARNING: no history yet. Once sessions are recorded, each intent's runs, "
                    "completion rate and typical duration appear here, and the menu and the "
                    "dashboard use them for estimates.")
    text = Text("LEARNING (from recorded sessions):")
    for intent, _runs in Counter(s.intent for s in sessions).most_common():
        history = intent_history(sessions, intent)
        median = seconds(history.median_seconds) if history.median_seconds is not None \
            else "no completed run yet"
        rate = f"{history.success_rate:.0%}" if history.success_rate is not None else "-"
        text.append(f"\n  {intent}: {history.finished} finished, {history.completed} "
                    f"completed ({rate}), median {median}")
    return text


class InsightsScreen(ModeScreen):
    """History of sessions and the tasks of the selected one."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "follow", "Follow session", show=False),
        Binding("o,O", "follow", "Open"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._tasks_of: str | None = None

    def compose_body(self) -> ComposeResult:
        with Vertical(id="insights"):
            yield Static(Text("LEARNING: reading…"), id="learning", classes="panel")
            yield DataTable(id="sessions", cursor_type="row", zebra_stripes=True,
                            classes="panel")
            yield DataTable(id="session-tasks", cursor_type="row", zebra_stripes=True,
                            classes="panel")

    def on_mount(self) -> None:
        sessions = self.query_one("#sessions", DataTable)
        for label in ("Session", "Intent", "State", "Duration", "Tasks", "Started"):
            sessions.add_column(label, key=label.lower())
        tasks = self.query_one("#session-tasks", DataTable)
        for label in ("Task", "Kind", "State", "Tries", "Took", "Result"):
            tasks.add_column(label, key=label.lower())
        sessions.border_title = "SESSIONS"
        tasks.border_title = "TASKS OF THE SELECTED SESSION"
        sessions.focus()

    def refresh_data(self) -> None:
        self.orchestrator.work(self._load, group="insights", description="read past sessions")

    async def _load(self) -> None:
        conn = await self.orchestrator.reader.get()
        rows = await queries.list_sessions(conn, limit=SESSIONS_SHOWN) if conn else []
        self.query_one("#learning", Static).update(learning_text(rows))
        table = self.query_one("#sessions", DataTable)
        colours = self.orchestrator.colours
        now = self.orchestrator.clock()
        for row in rows:
            counts = await queries.task_counts(conn, row.id) if conn else {}
            tally = " ".join(f"{task_mark(s)}{n}" for s, n in sorted(counts.items()))
            cells = (row.id, row.intent, styled_state(row.state, colours, session=True),
                     seconds((row.finished_at or now) - row.created_at), tally,
                     stamp(row.created_at)[:19])
            if row.id in table.rows:
                for column, value in zip(("session", "intent", "state", "duration", "tasks",
                                          "started"), cells, strict=True):
                    table.update_cell(row.id, column, value)
            else:
                table.add_row(*cells, key=row.id)
        if rows and self._tasks_of is None:
            self._show_tasks(rows[0].id)

    @on(DataTable.RowHighlighted, "#sessions")
    def _session_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None:
            self._show_tasks(str(event.row_key.value))

    def _show_tasks(self, session_id: str) -> None:
        if session_id == self._tasks_of:
            return
        self._tasks_of = session_id
        self.orchestrator.work(partial(self._load_tasks, session_id), group="insights-tasks",
                               description=f"read the tasks of {session_id}")

    async def _load_tasks(self, session_id: str) -> None:
        conn = await self.orchestrator.reader.get()
        if conn is None:
            return
        rows = await queries.session_tasks(conn, session_id)
        table = self.query_one("#session-tasks", DataTable)
        table.clear()
        table.border_title = f"TASKS OF {session_id} ({len(rows)})"
        colours = self.orchestrator.colours
        for row in sorted(rows, key=lambda r: (r.started_at or float("inf"), r.id)):
            took = row.finished_at - row.started_at if row.finished_at and row.started_at \
                else None
            table.add_row(Text(row.id), row.kind, styled_state(row.state, colours),
                          str(row.attempts), seconds(took),
                          Text((row.error or row.result or "")[:200]), key=row.id)

    @on(DataTable.RowSelected, "#sessions")
    def action_follow(self) -> None:
        """Show the selected session on the dashboard."""
        if self._tasks_of is not None:
            self.post_message(msg.FocusSession(self._tasks_of, mode="dashboard"))
