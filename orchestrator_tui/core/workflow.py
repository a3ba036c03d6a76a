"""Reading a workflow: YAML (or JSON) text in, a validated `Workflow` out. Pure: no file I/O here.
The text is loaded by `core.workflow_text`; each field's value is checked by
`core.workflow_checks`; this module checks the shape of intents, phases and tasks.

Intents sit under `intents:` (or `parallel_coordination:`, where `analyze_intent` names intent
`analyze`) in one of three forms: `agents: [..]` (task id = agent), `phases: [..]` (task ids
`PHASE.AGENT`) or explicit `tasks: [..]`. Errors name the file, the intent and the task.

Recovery of failed tasks (see `core.recovery_policy`) is set by an optional `recovery:`
mapping at the top level and per intent; an intent's keys override the file's, key by key:

    recovery:
      retries: 2          # for tasks that set no `retries` (default 0)
      backoff: 0.5        # seconds before the first retry, doubling (default 0.5)
      backoff_max: 30     # the longest wait between retries (default 30)
      fallback: true      # let another agent with a shared capability take over (default)
      escalate: pause     # then: pause (the user decides, default), none, or an agent name

Without any `recovery:` mapping a failed task fails after its retries, as it always did.

A task of the `tasks:` form may list subtasks under `decompose:`, in the same task syntax.
They run only when the task has failed after its retries and fallbacks, and stand in for it:
when all succeed, the task's dependents go on. A subtask's id is local to its parent and
stored as `PARENT.sub.ID`; its `depends_on` names sibling subtasks only, and it also waits
for everything its parent waits for. Subtasks cannot be decomposed further, and other tasks
cannot depend on them (depend on the parent). When the parent succeeds they are skipped.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Mapping
from dataclasses import fields, replace
from functools import partial
from itertools import pairwise
from typing import Any

from orchestrator_tui.core import workflow_checks as checks
from orchestrator_tui.core.errors import WorkflowError
from orchestrator_tui.core.models import IntentSpec, RecoveryConfig, TaskSpec, Workflow
from orchestrator_tui.core.plan import Plan, gc_paused
from orchestrator_tui.core.workflow_text import LineMap, load_json, load_yaml

TOP_FIELDS = ("intents", "parallel_coordination", "version", "description", "recovery")
INTENT_FIELDS = ("description", "examples", "max_concurrent", "agents", "parallel", "phases",
                 "tasks", "recovery")
RECOVERY_FIELDS = tuple(spec.name for spec in fields(RecoveryConfig))
SUBTASK_MARK = ".sub."
"""Joins a parent's id and a subtask's local id: `PARENT.sub.ID`."""
PHASE_FIELDS = ("name", "agents", "parallel", "depends_on", "description")
TASK_FIELDS = tuple(spec.name for spec in fields(TaskSpec))
TASK_KINDS = ("agent", "command", "python")

_INTENT_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")


def parse_workflow(text: str, *, source: str, known_agents: Collection[str] | None = None,
                   check_plans: bool = True) -> Workflow:
    """Parse and validate the text of the workflow file named `source`: YAML, or JSON when
    the name ends in `.json` (the same document, read about fifty times faster).

    If given, `known_agents` are the only agent names tasks may use. With `check_plans`, each
    intent's plan is built too, refusing duplicate ids, unknown dependencies and cycles.
    Raises `WorkflowError` (`CycleError` for a cycle).
    """
    load = load_json if source.lower().endswith(".json") else load_yaml
    with gc_paused():
        document = load(text, source=source)
    return workflow_from_data(document, source=source, known_agents=known_agents,
                              check_plans=check_plans)


def workflow_from_data(data: object, *, source: str,
                       known_agents: Collection[str] | None = None,
                       check_plans: bool = True) -> Workflow:
    """Validate an already loaded workflow document (as `parse_workflow` does after YAML)."""
    where = checks.Where(source)
    if not isinstance(data, Mapping):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        where.fail(f"the file is {kind}; it must be a mapping with an `intents:` key")
    checks.check_fields(data, TOP_FIELDS, "top-level", where)
    recovery = _recovery_values(data.get("recovery"), where, known_agents, data)
    intents: dict[str, IntentSpec] = {}
    with gc_paused():
        for section in ("intents", "parallel_coordination"):
            body = data.get(section) or {}
            if not isinstance(body, Mapping):
                where.fail(f"`{section}` must be a mapping of intent names", data)
            for raw_name, spec in body.items():
                name = _intent_name(raw_name, section, where, body)
                here = where.at(intent=name)
                if name in intents:
                    here.fail("intent defined twice", spec)
                intents[name] = _intent(name, spec, here, known_agents, recovery)
        if not intents:
            where.fail("no intents: add an `intents:` mapping with at least one intent", data)
        if check_plans:
            for intent in intents.values():
                Plan(intent, source=source)
    return Workflow(intents=intents, source=source)


def build_plan(workflow: Workflow, intent_name: str) -> Plan:
    """The validated plan of one intent; `WorkflowError` for an unknown one, listing the rest."""
    intent = workflow.intents.get(intent_name) or workflow.intents.get(intent_name.lower())
    if intent is None:
        known = ", ".join(sorted(workflow.intents)) or "none"
        raise WorkflowError(f"unknown intent {intent_name!r}; known: {known}", file=workflow.source)
    return Plan(intent, source=workflow.source)


def _intent_name(raw: object, section: str, where: checks.Where, node: object) -> str:
    if not isinstance(raw, str):
        where.fail(f"intent name {raw!r} must be a string", node)
    suffix = "_intent" if section == "parallel_coordination" else ""
    name = raw.strip().lower().removesuffix(suffix)
    if not _INTENT_NAME.fullmatch(name):
        where.fail(f"bad intent name {raw!r}: use lowercase letters, digits, '_' and '-'", node)
    return name


def _intent(name: str, spec: object, where: checks.Where, known_agents: Collection[str] | None,
            file_recovery: dict[str, Any] | None = None) -> IntentSpec:
    if not isinstance(spec, Mapping):
        where.fail("an intent must be a mapping with `agents`, `phases` or `tasks`", spec)
    checks.check_fields(spec, INTENT_FIELDS, "intent", where)
    recovery = _recovery(file_recovery, _recovery_values(spec.get("recovery"), where,
                                                         known_agents, spec), where, spec)
    retries = recovery.retries if recovery is not None else 0
    form = checks.one_of(("agents", "phases", "tasks"), spec, "an intent", where)
    if "parallel" in spec and form != "agents":
        where.fail("`parallel` applies to the agents form only (set it per phase)", spec)
    if form == "agents":
        agents = checks.field(spec, "agents", checks.names, None, where) or where.fail(
            "`agents` must be a non-empty list of names", spec)
        tasks = _chain([TaskSpec(id=agent, agent=agent) for agent in agents],
                       checks.field(spec, "parallel", checks.boolean, True, where))
    elif form == "phases":
        tasks = _phases(spec["phases"], where, spec)
    else:
        raw_tasks = spec["tasks"]
        if not isinstance(raw_tasks, list) or not raw_tasks:
            where.fail("`tasks` must be a non-empty list of task mappings", spec)
        tasks = _tasks_with_subtasks(raw_tasks, where, retries)
    if form != "tasks" and retries:
        tasks = [replace(task, retries=retries) for task in tasks]
    if known_agents is not None:
        _check_agents(tasks, known_agents, where)
    field = partial(checks.field, spec, where=where)
    return IntentSpec(
        name=name, tasks=tuple(tasks), description=field("description", checks.text, ""),
        max_concurrent=field("max_concurrent", lambda v: checks.integer(v, 1), None),
        examples=field("examples", checks.strings, ()), recovery=recovery)


def _chain(tasks: list[TaskSpec], parallel: bool) -> list[TaskSpec]:
    """The tasks unchanged if parallel, else each also depending on the one before it."""
    return tasks if parallel else tasks[:1] + [
        replace(task, depends_on=(*task.depends_on, before.id)) for before, task in pairwise(tasks)]


def _phases(raw: object, where: checks.Where, node: object) -> list[TaskSpec]:
    if not isinstance(raw, list) or not raw:
        where.fail("`phases` must be a non-empty list of phase mappings", node)
    agents: dict[str, tuple[str, ...]] = {}
    specs: list[tuple[checks.Where, Mapping[Any, Any]]] = []
    for index, phase in enumerate(raw):
        here = where.at(phase=f"#{index + 1}")
        if not isinstance(phase, Mapping):
            here.fail("a phase must be a mapping with `name` and `agents`", phase)
        name = checks.field(phase, "name", checks.name, None, here) \
            or here.fail("a phase needs a `name`", phase)
        if "." in name:
            here.fail(f"phase name {name!r} must not contain '.'", phase)
        here = where.at(phase=name)
        checks.check_fields(phase, PHASE_FIELDS, "phase", here)
        if name in agents:
            here.fail("phase defined twice", phase)
        agents[name] = checks.field(phase, "agents", checks.names, None, here) or here.fail(
            "a phase needs a non-empty `agents` list", phase)
        specs.append((here, phase))
    tasks: list[TaskSpec] = []
    for here, phase in specs:
        name = str(here.phase)
        after = checks.field(phase, "depends_on", checks.unique_strings, (), here)
        for dep in after:
            if dep == name:
                here.fail("a phase cannot depend on itself", phase)
            if dep not in agents:
                here.fail(f"depends on unknown phase {dep!r} (phases: {', '.join(agents)})",
                          phase)
        deps = tuple(f"{dep}.{agent}" for dep in after for agent in agents[dep])
        own = [TaskSpec(id=f"{name}.{agent}", agent=agent, phase=name, depends_on=deps)
               for agent in agents[name]]
        tasks += _chain(own, checks.field(phase, "parallel", checks.boolean, True, here))
    return tasks


def _task(raw: object, index: int, where: checks.Where) -> TaskSpec:
    """A task from its mapping: a quick pass for valid tasks, the careful one to explain."""
    try:
        values = {key: checks.TASK_CHECKS[key](value) for key, value in raw.items()  # type: ignore[attr-defined]
                  if value is not None}
        task_id = values["id"]
        if ("agent" in values) + ("command" in values) + ("python" in values) == 1 \
                and ("args" not in values or "python" in values) \
                and task_id and not checks.BAD_ID_CHAR.search(task_id):
            return TaskSpec(**values)
    except (AttributeError, KeyError, TypeError, checks.Bad):
        pass
    return _checked_task(raw, index, where)


def _checked_task(raw: object, index: int, where: checks.Where) -> TaskSpec:
    if not isinstance(raw, Mapping):
        where.at(task=f"#{index + 1}").fail("a task must be a mapping with an `id`", raw)
    task_id = raw.get("id")
    here = where.at(task=task_id if isinstance(task_id, str) else f"#{index + 1}")
    if not isinstance(task_id, str) or not task_id or checks.BAD_ID_CHAR.search(task_id):
        here.fail(f"task id {task_id!r} must be a non-empty string without spaces or '/'", raw)
    values: dict[str, Any] = {}
    for key, value in raw.items():
        check = checks.TASK_CHECKS.get(key) or checks.check_fields(raw, TASK_FIELDS, "task", here)
        if value is not None:
            try:
                values[key] = check(value)
            except checks.Bad as exc:
                checks.refuse(key, value, exc, raw, here)
    if checks.one_of(TASK_KINDS, values, "a task", here, raw) != "python" and "args" in values:
        here.fail("`args` applies to python tasks only", raw)
    return TaskSpec(**values)


def _tasks_with_subtasks(raw_tasks: list[Any], where: checks.Where, retries: int) -> list[TaskSpec]:
    """The tasks of the `tasks:` form, each followed by its subtasks; tasks that set no
    `retries` get the recovery default."""
    tasks: list[TaskSpec] = []
    subtask_ids: set[str] = set()
    for index, raw in enumerate(raw_tasks):
        subtasks_raw = raw.get("decompose") if isinstance(raw, Mapping) else None
        body = _without(raw, "decompose") if subtasks_raw is not None else raw
        task = _with_retries(_task(body, index, where), body, retries)
        if subtasks_raw is None:
            tasks.append(task)
            continue
        subtasks = _subtasks(task, subtasks_raw, where.at(task=task.id), raw, retries)
        subtask_ids.update(sub.id for sub in subtasks)
        tasks += [replace(task, decompose=tuple(sub.id for sub in subtasks)), *subtasks]
    for task in tasks:
        inner = [dep for dep in task.depends_on if dep in subtask_ids]
        if inner and task.id not in subtask_ids:
            parent = inner[0].split(SUBTASK_MARK, 1)[0]
            where.at(task=task.id).fail(f"depends on {inner[0]!r}, a subtask in the "
                                        f"decomposition of {parent!r}; depend on {parent!r} "
                                        "instead")
    return tasks


def _subtasks(parent: TaskSpec, raw: object, where: checks.Where, node: object,
              retries: int) -> list[TaskSpec]:
    """A task's decomposition: its subtasks, with ids `PARENT.sub.ID`, each depending on the
    parent (so on what it waits for) and on the siblings it names."""
    if not isinstance(raw, list) or not raw:
        where.fail("`decompose` must be a non-empty list of task mappings", node)
    local: list[str] = []
    for index, item in enumerate(raw):
        sub_id = item.get("id") if isinstance(item, Mapping) else None
        if not isinstance(sub_id, str) or not sub_id or checks.BAD_ID_CHAR.search(sub_id):
            where.fail(f"subtask #{index + 1} of `decompose`: its id {sub_id!r} must be a "
                       "non-empty string without spaces or '/'", item)
        if sub_id in local:
            where.fail(f"subtask id {sub_id!r} is used twice in `decompose`", item)
        local.append(sub_id)
    subtasks = []
    for index, (sub_id, item) in enumerate(zip(local, raw, strict=True)):
        full = f"{parent.id}{SUBTASK_MARK}{sub_id}"
        here = where.at(task=full)
        if item.get("decompose") is not None:
            here.fail("a subtask cannot be decomposed further", item)
        deps = item.get("depends_on") or []
        if not isinstance(deps, list) or not all(isinstance(dep, str) for dep in deps):
            here.fail(f"`depends_on` must be a list of sibling subtask ids, not {deps!r}", item)
        for dep in deps:
            if dep not in local or dep == sub_id:
                siblings = ", ".join(name for name in local if name != sub_id) or "none"
                here.fail(f"depends on {dep!r}, which is not a sibling subtask (siblings: "
                          f"{siblings})", item)
        body = LineMap(item)
        body.line = getattr(item, "line", 0)
        body["id"] = full
        body["depends_on"] = [parent.id, *(f"{parent.id}{SUBTASK_MARK}{dep}" for dep in deps)]
        subtasks.append(_with_retries(_task(body, index, where), item, retries))
    return subtasks


def _without(raw: Mapping[Any, Any], key: str) -> LineMap:
    """A copy of a mapping without `key`, remembering its line."""
    copy = LineMap((name, value) for name, value in raw.items() if name != key)
    copy.line = getattr(raw, "line", 0)
    return copy


def _with_retries(task: TaskSpec, raw: Mapping[Any, Any], retries: int) -> TaskSpec:
    """The task with the recovery default of `retries` when its mapping sets none."""
    return replace(task, retries=retries) if retries and raw.get("retries") is None else task


def _recovery_values(raw: object, where: checks.Where, known_agents: Collection[str] | None,
                     holder: object) -> dict[str, Any] | None:
    """The checked keys of one `recovery:` mapping (None when there is none)."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        where.fail("`recovery` must be a mapping with keys " + ", ".join(RECOVERY_FIELDS),
                   holder)
    checks.check_fields(raw, RECOVERY_FIELDS, "recovery", where)
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if value is not None:
            try:
                values[key] = checks.RECOVERY_CHECKS[key](value)
            except checks.Bad as exc:
                checks.refuse(f"recovery.{key}", value, exc, raw, where)
    escalate = values.get("escalate")
    if escalate not in (None, "pause", "none") and known_agents is not None \
            and escalate not in known_agents:
        close = difflib.get_close_matches(str(escalate), list(known_agents), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        where.fail(f"`recovery` escalates to unknown agent {escalate!r}{hint} (or use pause, "
                   "none)", raw)
    return values


def _recovery(file: dict[str, Any] | None, own: dict[str, Any] | None, where: checks.Where,
              node: object) -> RecoveryConfig | None:
    """An intent's recovery: its own keys over the file's; None when neither has any."""
    if file is None and own is None:
        return None
    config = RecoveryConfig(**{**(file or {}), **(own or {})})
    if config.backoff_max < config.backoff:
        where.fail(f"`recovery`: `backoff_max` ({config.backoff_max:g}) must not be less than "
                   f"`backoff` ({config.backoff:g})", node)
    return config


def _check_agents(tasks: list[TaskSpec], known: Collection[str], where: checks.Where) -> None:
    for task in tasks:
        if task.agent is not None and task.agent not in known:
            close = difflib.get_close_matches(task.agent, list(known), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            names = ", ".join(sorted(known)) or "none"
            where.at(task=task.id).fail(f"unknown agent {task.agent!r}{hint} (known: {names})")

