"""Resource admission: a ready task starts only when what it needs fits what is free.

A task's need is its own `resources`, else its agent's, else `DEFAULT_NEED` (one CPU).
Capacity is the machine's logical CPUs and available memory plus the custom resources the
user declares (the `resources` setting, e.g. `gpu=1,llm_slots=4`). What is free is the
capacity less the needs of the running tasks. Pure: the engine samples the machine.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from orchestrator_tui.core.errors import OrchestratorError

Need = dict[str, float]
DEFAULT_NEED: Mapping[str, float] = {"cpu": 1.0}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}\Z")
_EPSILON = 1e-9
T = TypeVar("T")


class ResourceError(OrchestratorError):
    """A resource declaration that cannot be used, or a need no capacity can meet."""


def parse_resources(text: str, where: str = "the resources setting") -> Need:
    """`gpu=1,llm_slots=4` to `{"gpu": 1.0, "llm_slots": 4.0}`; an empty text (or `none`)
    declares nothing. Raises ResourceError naming `where` and the bad item."""
    text = text.strip()
    if text in ("", "none"):
        return {}
    declared: Need = {}
    for item in text.split(","):
        name, sep, amount = item.partition("=")
        name = name.strip()
        if not sep or not _NAME.match(name):
            raise ResourceError(f"{where}: {item.strip()!r} is not NAME=AMOUNT (for example "
                                "gpu=1,llm_slots=4)")
        if name in declared:
            raise ResourceError(f"{where}: {name} is declared twice")
        declared[name] = _amount(amount.strip(), f"{where}: {name}")
    return declared


def normalise(raw: Mapping[str, Any], where: str) -> Need:
    """A `resources` mapping (from a workflow or an agent file) checked: names, and amounts
    that are finite numbers of 0 or more."""
    need: Need = {}
    for name, amount in raw.items():
        if not isinstance(name, str) or not _NAME.match(name):
            raise ResourceError(f"{where}: {name!r} is not a resource name")
        need[name] = _amount(amount, f"{where}: {name}")
    return need


def _amount(value: object, where: str) -> float:
    try:
        if isinstance(value, bool):
            raise ValueError
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ResourceError(f"{where} must be a number of 0 or more, not {value!r}") from None
    if not math.isfinite(number) or number < 0:
        raise ResourceError(f"{where} must be a number of 0 or more, not {value!r}")
    return number


def task_need(task_resources: Mapping[str, float], agent_resources: Mapping[str, float]) -> Need:
    """What one task needs: its own declaration, else its agent's, else one CPU."""
    return dict(task_resources or agent_resources or DEFAULT_NEED)


def machine_capacity(cpus: int, memory_mb: float, custom: Mapping[str, float]) -> Need:
    """The capacity of a machine: `cpu` and `memory_mb`, which `custom` may override."""
    return {"cpu": float(max(1, cpus)), "memory_mb": max(0.0, memory_mb), **custom}


def fits(need: Mapping[str, float], free: Mapping[str, float]) -> bool:
    """Whether `need` fits in `free`; a resource not in `free` has none available."""
    return all(amount <= free.get(name, 0.0) + _EPSILON for name, amount in need.items()
               if amount > 0)


def check_fits(task_id: str, need: Mapping[str, float], capacity: Mapping[str, float]) -> None:
    """Raise ResourceError when `need` exceeds the whole capacity: such a task never runs."""
    for name, amount in sorted(need.items()):
        have = capacity.get(name, 0.0)
        if amount > have + _EPSILON:
            hint = ("" if name in capacity else f"; declare it with `orchestrator settings set "
                    f"resources {name}=N`")
            raise ResourceError(f"task {task_id!r} needs {name}={amount:g}, more than this "
                                f"machine's {name}={have:g}{hint}")


@dataclass(slots=True)
class Admission:
    """The capacity, and what the running tasks hold of it."""

    capacity: Need
    used: Need = field(default_factory=dict)

    def free(self) -> Need:
        """What is not held by a running task (never below zero)."""
        names = set(self.capacity) | set(self.used)
        return {name: max(0.0, self.capacity.get(name, 0.0) - self.used.get(name, 0.0))
                for name in names}

    def fits(self, need: Mapping[str, float]) -> bool:
        """Whether `need` fits what is free now."""
        return fits(need, self.free())

    def hold(self, need: Mapping[str, float]) -> None:
        """A task with `need` starts."""
        for name, amount in need.items():
            self.used[name] = self.used.get(name, 0.0) + amount

    def release(self, need: Mapping[str, float]) -> None:
        """A task with `need` ended."""
        for name, amount in need.items():
            left = self.used.get(name, 0.0) - amount
            self.used[name] = left if left > _EPSILON else 0.0


def select(ordered: Iterable[T], need_of: Callable[[T], Mapping[str, float]],
           free: Mapping[str, float], slots: int) -> list[T]:
    """The items to start, taken in the given (policy) order: each one that fits what is
    still free, until the slots run out. Afterwards no item left fits what is free, unless
    every slot is taken, so no fitting task waits while capacity is free."""
    left = dict(free)
    chosen: list[T] = []
    for item in ordered:
        if len(chosen) >= slots:
            break
        need = need_of(item)
        if fits(need, left):
            chosen.append(item)
            for name, amount in need.items():
                left[name] = left.get(name, 0.0) - amount
    return chosen
