"""Discrete-event replay of the scheduling policy in simulated time.

`simulate` runs a plan on `workers` identical workers the way the engine does: whenever a slot
is free and a task is ready, the best ready task (by `core.policy`) starts. Durations are the
true run times; estimates, which may differ, only feed the bottom levels used for ordering.
That makes it the reference for benchmarks and for checking the policy against the classic
bounds: any non-idling list schedule finishes within Graham's bound W/P + (1 - 1/P) * CP.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from orchestrator_tui.core.plan import Plan
from orchestrator_tui.core.policy import Candidate, ReadyQueue, free_slots

MODES = ("list", "levels")
"""`list`: a task is ready once its dependencies finished; `levels`: once its level's turn came."""
ORDERS = ("policy", "fifo")
"""`policy`: priority, bottom level, position; `fifo`: ready time, then position (a baseline)."""


@dataclass(frozen=True, slots=True)
class Schedule:
    """When and where each task ran in a simulated execution, and how good that was."""

    makespan: float
    starts: dict[str, float]
    """Start time of each task, in start order."""
    finishes: dict[str, float]
    worker_of: dict[str, int]
    """The worker (0 .. workers - 1) each task ran on."""
    work: float
    """Sum of the true durations."""
    critical_path: float
    """Length of the longest dependency chain under the true durations."""
    workers: int
    """The parallelism the run had: the worker count, capped by the intent's max_concurrent."""

    @property
    def lower_bound(self) -> float:
        """No schedule on `workers` workers can finish sooner than this."""
        return max(self.work / self.workers, self.critical_path)

    @property
    def graham_bound(self) -> float:
        """Graham's guarantee for any non-idling list schedule: W/P + (1 - 1/P) * CP."""
        return self.work / self.workers + (1 - 1 / self.workers) * self.critical_path

    @property
    def efficiency(self) -> float:
        """Fraction of worker time spent running tasks (1.0 for an empty or instant plan)."""
        if self.makespan <= 0:
            return 1.0
        return self.work / (self.workers * self.makespan)


def simulate(
    plan: Plan,
    durations: Mapping[str, float],
    workers: int,
    *,
    estimates: Mapping[str, float] | None = None,
    mode: str = "list",
    order: str = "policy",
) -> Schedule:
    """Replay the policy on `plan` with `workers` workers and return the resulting schedule.

    Args:
        plan: the tasks and their dependencies.
        durations: true seconds per task id; every task needs one, none may be negative.
        workers: how many tasks may run at once (the intent's max_concurrent may lower it).
        estimates: seconds per task id used for bottom levels; defaults to `durations`.
        mode: "list" (start a task once its dependencies finished) or "levels" (one level at
            a time, with a barrier between levels).
        order: "policy" (the engine's order) or "fifo" (the order tasks became ready, ties by
            workflow position), a baseline for comparisons.

    Raises:
        ValueError: on an unknown mode or order, fewer than one worker, or a missing,
            negative or non-finite duration.
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
    if order not in ORDERS:
        raise ValueError(f"unknown order {order!r}; expected one of {', '.join(ORDERS)}")
    if workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    duration: dict[str, float] = {}
    for task_id in plan.order:
        if task_id not in durations:
            raise ValueError(f"no duration for task {task_id!r}")
        value = float(durations[task_id])
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"duration of task {task_id!r} must be finite and >= 0: {value}")
        duration[task_id] = value
    capacity = free_slots(0, workers, plan.intent.max_concurrent)
    if capacity < 1:
        raise ValueError("the intent's max_concurrent allows no task to run")

    candidate = _candidate_factory(plan, duration if estimates is None else estimates, order)
    release = _release_rule(plan, mode)

    queue = ReadyQueue()
    free_workers = list(range(capacity))
    events: list[tuple[float, int, str, int]] = []
    starts: dict[str, float] = {}
    finishes: dict[str, float] = {}
    worker_of: dict[str, int] = {}
    running = 0

    def start_ready(now: float) -> None:
        nonlocal running
        for chosen in queue.take(free_slots(running, workers, plan.intent.max_concurrent)):
            task_id = chosen.task_id
            worker = heapq.heappop(free_workers)
            starts[task_id] = now
            worker_of[task_id] = worker
            heapq.heappush(events, (now + duration[task_id], len(starts), task_id, worker))
            running += 1

    for task_id in release(None):
        queue.push(candidate(task_id, 0.0))
    start_ready(0.0)
    now = 0.0
    while events:
        now = events[0][0]
        while events and events[0][0] == now:
            _, _, task_id, worker = heapq.heappop(events)
            finishes[task_id] = now
            heapq.heappush(free_workers, worker)
            running -= 1
            for ready in release(task_id):
                queue.push(candidate(ready, now))
        start_ready(now)

    return Schedule(
        makespan=now,
        starts=starts,
        finishes=finishes,
        worker_of=worker_of,
        work=math.fsum(duration.values()),
        critical_path=plan.critical_path_length(duration),
        workers=capacity,
    )


def _candidate_factory(
    plan: Plan, estimates: Mapping[str, float], order: str,
) -> Callable[[str, float], Candidate]:
    """How a task that became ready at a given time enters the ready queue."""
    position = plan.position
    if order == "fifo":
        return lambda task_id, ready_at: Candidate((0, ready_at, position[task_id]), task_id)
    bottom = plan.bottom_levels(estimates)
    tasks = plan.tasks
    return lambda task_id, _ready_at: Candidate.of(
        task_id, tasks[task_id].priority, bottom[task_id], position[task_id],
    )


def _release_rule(plan: Plan, mode: str) -> Callable[[str | None], list[str]]:
    """The tasks that become ready when a task finishes (`None`: at the start of the run)."""
    if mode == "levels":
        by_level: list[list[str]] = [[] for _ in range(plan.level_count)]
        for task_id in plan.order:
            by_level[plan.levels[task_id]].append(task_id)
        left = [len(tasks) for tasks in by_level]
        levels = plan.levels

        def next_level(finished: str | None) -> list[str]:
            if finished is None:
                return by_level[0] if by_level else []
            level = levels[finished]
            left[level] -= 1
            if left[level] == 0 and level + 1 < len(by_level):
                return by_level[level + 1]
            return []

        return next_level

    successors = {task_id: plan.dependents(task_id) for task_id in plan.order}
    waiting = {task_id: len(plan.dependencies(task_id)) for task_id in plan.order}
    roots = [task_id for task_id in plan.order if not waiting[task_id]]

    def unblocked(finished: str | None) -> list[str]:
        if finished is None:
            return roots
        ready: list[str] = []
        for task_id in successors[finished]:
            waiting[task_id] -= 1
            if not waiting[task_id]:
                ready.append(task_id)
        return ready

    return unblocked
