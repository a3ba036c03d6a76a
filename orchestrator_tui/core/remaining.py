"""Live time remaining of a session: the rest of its plan replayed with predicted durations.

`remaining_time` takes the plan, the tasks that finished, the running ones with the seconds
they have run, the predictor and the parallel limit. The unfinished tasks form a smaller
plan, in which the running ones start first (they hold their slots), and `core.simulate`
replays the scheduling policy on it three times: with the predictor's point estimates, its
low and its high bounds. A running task's remaining time is its estimate less its elapsed
time, never below `FLOOR_SECONDS`. The interval's coverage is the one the predictor states
for each task. Subtasks of a decomposition count only while they run: usually they never do.
The replay follows `list` dispatch (a task starts once its dependencies are done).

`LiveRemaining` keeps what stays the same between calls for one session (each task's
estimate, the smaller plan while the same tasks are unfinished) and replays at most once per
`REPLAY_SECONDS` (less often when a replay is slow), counting the figures down in between,
so a screen may ask at any rate.

Pure: no I/O.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

from orchestrator_tui.core.models import IntentSpec, TaskSpec
from orchestrator_tui.core.plan import Plan
from orchestrator_tui.core.predict import Estimate, Predictor, task_estimates
from orchestrator_tui.core.simulate import simulate

FLOOR_SECONDS = 1.0
"""The least a running task is predicted to need still, however long it has run."""
REPLAY_SECONDS = 1.0
"""`LiveRemaining` replays at most this often."""
BUDGET = 0.05
"""The most of its time `LiveRemaining` spends replaying (large plans replay less often)."""
RestPlan = Callable[[list[str], Collection[str]], Plan]
"""Builds the plan of the unfinished tasks (given them and the running ones)."""


@dataclass(frozen=True, slots=True)
class Remaining:
    """Seconds left, the interval around them, and the interval's stated coverage."""

    seconds: float
    low: float
    high: float
    coverage: float
    bottleneck: str | None = None
    """The task on the remaining critical path with the most predicted time left."""
    bottleneck_seconds: float | None = None

    def later(self, elapsed: float) -> Remaining:
        """The same forecast `elapsed` seconds on (each figure down by it, never below 0)."""
        return Remaining(max(0.0, self.seconds - elapsed), max(0.0, self.low - elapsed),
                         max(0.0, self.high - elapsed), self.coverage, self.bottleneck,
                         self.bottleneck_seconds)

    def to_dict(self) -> dict[str, float | str | None]:
        """JSON-able figures, rounded to the millisecond."""
        return {"seconds": round(self.seconds, 3), "low": round(self.low, 3),
                "high": round(self.high, 3), "coverage": self.coverage,
                "bottleneck": self.bottleneck,
                "bottleneck_seconds": None if self.bottleneck_seconds is None
                else round(self.bottleneck_seconds, 3)}


def remaining_time(plan: Plan, finished: Collection[str], running: Mapping[str, float],
                   predictor: Predictor, parallel_limit: int, *,
                   floor: float = FLOOR_SECONDS) -> Remaining | None:
    """The time the unfinished tasks of `plan` still need at `parallel_limit`, with its
    interval; None ("no data yet") when an unfinished task has no estimate.

    Args:
        finished: ids of the tasks that are done (succeeded, failed, skipped, cancelled).
        running: seconds each running task has run so far, by id.
    """
    return _forecast(plan, task_estimates(plan, predictor), _unfinished(
        plan, _subtasks(plan), finished, running), running, parallel_limit,
        predictor.coverage, floor)


class LiveRemaining:
    """`remaining_time` for one session, asked again and again as it runs."""

    def __init__(self, plan: Plan, predictor: Predictor, *, floor: float = FLOOR_SECONDS,
                 every: float = REPLAY_SECONDS) -> None:
        self.plan = plan
        self.coverage = predictor.coverage
        self.floor, self.every = floor, every
        self._estimates = task_estimates(plan, predictor)
        self._subtasks = _subtasks(plan)
        self._tasks_key: tuple[object, ...] | None = None
        self._rest: Plan | None = None
        self._last: Remaining | None = None
        self._at = -math.inf
        self._wait = every

    def estimate(self, finished: Collection[str], running: Mapping[str, float],
                 parallel_limit: int, now: float) -> Remaining | None:
        """As `remaining_time`, at `now` (seconds on any steady clock); between replays the
        last figures count down. A replay that took long spaces the next ones out, so that
        replays never take more than `BUDGET` of the time."""
        counted = self.counted_down(now)
        if counted is not None:
            return counted
        unfinished = _unfinished(self.plan, self._subtasks, finished, running)
        tasks_key = (tuple(unfinished), frozenset(running))
        if tasks_key != self._tasks_key:
            self._tasks_key, self._rest = tasks_key, None
        began = time.perf_counter()
        self._last = _forecast(self.plan, self._estimates, unfinished, running,
                               parallel_limit, self.coverage, self.floor, self._rest_of)
        self._at, self._wait = now, max(self.every, (time.perf_counter() - began) / BUDGET)
        return self._last

    def counted_down(self, now: float) -> Remaining | None:
        """The last figures counted down to `now`, while no replay is due (else None): what
        `estimate` returns then, without the caller gathering the tasks' states."""
        if self._last is not None and now - self._at < self._wait:
            return self._last.later(now - self._at)
        return None

    def _rest_of(self, unfinished: list[str], running: Collection[str]) -> Plan:
        if self._rest is None:
            self._rest = _rest_plan(self.plan, unfinished, running)
        return self._rest


def _subtasks(plan: Plan) -> frozenset[str]:
    return frozenset(sub for task in plan.tasks.values() for sub in task.decompose)


def _unfinished(plan: Plan, subtasks: frozenset[str], finished: Collection[str],
                running: Mapping[str, float]) -> list[str]:
    """The tasks still to run or running, in the plan's order (a topological one)."""
    return [task_id for task_id in plan.order if task_id not in finished
            and (task_id in running or task_id not in subtasks)]


def _rest_plan(plan: Plan, unfinished: list[str], running: Collection[str]) -> Plan:
    """The unfinished part of `plan`: running tasks first (a priority above every other),
    the others waiting only for unfinished dependencies."""
    keep = set(unfinished)
    top = 1 + max((plan.tasks[task_id].priority for task_id in unfinished), default=0)
    tasks = []
    for task_id in unfinished:
        task = plan.tasks[task_id]
        if task_id in running:
            tasks.append(TaskSpec(id=task_id, priority=top))
        else:
            tasks.append(TaskSpec(id=task_id, priority=task.priority, depends_on=tuple(
                dep for dep in task.depends_on if dep in keep)))
    cap = plan.intent.max_concurrent
    return Plan(IntentSpec(name=plan.intent.name, tasks=tuple(tasks),
                           max_concurrent=None if cap is None else max(cap, len(running))))


def _forecast(plan: Plan, estimates: Mapping[str, Estimate | None], unfinished: list[str],
              running: Mapping[str, float], parallel_limit: int, coverage: float,
              floor: float, rest: RestPlan | None = None) -> Remaining | None:
    """Replay the unfinished tasks with point, low and high durations."""
    points: dict[str, float] = {}
    lows: dict[str, float] = {}
    highs: dict[str, float] = {}
    for task_id in unfinished:
        estimate = estimates[task_id]
        if estimate is None:
            return None
        ran = running.get(task_id)
        if ran is None:
            points[task_id], lows[task_id], highs[task_id] = \
                estimate.point, estimate.low, estimate.high
        else:
            points[task_id] = max(floor, estimate.point - ran)
            lows[task_id] = max(floor, estimate.low - ran)
            highs[task_id] = max(floor, estimate.high - ran)
    if not unfinished:
        return Remaining(0.0, 0.0, 0.0, coverage)
    sub = (rest or functools.partial(_rest_plan, plan))(unfinished, running)
    workers = max(1, parallel_limit, len(running))
    point = simulate(sub, points, workers).makespan
    low = simulate(sub, lows, workers, estimates=points).makespan
    high = simulate(sub, highs, workers, estimates=points).makespan
    path = sub.critical_path(points)
    bottleneck = max(path, key=points.__getitem__) if path else None
    # A list schedule can finish later with shorter tasks (Graham's anomalies): the interval
    # is widened so that it always holds its point.
    return Remaining(point, min(low, point), max(high, point), coverage, bottleneck,
                     points[bottleneck] if bottleneck else None)
