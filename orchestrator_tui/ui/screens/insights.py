"""Insights: what the recorded sessions say. Per intent: runs, completions and the median
duration; the spec's success metrics against their targets, agent performance, the solution
cache, predictions against what really happened and usual next intents; every session with
its state, duration and task counts; and the tasks of the selected session. Without history
each figure says so."""

from __future__ import annotations

from collections import Counter
from functools import partial
from typing import ClassVar

import aiosqlite
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Static

from orchestrator_tui.engine.learning import PastPrediction, past_predictions
from orchestrator_tui.engine.patterns import (
    AgentPerformance,
    Metric,
    agent_performance,
    patterns,
    success_metrics,
)
from orchestrator_tui.store import cache as cache_store
from orchestrator_tui.store import learning as history
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


def _percent(value: float | None) -> str:
    return f"{value:.0%}" if value is not None else "not yet known"


def _value(metric: Metric) -> str:
    return seconds(metric.value) if metric.unit == "s" and metric.value is not None \
        else _percent(metric.value)


def metrics_text(metrics: list[Metric]) -> Text:
    """The spec's success metrics: value, target, and what the value comes from."""
    text = Text("SUCCESS METRICS (now / target):", style="bold")
    for metric in metrics:
        mark = {True: ("✓", "green"), False: ("✗", "red"), None: ("?", "dim")}[metric.met]
        text.append(f"\n  {mark[0]} ", style=mark[1])
        text.append(f"{metric.name}: {_value(metric)} / {metric.target}")
        if metric.value is not None:
            text.append(f" ({metric.basis})", style="dim")
    return text


def agents_text(rows: list[AgentPerformance], shown: int = 5) -> Text:
    """The busiest agents: runs, success rate, median and p90 durations, retries."""
    text = Text("\nAGENTS:", style="bold")
    if not rows:
        text.append(" no data yet")
    for row in rows[:shown]:
        runs = f"{row.runs} run" + ("s" if row.runs != 1 else "")
        text.append(f"\n  {row.agent[:20]:<20} {runs:>9} "
                    f"{_percent(row.success_rate) if row.success_rate is not None else '-':>4}"
                    f" median {seconds(row.median_seconds)} p90 {seconds(row.p90_seconds)}"
                    f" retries {row.retries}")
    return text


def predictions_text(past: list[PastPrediction], width: int = 24) -> Text:
    """Predicted against real durations of past sessions, as bars on one scale."""
    text = Text("\nPREDICTED vs ACTUAL:", style="bold")
    if not past:
        text.append(" no data yet (a forecast needs history from before the session)")
        return text
    scale = max(max(p.high, p.actual) for p in past) or 1.0
    inside = sum(p.inside for p in past)
    text.append(f" {inside} of {len(past)} inside the interval", style="dim")
    for item in past:
        text.append(f"\n  {item.session_id[:13]:<13} {item.intent[:9]:<9} ")
        text.append("█" * max(1, round(item.predicted / scale * width)), style="cyan")
        text.append(f" {seconds(item.predicted)} ({seconds(item.low)}-{seconds(item.high)})")
        text.append(f"\n  {'':<23}")
        text.append("█" * max(1, round(item.actual / scale * width)),
                    style="green" if item.inside else "yellow")
        text.append(f" {seconds(item.actual)} real")
    return text


class InsightsScreen(ModeScreen):
    """History of sessions and the tasks of the selected one."""

    DEFAULT_CSS = """
    #insights-top { height: auto; max-height: 40%; }
    #insights-top > #learning { width: 1fr; max-height: 16; }
    #learned-scroll { width: 2fr; height: auto; max-height: 16; }
    #learned { height: auto; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "follow", "Follow session", show=False),
        Binding("o,O", "follow", "Open"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._tasks_of: str | None = None

    def compose_body(self) -> ComposeResult:
        with Vertical(id="insights"):
            with Horizontal(id="insights-top"):
                yield Static(Text("LEARNING: reading…"), id="learning", classes="panel")
                with VerticalScroll(id="learned-scroll", classes="panel"):
                    yield Static(Text("reading…"), id="learned")
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
        if conn is not None:
            self.query_one("#learned", Static).update(await learned_text(conn, rows))
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


async def learned_text(conn: aiosqlite.Connection, sessions: list[SessionRow]) -> Text:
    """Metrics, agents, the cache, predictions against reality and usual next intents."""
    attempts = await history.attempt_samples(conn)  # one read for the three that use it
    text = metrics_text(await success_metrics(conn, attempts))
    text.append_text(agents_text(await agent_performance(conn, attempts)))
    hits, misses = await cache_store.counters(conn)
    stored = await cache_store.size(conn)
    text.append("\nCACHE:", style="bold")
    text.append(f" {hits} hits in {hits + misses} lookups ({_percent(hits / (hits + misses))}),"
                f" {stored} solutions stored" if hits + misses else
                f" no lookup yet, {stored} solutions stored")
    text.append_text(predictions_text(await past_predictions(conn, count=5,
                                                             attempts=attempts)))
    text.append("\nPATTERNS:", style="bold")
    found = False
    for intent, _runs in Counter(s.intent for s in sessions).most_common(3):
        following = (await patterns(conn, intent)).next_intents
        if following:
            found = True
            name, n = following[0]
            total = sum(count for _, count in following)
            text.append(f"\n  after {intent} you usually run {name} ({n} of {total})")
    if not found:
        text.append(" no data yet")
    return text
