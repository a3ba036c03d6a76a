"""The scheduling policy: which ready tasks start next. Pure and deterministic.

Order: user priority (higher first), then bottom level (longest remaining path, using the
best duration estimates available), then the task's position in the workflow. The policy is
non-idling: whenever a slot is free and a task is ready, a task starts. The engine and the
discrete-event replay in `core.simulate` both use this module, so what the benchmarks
measure is what runs.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass


@dataclass(frozen=True, slots=True, order=True)
class Candidate:
    """A ready task as the policy sees it; instances sort in start order."""

    sort_key: tuple[int, float, int]
    task_id: str

    @classmethod
    def of(cls, task_id: str, priority: int, bottom_level: float, position: int) -> Candidate:
        """Build the candidate for a task from its priority, bottom level and position."""
        return cls((-priority, -bottom_level, position), task_id)


class ReadyQueue:
    """Ready tasks, popped in policy order."""

    def __init__(self) -> None:
        self._heap: list[tuple[tuple[int, float, int], str, Candidate]] = []
        """Plain tuples, which compare without calling Python code, each ending with its
        candidate (never compared: task ids are unique)."""

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, candidate: Candidate) -> None:
        """Add a task that has become ready."""
        heapq.heappush(self._heap, (candidate.sort_key, candidate.task_id, candidate))

    def take(self, free_slots: int) -> list[Candidate]:
        """Remove and return up to `free_slots` tasks, best first; never fewer if any wait."""
        taken: list[Candidate] = []
        while self._heap and len(taken) < free_slots:
            taken.append(heapq.heappop(self._heap)[2])
        return taken


def free_slots(running: int, parallel_limit: int, max_concurrent: int | None) -> int:
    """How many more tasks may start now under the global and per-intent limits."""
    ceiling = parallel_limit if max_concurrent is None else min(parallel_limit, max_concurrent)
    return max(0, ceiling - running)
