"""Checking the values of a workflow file, field by field: each check returns the value (or
its converted form) or raises `Bad`, and `Where` turns that into a `WorkflowError` naming the
file, the intent, the task or phase, and the line."""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, NoReturn

from orchestrator_tui.core.errors import WorkflowError

PYTHON_TARGET = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*")
BAD_ID_CHAR = re.compile(r"[\s/]")
"""What an id or a name may not contain."""


class Bad(Exception):
    """A value of the wrong shape; the caller adds where it is."""


@dataclass(slots=True)
class Where:
    """Where a check runs: file, intent, task or phase; `fail` adds the line when known."""

    file: str
    intent: str | None = None
    task: str | None = None
    phase: str | None = None

    def at(self, *, intent: str | None = None, task: str | None = None,
           phase: str | None = None) -> Where:
        return Where(self.file, intent or self.intent, task, phase)

    def fail(self, message: str, node: object = None) -> NoReturn:
        line = getattr(node, "line", None)
        prefix = f"phase {self.phase!r}: " if self.phase else ""
        suffix = f" (line {line})" if line else ""
        raise WorkflowError(prefix + message + suffix, file=self.file, intent=self.intent,
                            task=self.task)


def one_of(options: tuple[str, ...], present: Mapping[Any, Any], what: str, where: Where,
           node: object = None) -> str:
    found = [option for option in options if option in present]
    if len(found) != 1:
        where.fail(f"{what} needs exactly one of {', '.join(options)} "
                   f"(found: {', '.join(found) or 'none'})", node or present)
    return found[0]


def check_fields(mapping: Mapping[Any, Any], allowed: tuple[str, ...], what: str,
                 where: Where) -> Any:
    """Refuse the first key of `mapping` that is not `allowed`, suggesting the closest one."""
    for key in mapping:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            where.fail(f"unknown {what} field {key!r}{hint}; allowed: {', '.join(allowed)}",
                       mapping)
    return None


def field(mapping: Mapping[Any, Any], key: str, check: Callable[[Any], Any], default: Any,
          where: Where) -> Any:
    """The checked value of `key`, or `default` when it is absent or null."""
    value = mapping.get(key)
    if value is None:
        return default
    try:
        return check(value)
    except Bad as exc:
        refuse(key, value, exc, mapping, where)


def refuse(key: str, value: object, problem: Bad, mapping: object, where: Where) -> NoReturn:
    shown = repr(value) if len(repr(value)) <= 60 else f"{repr(value)[:60]}..."
    where.fail(f"`{key}` {problem}, not {shown}", mapping)


def passing(test: Callable[[Any], object], message: str) -> Callable[[object], Any]:
    """A check that returns the values `test` accepts and refuses the others with `message`."""
    def check(value: object) -> Any:
        if test(value):
            return value
        raise Bad(message)
    return check


text = passing(lambda v: isinstance(v, str), "must be a string")
boolean = passing(lambda v: isinstance(v, bool), "must be true or false")
name = passing(lambda v: isinstance(v, str) and v and not BAD_ID_CHAR.search(v),
               "must be a non-empty string without spaces or '/'")
python_target = passing(lambda v: isinstance(v, str) and PYTHON_TARGET.fullmatch(v),
                        "must be an import path `package.module:function`")


def strings(value: object, unique: bool = False) -> tuple[str, ...]:
    if not isinstance(value, list) or not {*map(type, value)} <= {str} or not all(value):
        raise Bad("must be a list of non-empty strings")
    if unique and len(set(value)) != len(value):
        raise Bad("must not list a name twice")
    return tuple(value)


unique_strings = partial(strings, unique=True)


def names(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise Bad("must be a non-empty list of names")
    return unique_strings([name(item) for item in value])


def argv(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        raise Bad('must be an argv list such as ["python", "fetch.py"] (no shell lines)')
    if not isinstance(value, list) or not value or not {*map(type, value)} <= {str} or not value[0]:
        raise Bad("must be a non-empty list of strings, starting with a program name")
    return tuple(value)


def integer(value: object, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise Bad("must be an integer")
    if minimum is not None and value < minimum:
        raise Bad(f"must be an integer >= {minimum}")
    return value


def number(value: object, minimum: float = -math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise Bad("must be a finite number")
    if value < minimum:
        raise Bad(f"must be a number >= {minimum:g}")
    return float(value)


def timeout(value: object) -> float:
    if (seconds := number(value)) > 0:
        return seconds
    raise Bad("must be a positive number of seconds")


def resources(value: object) -> dict[str, float]:
    if not isinstance(value, Mapping) or not all(isinstance(key, str) for key in value):
        raise Bad("must be a mapping of resource names to numbers")
    return {key: number(amount, 0.0) for key, amount in value.items()}


def json_object(value: object) -> dict[str, Any]:
    if isinstance(value, Mapping) and is_json(value):
        return dict(value)
    raise Bad("must be a mapping of JSON values (strings, numbers, booleans, lists, maps)")


def is_json(value: object) -> bool:
    if isinstance(value, list):
        return all(map(is_json, value))
    if isinstance(value, Mapping):
        return all(isinstance(k, str) and is_json(v) for k, v in value.items())
    return value is None or isinstance(value, str | int) or (
        isinstance(value, float) and math.isfinite(value))


def escalation(value: object) -> str:
    if isinstance(value, str) and value.strip() and not BAD_ID_CHAR.search(value.strip()):
        return value.strip()
    raise Bad("must be pause, none or an agent name")


def subtask_list(value: object) -> tuple[str, ...]:
    """Never reached with a value: `_tasks_with_subtasks` takes `decompose` out of a task's
    mapping and `_subtasks` reads it."""
    raise Bad("must be a non-empty list of task mappings")


RECOVERY_CHECKS: dict[str, Callable[[Any], Any]] = {
    "retries": lambda v: integer(v, 0), "backoff": lambda v: number(v, 0.0),
    "backoff_max": lambda v: number(v, 0.0), "fallback": boolean, "escalate": escalation,
}
"""How each key of a `recovery:` mapping is checked (the fields of `RecoveryConfig`)."""

TASK_CHECKS: dict[str, Callable[[Any], Any]] = {
    "id": text, "agent": name, "command": argv, "python": python_target,
    "args": json_object, "depends_on": unique_strings, "priority": integer,
    "timeout": timeout, "retries": lambda v: integer(v, 0), "idempotent": boolean,
    "resources": resources, "phase": name, "description": text,
    "decompose": subtask_list,
}
"""How each task field is checked and converted (the fields of `TaskSpec`)."""
