"""The active agents: one row per running task, plus the last few that finished, updated by
diffing on row keys (`update_cell` for changed cells only; the table is never refilled)."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import DataTable

from orchestrator_tui.engine.events import Snapshot, TaskView
from orchestrator_tui.ui.format import FINISHED, agent_bar, elapsed_text, styled_state
from orchestrator_tui.ui.journal import JournalStore
from orchestrator_tui.views import seconds

COLUMNS = (("state", "State", 12), ("progress", "Progress", 10), ("elapsed", "Elapsed", 10),
           ("attempt", "Try", 3), ("pid", "PID", 7), ("agent", "Agent / task", None))
"""Column key, label and width (None: as wide as the content). The name comes last, so that
a long one is what a narrow terminal cuts."""
KEEP_FINISHED = 4
"""Finished tasks kept in the table below the running ones."""

Cells = tuple[object, ...]


class AgentsTable(DataTable[object]):
    """Running agents with a status mark and word, a bar, elapsed time, attempt and pid."""

    snapshot: reactive[Snapshot | None] = reactive(None, init=False, repaint=False)
    """The session at the last tick (bound to the dashboard's snapshot)."""

    def __init__(self, final_state: Callable[[str], str | None], journal: JournalStore,
                 **kwargs: object) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)  # type: ignore[arg-type]
        self._final_state = final_state
        self._journal = journal
        self._seen_seq = 0
        self._attempts: dict[str, int] = {}
        self._session: str | None = None
        self._cells: dict[str, Cells] = {}
        self._views: dict[str, TaskView] = {}
        self._elapsed: dict[str, float] = {}
        self._finished: deque[str] = deque()

    def on_mount(self) -> None:
        for key, label, width in COLUMNS:
            self.add_column(label, key=key, width=width)

    def _colours(self) -> Mapping[str, str]:
        return getattr(self.app, "colours", {})

    def _row(self, view: TaskView, state: str, elapsed: float) -> Cells:
        colours = self._colours()
        done = state in FINISHED or state == "finished"
        bar_style = colours.get("success" if state == "succeeded" else "error"
                                if done else "primary", "")
        bar = agent_bar("succeeded" if done else state, elapsed)
        took = seconds(max(0.0, elapsed)) if done else elapsed_text(elapsed)
        return (styled_state(state, colours), Text(bar, style=bar_style), took,
                str(view.attempt),
                str(view.pid) if view.pid is not None else "-", Text(view.task_id))

    def _put(self, task_id: str, cells: Cells) -> None:
        old = self._cells.get(task_id)
        if old is None:
            self.add_row(*cells, key=task_id)
        else:
            for (column, _label, width), before, after in zip(COLUMNS, old, cells, strict=True):
                if before != after:
                    self.update_cell(task_id, column, after, update_width=width is None)
        self._cells[task_id] = cells

    def watch_snapshot(self, snap: Snapshot | None) -> None:
        session = snap.session_id if snap is not None else None
        if session != self._session:
            self.clear()
            self._session = session
            self._cells.clear()
            self._views.clear()
            self._elapsed.clear()
            self._finished.clear()
            self._attempts.clear()
            self._seen_seq = 0
        if snap is None:
            return
        running = {view.task_id: view for view in snap.running}
        now = math.floor(snap.taken_at)  # every elapsed cell turns over at the same tick
        quick, ended = self._quick_ones(snap, running)
        left = [tid for tid in self._cells if tid not in running and tid not in self._finished]
        finished = [tid for tid in self._finished if tid not in running] + left + list(quick)
        keep = set(finished[-KEEP_FINISHED:])
        for task_id in finished[:-KEEP_FINISHED]:
            if task_id in self._cells:
                self.remove_row(task_id)
            for table in (self._cells, self._views, self._elapsed):
                table.pop(task_id, None)
        self._finished = deque(tid for tid in finished if tid in keep)
        for task_id, view in running.items():
            elapsed = now - view.started_at
            self._views[task_id], self._elapsed[task_id] = view, elapsed
            self._put(task_id, self._row(view, view.state, elapsed))
        for task_id in left:
            if task_id in keep:
                state = self._final_state(task_id) or "finished"
                if state in ("running", "paused"):
                    state = "ready"
                view = self._views[task_id]
                if task_id in ended:
                    self._elapsed[task_id] = ended[task_id][1] - view.started_at
                self._put(task_id, self._row(view, state, self._elapsed[task_id]))
        for task_id, (view, state, elapsed) in quick.items():
            if task_id in keep:
                self._views[task_id], self._elapsed[task_id] = view, elapsed
                self._put(task_id, self._row(view, state, elapsed))

    def _quick_ones(self, snap: Snapshot, running: dict[str, TaskView]
                    ) -> tuple[dict[str, tuple[TaskView, str, float]],
                               dict[str, tuple[str, float]]]:
        """Tasks that started and finished between two snapshots, and every task that
        finished since the last one (its state and when), from the journal."""
        journal = self._journal
        if journal.session_id != snap.session_id:
            return {}, {}
        started: dict[str, float] = {}
        ended: dict[str, tuple[str, float]] = {}
        for entry in journal.since(self._seen_seq):
            if entry.kind != "task" or entry.task_id is None:
                continue
            if entry.new == "running" and entry.old != "paused":
                started[entry.task_id] = entry.at
                self._attempts[entry.task_id] = self._attempts.get(entry.task_id, 0) + 1
            elif entry.new in FINISHED:
                ended[entry.task_id] = (entry.new, entry.at)
        self._seen_seq = journal.seq
        quick = [tid for tid in ended if tid in started and tid not in running
                 and tid not in self._cells][-KEEP_FINISHED:]
        found = {}
        for task_id in quick:
            state, at = ended[task_id]
            view = TaskView(task_id, "", state, self._attempts.get(task_id, 1),
                            started[task_id], None)
            found[task_id] = (view, state, at - started[task_id])
        return found, ended

    @property
    def selected_task(self) -> str | None:
        """The task id of the row under the cursor, if any."""
        if not self.row_count:
            return None
        row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        return str(row_key.value) if row_key.value is not None else None
