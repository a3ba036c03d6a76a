"""Dynamic pool sizing: how many tasks may run at once, from the machine's measured load.

The pool grows by one per interval while the machine has room (CPU idle above 25%, memory
available above 30%) and ready work waits for a slot, and shrinks by one when the CPU
saturates (load per core above 1.5, or idle below 5%), always within [1, the user's limit].
Pure: the engine samples the machine and applies the result.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Load:
    """One sample of the machine: fractions of CPU idle and memory available (0 to 1), and
    the one-minute load average per core."""

    cpu_idle: float
    memory_available: float
    load_per_core: float


@dataclass(frozen=True, slots=True)
class PoolThresholds:
    """When the pool grows and when it shrinks."""

    grow_idle: float = 0.25
    grow_memory: float = 0.30
    shrink_load: float = 1.5
    shrink_idle: float = 0.05


@dataclass(frozen=True, slots=True)
class PoolWork:
    """What the pool sizes for: its size now, the user's ceiling, tasks running and ready."""

    size: int
    ceiling: int
    running: int
    ready: int


@dataclass(frozen=True, slots=True)
class Resize:
    """A change of the pool's size and why, as one line for the message log."""

    old: int
    new: int
    reason: str

    def __str__(self) -> str:
        return f"pool: {self.old} -> {self.new}, {self.reason}"


def next_size(work: PoolWork, load: Load,
              thresholds: PoolThresholds = PoolThresholds()) -> Resize | None:
    """The pool's next size, or None when it stays as it is."""
    ceiling = max(1, work.ceiling)
    size = work.size
    idle, memory = round(load.cpu_idle * 100), round(load.memory_available * 100)
    if size > ceiling:
        return Resize(size, ceiling, f"your limit is {ceiling}")
    if size > 1 and (load.load_per_core > thresholds.shrink_load
                     or load.cpu_idle < thresholds.shrink_idle):
        return Resize(size, size - 1, f"CPU saturated ({idle}% idle, load "
                                      f"{load.load_per_core:.2f} per core)")
    if size < ceiling and work.ready > 0 and work.running >= size \
            and load.cpu_idle > thresholds.grow_idle \
            and load.memory_available > thresholds.grow_memory:
        return Resize(size, size + 1, f"CPU {idle}% idle, memory {memory}% available and "
                                      f"{work.ready} task{'s' if work.ready != 1 else ''} "
                                      "ready")
    return None
