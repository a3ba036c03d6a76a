"""A plan: the DAG of an intent's tasks, with levels, bottom levels and the critical path.

Construction is linear in tasks plus dependencies. The adjacency is built once as plain dicts
and handed to networkx as the graph's own storage. When every task comes after its
dependencies in the file, one pass computes the levels and proves the graph acyclic; otherwise
`nx.is_directed_acyclic_graph` checks it, and `nx.find_cycle` runs only when there is a cycle.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import MISSING, asdict, fields
from typing import Any

from orchestrator_tui.core.errors import CycleError, WorkflowError
from orchestrator_tui.core.models import IntentSpec, RecoveryConfig, TaskSpec

PLAN_FORMAT = 1
"""Version of the `Plan.to_dict` layout; `from_dict` refuses any other."""

_Adjacency = dict[str, dict[str, dict[str, Any]]]


def _field_defaults() -> dict[str, Any]:
    defaults: dict[str, Any] = {}
    for spec in fields(TaskSpec):
        if spec.default is not MISSING:
            defaults[spec.name] = spec.default
        elif spec.default_factory is not MISSING:
            defaults[spec.name] = spec.default_factory()
    return defaults


_TASK_DEFAULTS = _field_defaults()
"""Every TaskSpec field but `id`, with its default; `to_dict` leaves out default values."""
_TASK_FIELDS = frozenset(spec.name for spec in fields(TaskSpec))


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many small objects at once.

    Bulk allocation otherwise triggers repeated full collections that cost more than the
    work itself on large plans. On exit the objects built meanwhile go straight to the oldest
    generation (`freeze` then `unfreeze`), so that the collector does not scan them all at
    the next allocation; it will at its next full collection. The previous state is
    restored.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.freeze()
            gc.unfreeze()
            gc.enable()


class Plan:
    """The validated dependency graph of one intent.

    Edges point from a dependency to its dependent. Construction refuses duplicate ids,
    unknown dependencies and cycles (naming the tasks on the cycle). A plan is read-only.
    """

    intent: IntentSpec
    source: str | None
    tasks: dict[str, TaskSpec]
    """The tasks by id, in workflow-file order."""
    position: dict[str, int]
    """Each task's index in the workflow file: the last, deterministic tie-break."""
    graph: Any
    """The `nx.DiGraph`, edges from dependency to dependent; do not modify it."""
    levels: dict[str, int]
    """Each task's level: 0 without dependencies, else one more than its deepest dependency."""
    order: list[str]
    """All tasks by level, then by position: a topological order."""

    def __init__(self, intent: IntentSpec, *, source: str | None = None) -> None:
        with gc_paused():
            self._build(intent, source, None)

    def _build(self, intent: IntentSpec, source: str | None,
               stored_levels: Sequence[Any] | None) -> None:
        self.intent, self.source = intent, source
        tasks: dict[str, TaskSpec] = {}
        for task in intent.tasks:
            if task.id in tasks:
                raise WorkflowError("duplicate task id", file=source, intent=intent.name,
                                    task=task.id)
            tasks[task.id] = task
        succ: _Adjacency = {task_id: {} for task_id in tasks}
        pred: _Adjacency = {task_id: {} for task_id in tasks}
        for task in intent.tasks:
            task_id, before = task.id, pred[task.id]
            for dep in task.depends_on:
                after = succ.get(dep)
                if after is None:
                    raise WorkflowError(f"depends on unknown task {dep!r}", file=source,
                                        intent=intent.name, task=task_id)
                before[dep] = after[task_id] = {}
        self.tasks = tasks
        self.position = {task_id: index for index, task_id in enumerate(tasks)}
        self._succ, self._pred = succ, pred
        self.graph = _digraph(tasks, succ, pred)
        levels = None if stored_levels is None else _stored_levels(stored_levels, pred)
        if levels is None:
            levels = _forward_levels(pred)
        if levels is None:
            import networkx as nx  # loaded when first needed: it takes ~0.1 s to import

            if not nx.is_directed_acyclic_graph(self.graph):
                raise CycleError(self._find_cycle(), file=source, intent=intent.name)
            levels = _kahn_levels(succ, pred)
        self.levels = levels
        buckets: list[list[str]] = [[] for _ in range(max(levels.values(), default=-1) + 1)]
        for task_id, level in levels.items():
            buckets[level].append(task_id)
        self.order = [task_id for bucket in buckets for task_id in bucket]

    def descendants(self, task_id: str) -> list[str]:
        """Every task that waits on `task_id`, directly or not, nearest first."""
        seen: set[str] = set()
        stack, order = [task_id], []
        succ = self.graph.succ
        while stack:
            for nxt in succ[stack.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    order.append(nxt)
                    stack.append(nxt)
        return order

    def _find_cycle(self) -> list[str]:
        """One cycle, as tasks that each depend on the next, starting at the earliest one."""
        import networkx as nx

        cycle = [edge[1] for edge in reversed(nx.find_cycle(self.graph))]
        start = min(range(len(cycle)), key=lambda i: self.position[cycle[i]])
        return cycle[start:] + cycle[:start]

    def __len__(self) -> int:
        return len(self.tasks)

    def __repr__(self) -> str:
        return f"Plan({self.intent.name!r}, {len(self.tasks)} tasks, {self.level_count} levels)"

    def dependencies(self, task_id: str) -> list[str]:
        """The tasks `task_id` waits for."""
        return list(self._pred[task_id])

    def dependents(self, task_id: str) -> list[str]:
        """The tasks that wait for `task_id`."""
        return list(self._succ[task_id])

    @property
    def level_count(self) -> int:
        """How many levels (barrier steps) the plan has."""
        return self.levels[self.order[-1]] + 1 if self.order else 0

    def bottom_levels(
        self, durations: Mapping[str, float] | None = None, default: float = 1.0,
    ) -> dict[str, float]:
        """Longest path from each task to the end of the plan, the task itself included.

        Args:
            durations: expected seconds per task id; missing ones count as `default`.
            default: the duration of a task with no estimate.
        """
        get = (durations or {}).get
        succ = self._succ
        result: dict[str, float] = {}
        for node in reversed(self.order):
            tail = 0.0
            for child in succ[node]:
                value = result[child]
                if value > tail:  # noqa: PLR1730 - a plain comparison beats max() here
                    tail = value
            result[node] = get(node, default) + tail
        return result

    def critical_path(
        self, durations: Mapping[str, float] | None = None, default: float = 1.0,
    ) -> list[str]:
        """The chain of tasks whose durations add up to the longest path through the plan.

        Ties go to the task that comes first in the workflow file.
        """
        if not self.tasks:
            return []
        bottom = self.bottom_levels(durations, default)
        pred, succ = self._pred, self._succ
        node = max((n for n in self.order if not pred[n]), key=bottom.__getitem__)
        path = [node]
        while succ[node]:
            node = max(succ[node], key=bottom.__getitem__)
            path.append(node)
        return path

    def critical_path_length(
        self, durations: Mapping[str, float] | None = None, default: float = 1.0,
    ) -> float:
        """Seconds along the critical path: no schedule can finish sooner."""
        bottom = self.bottom_levels(durations, default)
        return max(bottom.values(), default=0.0)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able description from which `from_dict` rebuilds an equal plan.

        Task fields at their default value are left out; `args` must hold JSON values.
        """
        intent = self.intent
        with gc_paused():
            tasks = [_task_to_dict(task) for task in intent.tasks]
        head: dict[str, Any] = {"name": intent.name, "description": intent.description,
                                "max_concurrent": intent.max_concurrent,
                                "examples": list(intent.examples)}
        if intent.recovery is not None:
            head["recovery"] = asdict(intent.recovery)
        return {
            "format": PLAN_FORMAT,
            "source": self.source,
            "intent": head,
            "tasks": tasks,
            "levels": list(self.levels.values()),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Plan:
        """Rebuild a plan stored with `to_dict`.

        The stored levels replace the acyclicity check when they are consistent with the
        dependencies (levels strictly rise along every edge, so there is no cycle); otherwise
        the plan is validated from scratch. Duplicate and unknown ids are always refused.

        Raises:
            WorkflowError: the data is not a stored plan, or describes an invalid one.
        """
        with gc_paused():
            intent, source, levels = _read_stored(data)
            plan = cls.__new__(cls)
            plan._build(intent, source, levels)
        return plan


def _read_stored(data: Mapping[str, Any]) -> tuple[IntentSpec, str | None, Sequence[Any] | None]:
    """The intent, source and levels of a stored plan, checked for shape only."""
    try:
        if data.get("format") != PLAN_FORMAT:
            raise ValueError(f"format {data.get('format')!r}, expected {PLAN_FORMAT}")
        head = data["intent"]
        limit = head.get("max_concurrent")
        recovery = head.get("recovery")
        intent = IntentSpec(
            name=str(head["name"]),
            tasks=tuple(_task_from_dict(raw) for raw in data["tasks"]),
            description=str(head.get("description", "")),
            max_concurrent=None if limit is None else int(limit),
            examples=tuple(str(example) for example in head.get("examples", ())),
            recovery=None if recovery is None else RecoveryConfig(**recovery),
        )
        source, levels = data.get("source"), data.get("levels")
        if levels is not None and not isinstance(levels, Sequence):
            raise TypeError("levels is not a list")
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        detail = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
        raise WorkflowError(f"stored plan is malformed: {detail}",
                            file=data.get("source") if isinstance(data, Mapping) else None
                            ) from exc
    return intent, None if source is None else str(source), levels


def _digraph(tasks: Mapping[str, TaskSpec], succ: _Adjacency, pred: _Adjacency) -> Any:
    """An `nx.DiGraph` over prebuilt adjacency dicts (`succ[u][v] is pred[v][u]`).

    This is the storage layout networkx itself uses; handing it over directly avoids the
    per-edge overhead of `add_edges_from`, which dominates for large plans.
    """
    import networkx as nx

    graph = nx.DiGraph()
    graph._node = {task_id: {} for task_id in tasks}
    graph._adj = succ
    graph._succ = succ
    graph._pred = pred
    return graph


def _forward_levels(pred: _Adjacency) -> dict[str, int] | None:
    """Levels in one pass when every task comes after its dependencies, else None.

    Success also proves the graph acyclic: every edge points forward in file order.
    """
    levels: dict[str, int] = {}
    get = levels.__getitem__
    try:
        for task_id, before in pred.items():
            levels[task_id] = max(map(get, before)) + 1 if before else 0
    except KeyError:
        return None
    return levels


def _kahn_levels(succ: _Adjacency, pred: _Adjacency) -> dict[str, int]:
    """Levels of an acyclic graph in any task order (Kahn's algorithm), in file order."""
    levels = dict.fromkeys(pred, 0)
    waiting = {task_id: len(before) for task_id, before in pred.items()}
    ready = [task_id for task_id, count in waiting.items() if not count]
    while ready:
        node = ready.pop()
        below = levels[node] + 1
        for child in succ[node]:
            levels[child] = max(levels[child], below)
            waiting[child] -= 1
            if not waiting[child]:
                ready.append(child)
    return levels


def _stored_levels(stored: Sequence[Any], pred: _Adjacency) -> dict[str, int] | None:
    """The stored levels if each is one more than its deepest dependency's, else None.

    Consistent levels strictly rise along every edge, which also proves the graph acyclic.
    """
    if len(stored) != len(pred) or any(type(level) is not int for level in stored):
        return None
    levels = dict(zip(pred, stored, strict=True))
    for task_id, before in pred.items():
        expected = max(map(levels.__getitem__, before)) + 1 if before else 0
        if levels[task_id] != expected:
            return None
    return levels


def _task_to_dict(task: TaskSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"id": task.id}
    for name, default in _TASK_DEFAULTS.items():
        value = getattr(task, name)
        if value is default or value == default:
            continue
        if isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, dict):
            value = dict(value)
        out[name] = value
    return out


def _task_from_dict(raw: Mapping[str, Any]) -> TaskSpec:
    unknown = raw.keys() - _TASK_FIELDS
    if unknown:
        raise ValueError(f"unknown task fields {sorted(unknown)}")
    values = dict(raw)
    for name in ("command", "depends_on", "decompose"):
        if values.get(name) is not None:
            values[name] = tuple(values[name])
    if values.get("timeout") is not None:
        values["timeout"] = float(values["timeout"])
    if "resources" in values:
        values["resources"] = {str(k): float(v) for k, v in values["resources"].items()}
    if "args" in values:
        values["args"] = dict(values["args"])
    return TaskSpec(**values)
