"""Workflow execution traces (WfCommons WfFormat and its compact form) as plain task lists.

`parse_document` takes an already loaded JSON document and returns its instances. It reads:

- the compact form: `{"family", "instances": [{"name", "tasks": [{"type", "runtime_s",
  "input_bytes", "parents": [indices], "cores"}]}]}`, or one such instance alone;
- WfFormat 1.5: `workflow.specification` (tasks with `inputFiles`, files with `sizeInBytes`)
  plus `workflow.execution.tasks` (`runtimeInSeconds`);
- older WfFormat (1.0 to 1.4): `workflow.tasks` (or `workflow.jobs`) with `runtime` or
  `runtimeInSeconds`, parents by name or id, and `files` linked `input` / `output` with
  `size` or `sizeInBytes`.

A task's kind is its `category` (or compact `type`), else its name without the numeric
suffix (`mProject_00000012` -> `mProject`). Every error names the source and the task.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator_tui.core.errors import WorkflowError
from orchestrator_tui.core.models import IntentSpec, TaskSpec
from orchestrator_tui.core.plan import Plan

_SUFFIX = re.compile(r"(?:[_\-.]+(?:ID|id)?\d+)+$")


@dataclass(frozen=True, slots=True)
class TraceTask:
    """One executed task of a trace."""

    id: str
    kind: str
    runtime: float
    """Measured seconds (>= 0)."""
    input_bytes: int | None
    """Sum of the sizes of its input files; None where the trace does not say."""
    parents: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TraceInstance:
    """One recorded execution of a workflow."""

    name: str
    family: str
    tasks: tuple[TraceTask, ...]

    @property
    def durations(self) -> dict[str, float]:
        """Measured seconds per task id."""
        return {task.id: task.runtime for task in self.tasks}

    def plan(self) -> Plan:
        """The instance's DAG as a plan (tasks in trace order; cycles and unknown ids refused)."""
        tasks = tuple(TaskSpec(id=task.id, command=(task.kind,), depends_on=task.parents)
                      for task in self.tasks)
        return Plan(IntentSpec(self.name, tasks), source=self.family)


def task_kind(name: str) -> str:
    """A task's name without its numeric suffix: what its runtime is learned by."""
    stripped = _SUFFIX.sub("", name)
    return stripped or name


def parse_document(data: Any, *, source: str | None = None) -> list[TraceInstance]:
    """The instances of one loaded trace document, in document order.

    Raises:
        WorkflowError: the document is in none of the known layouts, or a task is malformed
            (a missing or negative runtime, an unknown parent, a duplicate id).
    """
    if not isinstance(data, Mapping):
        raise WorkflowError("trace document is not a JSON object", file=source)
    if "instances" in data:
        family = str(data.get("family") or source or "unknown")
        instances = data["instances"]
        if not isinstance(instances, Sequence) or isinstance(instances, str):
            raise WorkflowError("'instances' is not a list", file=source)
        return [_compact(item, family, source) for item in instances]
    if "tasks" in data:
        return [_compact(data, str(data.get("family") or "unknown"), source)]
    workflow = data.get("workflow")
    if isinstance(workflow, Mapping):
        name = str(data.get("name") or source or "workflow")
        family = _family_of(name)
        if isinstance(workflow.get("specification"), Mapping):
            return [_wfformat_15(workflow, name, family, source)]
        return [_wfformat_old(workflow, name, family, source)]
    raise WorkflowError("not a trace: expected 'instances', 'tasks' or 'workflow'", file=source)


def _family_of(name: str) -> str:
    """The family of a WfFormat instance name (`montage-chameleon-...` -> `montage`)."""
    return name.split("-", 1)[0].lower() or name


def _compact(raw: Any, family: str, source: str | None) -> TraceInstance:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("tasks"), Sequence):
        raise WorkflowError("an instance without a 'tasks' list", file=source)
    name = str(raw.get("name") or family)
    rows = raw["tasks"]
    tasks: list[TraceTask] = []
    for index, row in enumerate(rows):
        task_id = str(index)
        if not isinstance(row, Mapping):
            raise WorkflowError("task is not an object", file=source, intent=name, task=task_id)
        parents: list[str] = []
        for parent in row.get("parents") or ():
            if not isinstance(parent, int) or not 0 <= parent < len(rows) or parent == index:
                raise WorkflowError(f"unknown parent {parent!r}", file=source, intent=name,
                                    task=task_id)
            parents.append(str(parent))
        kind = row.get("type") or row.get("category") or row.get("name")
        tasks.append(TraceTask(
            id=task_id,
            kind=task_kind(str(kind)) if kind else "task",
            runtime=_runtime(row.get("runtime_s"), source, name, task_id),
            input_bytes=_size(row.get("input_bytes"), source, name, task_id),
            parents=tuple(dict.fromkeys(parents)),
        ))
    return TraceInstance(name, family, tuple(tasks))


def _wfformat_15(workflow: Mapping[str, Any], name: str, family: str,
                 source: str | None) -> TraceInstance:
    spec = workflow["specification"]
    sizes = {str(item.get("id")): item.get("sizeInBytes")
             for item in spec.get("files") or () if isinstance(item, Mapping)}
    execution = workflow.get("execution") or {}
    runtimes = {str(item.get("id")): item.get("runtimeInSeconds")
                for item in execution.get("tasks") or () if isinstance(item, Mapping)}
    tasks: list[TraceTask] = []
    for row in _rows(spec.get("tasks"), source, name):
        task_id = str(row.get("id") or row.get("name"))
        inputs = row.get("inputFiles") or ()
        known = [sizes.get(str(file_id)) for file_id in inputs]
        size = (sum(_size(value, source, name, task_id) or 0 for value in known)
                if inputs and all(value is not None for value in known) else None)
        tasks.append(TraceTask(
            id=task_id,
            kind=task_kind(str(row.get("category") or row.get("name") or task_id)),
            runtime=_runtime(runtimes.get(task_id), source, name, task_id),
            input_bytes=size,
            parents=tuple(dict.fromkeys(str(parent) for parent in row.get("parents") or ())),
        ))
    return _checked(TraceInstance(name, family, tuple(tasks)), source)


def _wfformat_old(workflow: Mapping[str, Any], name: str, family: str,
                  source: str | None) -> TraceInstance:
    rows = _rows(workflow.get("tasks", workflow.get("jobs")), source, name)
    by_name = {str(row.get("name")): str(row.get("id") or row.get("name")) for row in rows}
    tasks: list[TraceTask] = []
    for row in rows:
        task_id = str(row.get("id") or row.get("name"))
        runtime = row.get("runtimeInSeconds", row.get("runtime"))
        inputs = [item for item in row.get("files") or ()
                  if isinstance(item, Mapping) and item.get("link") == "input"]
        sizes = [item.get("sizeInBytes", item.get("size")) for item in inputs]
        size = (sum(_size(value, source, name, task_id) or 0 for value in sizes)
                if inputs and all(value is not None for value in sizes) else None)
        parents = (by_name.get(str(parent), str(parent)) for parent in row.get("parents") or ())
        tasks.append(TraceTask(
            id=task_id,
            kind=task_kind(str(row.get("category") or row.get("name") or task_id)),
            runtime=_runtime(runtime, source, name, task_id),
            input_bytes=size,
            parents=tuple(dict.fromkeys(parents)),
        ))
    return _checked(TraceInstance(name, family, tuple(tasks)), source)


def _rows(value: Any, source: str | None, name: str) -> list[Mapping[str, Any]]:
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise WorkflowError("workflow has no task list", file=source, intent=name)
    if not all(isinstance(row, Mapping) for row in value):
        raise WorkflowError("a task is not an object", file=source, intent=name)
    return list(value)


def _checked(instance: TraceInstance, source: str | None) -> TraceInstance:
    """Refuse duplicate ids and parents that name no task."""
    ids: set[str] = set()
    for task in instance.tasks:
        if task.id in ids:
            raise WorkflowError("duplicate task id", file=source, intent=instance.name,
                                task=task.id)
        ids.add(task.id)
    for task in instance.tasks:
        for parent in task.parents:
            if parent not in ids or parent == task.id:
                raise WorkflowError(f"unknown parent {parent!r}", file=source,
                                    intent=instance.name, task=task.id)
    return instance


def _runtime(value: Any, source: str | None, name: str, task_id: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise WorkflowError(f"runtime is missing or not a number: {value!r}", file=source,
                            intent=name, task=task_id)
    runtime = float(value)
    if not math.isfinite(runtime) or runtime < 0:
        raise WorkflowError(f"runtime must be finite and >= 0: {value!r}", file=source,
                            intent=name, task=task_id)
    return runtime


def _size(value: Any, source: str | None, name: str, task_id: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
            math.isfinite(value) and value >= 0):
        raise WorkflowError(f"file size must be a number >= 0: {value!r}", file=source,
                            intent=name, task=task_id)
    return int(value)
