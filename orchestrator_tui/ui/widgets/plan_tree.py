"""The plan's DAG as a tree of levels: each level shows its counts per state and, when opened,
its tasks (built lazily, so a 1,000-task plan costs only what is shown). Tasks on the critical
path carry a ★ as well as a colour."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from rich.text import Text
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from orchestrator_tui.core.plan import Plan
from orchestrator_tui.ui.format import TASK_ROLES, counts_line, task_mark

OPEN_LEVEL_UP_TO = 12
"""Levels with at most this many tasks are opened at once; wider ones show counts first."""
CRITICAL = "★"


@dataclass(frozen=True, slots=True)
class NodeData:
    """What a tree node stands for: a level, or a task."""

    level: int
    task_id: str | None = None


class PlanTree(Tree[NodeData]):
    """Levels and tasks of one plan, with state marks and the critical path."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__("no plan yet", **kwargs)  # type: ignore[arg-type]
        self.plan: Plan | None = None
        self.states: dict[str, str] = {}
        self.critical: set[str] = set()
        self.levels: dict[int, list[str]] = {}
        self._level_nodes: dict[int, TreeNode[NodeData]] = {}
        self._task_nodes: dict[str, TreeNode[NodeData]] = {}

    def show_plan(self, plan: Plan, title: str, states: Mapping[str, str]) -> None:
        """Replace the tree with `plan`, opening narrow levels."""
        self.plan, self.states = plan, dict(states)
        self.critical = set(plan.critical_path())
        self.levels = {}
        for task_id in plan.order:
            self.levels.setdefault(plan.levels[task_id], []).append(task_id)
        self.clear()
        self.root.set_label(Text(title))
        self._level_nodes.clear()
        self._task_nodes.clear()
        for level in sorted(self.levels):
            node = self.root.add(self._level_label(level), data=NodeData(level),
                                 allow_expand=True)
            self._level_nodes[level] = node
            if len(self.levels[level]) <= OPEN_LEVEL_UP_TO:
                self._fill(node)
                node.expand()
        self.root.expand()
        first = self._task_nodes.get(plan.order[0]) if plan.order else None
        if first is not None:
            self.call_after_refresh(self.move_cursor, first)

    def _colours(self) -> Mapping[str, str]:
        return getattr(self.app, "colours", {})

    def _level_label(self, level: int) -> Text:
        members = self.levels[level]
        tally = Counter(self.states.get(task_id, "pending") for task_id in members)
        star = f" {CRITICAL}" if any(t in self.critical for t in members) else ""
        return Text(f"Level {level} · {len(members)} task{'s' if len(members) > 1 else ''}"
                    f"{star}: {counts_line(tally)}")

    def _task_label(self, task_id: str) -> Text:
        state = self.states.get(task_id, "pending")
        colours = self._colours()
        label = Text(f"{task_mark(state)} ", style=colours.get(TASK_ROLES.get(state, ""), ""))
        critical = task_id in self.critical
        label.append(task_id, style="bold" if critical else "")
        if critical:
            label.append(f" {CRITICAL}", style=colours.get("warning", "bold"))
        label.append(f"  {state}", style="dim")
        return label

    def _fill(self, node: TreeNode[NodeData]) -> None:
        if node.data is None or node.children or node.data.task_id is not None:
            return
        for task_id in self.levels[node.data.level]:
            self._task_nodes[task_id] = node.add_leaf(self._task_label(task_id),
                                                      data=NodeData(node.data.level, task_id))

    def on_tree_node_expanded(self, event: Tree.NodeExpanded[NodeData]) -> None:
        self._fill(event.node)

    def update_states(self, states: Mapping[str, str]) -> None:
        """Relabel what changed: level counts, and the tasks already built."""
        changed = {t for t, s in states.items() if self.states.get(t) != s}
        if not changed:
            return
        self.states.update(states)
        if self.plan is None:
            return
        for level in {self.plan.levels[t] for t in changed if t in self.plan.levels}:
            self._level_nodes[level].set_label(self._level_label(level))
        for task_id in changed:
            node = self._task_nodes.get(task_id)
            if node is not None:
                node.set_label(self._task_label(task_id))

    def reveal(self, task_id: str) -> None:
        """Open the task's level, select the task and scroll to it."""
        if self.plan is None or task_id not in self.plan.levels:
            return
        level_node = self._level_nodes[self.plan.levels[task_id]]
        self._fill(level_node)
        level_node.expand()
        node = self._task_nodes[task_id]
        self.call_after_refresh(self._select, node)

    def _select(self, node: TreeNode[NodeData]) -> None:
        self.move_cursor(node)
        self.scroll_to_node(node)
