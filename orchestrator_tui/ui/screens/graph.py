"""The graph: the focused session's plan by levels, with state marks, the critical path, search
by name, and the selected task's dependencies, dependents and timings."""

from __future__ import annotations

import json
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Input, Static, Tree

from orchestrator_tui.core.plan import Plan
from orchestrator_tui.core.states import ACTIVE_SESSION_STATES
from orchestrator_tui.engine.events import Snapshot
from orchestrator_tui.store import queries
from orchestrator_tui.store.queries import TaskRow
from orchestrator_tui.ui.format import styled_state, task_mark
from orchestrator_tui.ui.screens.base import ModeScreen
from orchestrator_tui.ui.widgets.plan_tree import CRITICAL, NodeData, PlanTree
from orchestrator_tui.views import seconds, stamp

REFRESH_SECONDS = 1.0
LEGEND = f"{CRITICAL} critical path · · pending ○ ready ▶ running ‖ paused ✓ succeeded " \
         "✗ failed ↷ skipped ■ cancelled"
LIST_AT_MOST = 12
"""Dependencies or dependents listed by name; more are counted."""


class GraphScreen(ModeScreen):
    """The plan's DAG of the focused session."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f,F", "search", "Find"),
        Binding("n,N", "next_match", "Next"),
        Binding("escape", "leave_search", "Back to the tree", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._session: str | None = None
        self._tasks: dict[str, TaskRow] = {}
        self._matches: list[str] = []
        self._match_index = -1
        self._next_read = 0.0

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="graph"):
            with Vertical(id="graph-left"):
                yield Input(placeholder="find a task by name (Enter: next match)",
                            id="search", compact=True)
                yield PlanTree(id="plan-tree")
                yield Static(Text(LEGEND), id="legend")
            with VerticalScroll(id="graph-right"):
                yield Static("Select a task to see its dependencies.", id="node-details")

    def on_mount(self) -> None:
        self.query_one("#graph-right").border_title = "TASK"
        self.query_one(PlanTree).focus()

    def refresh_data(self) -> None:
        self._next_read = 0.0
        self._read()

    def watch_snapshot(self, snap: Snapshot | None) -> None:
        if snap is None:
            return
        now = self.orchestrator.clock()
        if snap.session_id != self._session or (
                snap.state in ACTIVE_SESSION_STATES and now >= self._next_read):
            self._read()

    def _read(self) -> None:
        self._next_read = self.orchestrator.clock() + REFRESH_SECONDS
        self.orchestrator.work(self._load, group="graph",
                               description="read the plan and its task states")

    async def _load(self) -> None:
        app = self.orchestrator
        feed = app.feed
        session_id = feed.session_id
        conn = await app.reader.get()
        if session_id is None or conn is None:
            return
        tree = self.query_one(PlanTree)
        rows = await queries.session_tasks(conn, session_id)
        self._tasks = {row.id: row for row in rows}
        states = {row.id: row.state for row in rows}
        if session_id != self._session:
            live = feed.live
            session = await queries.find_session(conn, session_id)
            plan = live.plan if live is not None else Plan.from_dict(json.loads(session.plan))
            title = (f"plan of {session.id} ({session.intent}): {len(plan)} tasks, "
                     f"{plan.level_count} levels")
            tree.show_plan(plan, title, states)
            self._session = session_id
        else:
            tree.update_states(states)
        self._show_node(tree.cursor_node.data if tree.cursor_node else None)

    # ----- selection and search ----------------------------------------------------------

    @on(Tree.NodeHighlighted, "#plan-tree")
    def _highlighted(self, event: Tree.NodeHighlighted[NodeData]) -> None:
        self._show_node(event.node.data)

    def _show_node(self, data: NodeData | None) -> None:
        tree = self.query_one(PlanTree)
        details = self.query_one("#node-details", Static)
        plan = tree.plan
        if plan is None or data is None or data.task_id is None:
            if plan is not None and data is not None:
                members = tree.levels.get(data.level, [])
                details.update(Text(f"Level {data.level}: {len(members)} tasks\n"
                                    "Open it (Enter or →) to list its tasks."))
            return
        details.update(self._describe(plan, tree, data.task_id))

    def _describe(self, plan: Plan, tree: PlanTree, task_id: str) -> Text:
        colours = self.orchestrator.colours
        state = tree.states.get(task_id, "pending")
        spec = plan.tasks[task_id]
        text = Text(task_id, style="bold")
        if task_id in tree.critical:
            text.append(f"  {CRITICAL} on the critical path")
        text.append("\nstate: ")
        text.append_text(styled_state(state, colours))
        text.append(f"\nlevel {plan.levels[task_id]} · kind {spec.kind}")
        for title, names in (("depends on", plan.dependencies(task_id)),
                             ("needed by", plan.dependents(task_id))):
            text.append(f"\n\n{title} ({len(names)}):")
            for name in names[:LIST_AT_MOST]:
                text.append(f"\n  {task_mark(tree.states.get(name, 'pending'))} {name}")
            if len(names) > LIST_AT_MOST:
                text.append(f"\n  … and {len(names) - LIST_AT_MOST} more")
        row = self._tasks.get(task_id)
        if row is not None:
            took = row.finished_at - row.started_at if row.finished_at and row.started_at \
                else None
            text.append(f"\n\nattempts {row.attempts} · started {stamp(row.started_at)[11:]}"
                        f" · took {seconds(took)}")
            if row.exit_code is not None:
                text.append(f" · exit {row.exit_code}")
            if row.error or row.result:
                text.append(f"\n{row.error or row.result}")
        return text

    @on(Input.Changed, "#search")
    def _search_changed(self, event: Input.Changed) -> None:
        tree = self.query_one(PlanTree)
        needle = event.value.strip().lower()
        order = tree.plan.order if tree.plan is not None else []
        self._matches = [t for t in order if needle in t.lower()] if needle else []
        self._match_index = -1
        self.query_one("#legend", Static).update(Text(
            f"{len(self._matches)} match{'es' if len(self._matches) != 1 else ''} · "
            "Enter or n: next" if needle else LEGEND))

    @on(Input.Submitted, "#search")
    def action_next_match(self) -> None:
        """Select the next task whose name matches the search."""
        if not self._matches:
            return
        self._match_index = (self._match_index + 1) % len(self._matches)
        self.query_one(PlanTree).reveal(self._matches[self._match_index])

    def action_search(self) -> None:
        """Type a name to find."""
        self.query_one("#search", Input).focus()

    def action_leave_search(self) -> None:
        """Back to the tree."""
        self.query_one(PlanTree).focus()
