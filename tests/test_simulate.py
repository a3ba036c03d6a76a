"""Properties of the discrete-event replay of the scheduling policy on random plans."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator_tui.core.models import IntentSpec, TaskSpec
from orchestrator_tui.core.plan import Plan
from orchestrator_tui.core.simulate import Schedule, simulate

EPS = 1e-9


@dataclass(frozen=True)
class Case:
    """A random plan with true durations, duration estimates and a worker count."""

    plan: Plan
    durations: dict[str, float]
    estimates: dict[str, float] | None
    workers: int


def make_plan(
    deps: dict[str, tuple[str, ...]], priority: dict[str, int] | None = None,
    max_concurrent: int | None = None,
) -> Plan:
    """A plan listing the tasks in `deps` order, each with the given dependencies."""
    priority = priority or {}
    tasks = tuple(
        TaskSpec(id=task_id, command=("true",), depends_on=after,
                 priority=priority.get(task_id, 0))
        for task_id, after in deps.items()
    )
    return Plan(IntentSpec("test", tasks, max_concurrent=max_concurrent))


durations_st = st.one_of(
    st.integers(1, 6).map(float),  # many ties between events
    st.floats(0.01, 10.0, allow_nan=False, allow_infinity=False),
)


@st.composite
def cases(draw: st.DrawFn, with_priority: bool = True) -> Case:
    """A random DAG of up to 60 tasks, listed in a random order (so position is not topology)."""
    n = draw(st.integers(1, 60))
    deps: dict[int, set[int]] = {}
    for i in range(n):
        deps[i] = draw(st.sets(st.integers(0, i - 1), max_size=min(i, 4))) if i else set()
    listing = draw(st.permutations(range(n)))
    ids = {i: f"t{i}" for i in range(n)}
    spec = {ids[i]: tuple(sorted(ids[d] for d in deps[i])) for i in listing}
    priority = (
        {ids[i]: draw(st.sampled_from([0, 0, 0, 1, 2])) for i in range(n)} if with_priority
        else {}
    )
    plan = make_plan(spec, priority)
    durations = {ids[i]: draw(durations_st) for i in range(n)}
    estimates = (
        {ids[i]: draw(durations_st) for i in range(n)} if draw(st.booleans()) else None
    )
    return Case(plan, durations, estimates, draw(st.integers(1, 8)))


def run(case: Case, mode: str = "list", order: str = "policy") -> Schedule:
    """Simulate a case with the given mode and order."""
    return simulate(case.plan, case.durations, case.workers, estimates=case.estimates,
                    mode=mode, order=order)


def ready_times(plan: Plan, schedule: Schedule) -> dict[str, float]:
    """When each task's dependencies had all finished (0 for tasks without any)."""
    return {
        task_id: max((schedule.finishes[d] for d in plan.dependencies(task_id)), default=0.0)
        for task_id in plan.tasks
    }


def running_at(schedule: Schedule, instant: float) -> int:
    """How many tasks occupy a worker at `instant` (a task ending then has released it)."""
    return sum(
        1 for task_id, start in schedule.starts.items()
        if start <= instant < schedule.finishes[task_id]
    )


def check_common(case: Case, schedule: Schedule) -> None:
    """What every schedule must satisfy, whatever the mode and order."""
    plan = case.plan
    assert set(schedule.starts) == set(schedule.finishes) == set(plan.tasks)
    for task_id in plan.tasks:
        assert schedule.finishes[task_id] == schedule.starts[task_id] + case.durations[task_id]
        assert 0 <= schedule.worker_of[task_id] < case.workers
        for dep in plan.dependencies(task_id):
            assert schedule.starts[task_id] >= schedule.finishes[dep]
    assert schedule.makespan == max(schedule.finishes.values())
    assert schedule.makespan >= schedule.lower_bound - EPS
    assert 0 < schedule.efficiency <= 1 + EPS
    # at most P at once, and never two tasks on one worker at the same time
    for task_id, start in schedule.starts.items():
        assert running_at(schedule, start) <= case.workers
        overlapping = [
            other for other, other_start in schedule.starts.items()
            if other != task_id and schedule.worker_of[other] == schedule.worker_of[task_id]
            and other_start < schedule.finishes[task_id] and start < schedule.finishes[other]
        ]
        assert not overlapping


def check_non_idling(case: Case, schedule: Schedule, ready: dict[str, float]) -> None:
    """At every start and finish instant, a task left waiting means every worker was busy."""
    instants = set(schedule.starts.values()) | set(schedule.finishes.values())
    for instant in instants:
        waiting = [
            task_id for task_id in case.plan.tasks
            if ready[task_id] <= instant < schedule.starts[task_id]
        ]
        if waiting:
            assert running_at(schedule, instant) == case.workers, (instant, waiting)


def check_choices(
    schedule: Schedule, ready: dict[str, float], key: dict[str, tuple[float, ...]],
) -> None:
    """A task started while another was waiting must come first in the start order `key`."""
    for first, start in schedule.starts.items():
        for other, other_start in schedule.starts.items():
            if ready[other] <= start < other_start:
                assert key[first] < key[other], (first, other)


def policy_key(case: Case) -> dict[str, tuple[float, ...]]:
    """The engine's start order: priority, bottom level under the estimates, position."""
    plan = case.plan
    bottom = plan.bottom_levels(case.estimates or case.durations)
    return {
        task_id: (-plan.tasks[task_id].priority, -bottom[task_id], plan.position[task_id])
        for task_id in plan.tasks
    }


@settings(max_examples=150, deadline=None)
@given(cases())
def test_list_schedule_is_valid_non_idling_and_within_graham(case: Case) -> None:
    schedule = run(case)
    check_common(case, schedule)
    ready = ready_times(case.plan, schedule)
    check_non_idling(case, schedule, ready)
    assert schedule.makespan <= schedule.graham_bound + EPS
    check_choices(schedule, ready, policy_key(case))


@settings(max_examples=100, deadline=None)
@given(cases())
def test_fifo_baseline_starts_in_ready_order(case: Case) -> None:
    schedule = run(case, order="fifo")
    check_common(case, schedule)
    ready = ready_times(case.plan, schedule)
    check_non_idling(case, schedule, ready)
    assert schedule.makespan <= schedule.graham_bound + EPS
    key = {t: (ready[t], case.plan.position[t]) for t in case.plan.tasks}
    check_choices(schedule, ready, key)


@settings(max_examples=100, deadline=None)
@given(cases(), st.sampled_from(["policy", "fifo"]))
def test_levels_mode_has_a_barrier_between_levels(case: Case, order: str) -> None:
    schedule = run(case, mode="levels", order=order)
    check_common(case, schedule)
    plan = case.plan
    for level in range(plan.level_count - 1):
        done = max(schedule.finishes[t] for t in plan.tasks if plan.levels[t] == level)
        begun = min(schedule.starts[t] for t in plan.tasks if plan.levels[t] == level + 1)
        assert begun >= done
    # within a level the replay is the same non-idling policy, released at the barrier
    release: dict[str, float] = {}
    for task_id in plan.tasks:
        level = plan.levels[task_id]
        release[task_id] = max(
            (schedule.finishes[t] for t in plan.tasks if plan.levels[t] == level - 1),
            default=0.0,
        )
    check_non_idling(case, schedule, release)
    if order == "policy":
        check_choices(schedule, release, policy_key(case))


@settings(max_examples=60, deadline=None)
@given(cases(), st.sampled_from(["list", "levels"]), st.sampled_from(["policy", "fifo"]))
def test_simulation_is_deterministic(case: Case, mode: str, order: str) -> None:
    first = run(case, mode=mode, order=order)
    again = simulate(make_plan({t: s.depends_on for t, s in case.plan.tasks.items()},
                               {t: s.priority for t, s in case.plan.tasks.items()}),
                     dict(case.durations), case.workers,
                     estimates=dict(case.estimates) if case.estimates else None,
                     mode=mode, order=order)
    assert first == again
    assert list(first.starts) == list(again.starts)


@settings(max_examples=60, deadline=None)
@given(cases(with_priority=False))
def test_one_worker_runs_everything_back_to_back(case: Case) -> None:
    schedule = simulate(case.plan, case.durations, 1, estimates=case.estimates)
    assert schedule.makespan == pytest.approx(schedule.work)
    assert set(schedule.worker_of.values()) == {0}


def test_priority_wins_among_tasks_ready_together() -> None:
    plan = make_plan({"low": (), "high": (), "mid": ()}, {"high": 5, "mid": 1})
    schedule = simulate(plan, {"low": 10.0, "high": 1.0, "mid": 1.0}, 1)
    assert list(schedule.starts) == ["high", "mid", "low"]
    assert schedule.starts == {"high": 0.0, "mid": 1.0, "low": 2.0}


# Hand-checked: a(3) -> {b(2), c(4)} -> d(1), and e(5) on its own; P = 2.
# Bottom levels a 8, e 5, c 5, b 3, d 1; critical path a-c-d = 8; work 15.
DIAMOND = {"a": (), "b": ("a",), "c": ("a",), "d": ("b", "c"), "e": ()}
DIAMOND_TIMES = {"a": 3.0, "b": 2.0, "c": 4.0, "d": 1.0, "e": 5.0}


def test_hand_checked_policy_schedule() -> None:
    schedule = simulate(make_plan(DIAMOND), DIAMOND_TIMES, 2)
    # t=0 a (w0), e (w1); t=3 c on w0 (bottom level 5 beats b's 3); t=5 b on w1;
    # t=7 both free, d on w0.
    assert schedule.starts == {"a": 0.0, "e": 0.0, "c": 3.0, "b": 5.0, "d": 7.0}
    assert schedule.worker_of == {"a": 0, "e": 1, "c": 0, "b": 1, "d": 0}
    assert schedule.makespan == 8.0
    assert schedule.work == 15.0
    assert schedule.critical_path == 8.0
    assert schedule.lower_bound == 8.0
    assert schedule.graham_bound == 15 / 2 + 0.5 * 8
    assert schedule.efficiency == 15 / 16


def test_hand_checked_alternatives() -> None:
    plan = make_plan(DIAMOND)
    fifo = simulate(plan, DIAMOND_TIMES, 2, order="fifo")
    # b and c become ready together at 3: position puts b first, so c runs 5-9 and d 9-10.
    assert fifo.starts == {"a": 0.0, "e": 0.0, "b": 3.0, "c": 5.0, "d": 9.0}
    assert fifo.makespan == 10.0
    levels = simulate(plan, DIAMOND_TIMES, 2, mode="levels")
    # level 0 ends when e does at 5; c then b; d after both.
    assert levels.starts == {"a": 0.0, "e": 0.0, "c": 5.0, "b": 5.0, "d": 9.0}
    assert levels.makespan == 10.0
    misled = simulate(plan, DIAMOND_TIMES, 2, estimates={"b": 9.0})
    # with b estimated long, b is preferred at 3 and the run takes as long as fifo's
    assert misled.starts["b"] == 3.0
    assert misled.makespan == 10.0
    urgent = simulate(make_plan(DIAMOND, {"b": 1}), DIAMOND_TIMES, 2)
    assert urgent.starts["b"] == 3.0


def test_max_concurrent_caps_the_workers() -> None:
    plan = make_plan({f"t{i}": () for i in range(6)}, max_concurrent=2)
    schedule = simulate(plan, dict.fromkeys(plan.tasks, 1.0), 4)
    assert schedule.workers == 2
    assert schedule.makespan == 3.0
    assert set(schedule.worker_of.values()) == {0, 1}


def test_empty_plan_and_zero_durations() -> None:
    empty = simulate(make_plan({}), {}, 3)
    assert (empty.makespan, empty.work, empty.efficiency) == (0.0, 0.0, 1.0)
    chain = simulate(make_plan({"a": (), "b": ("a",), "c": ("b",)}),
                     {"a": 0.0, "b": 0.0, "c": 2.0}, 2)
    assert chain.starts == {"a": 0.0, "b": 0.0, "c": 0.0}
    assert chain.makespan == 2.0


@pytest.mark.parametrize(
    ("durations", "workers", "mode", "order", "message"),
    [
        ({"a": 1.0, "b": 1.0}, 0, "list", "policy", "workers"),
        ({"a": 1.0, "b": 1.0}, 2, "waves", "policy", "mode"),
        ({"a": 1.0, "b": 1.0}, 2, "list", "random", "order"),
        ({"a": 1.0}, 2, "list", "policy", "no duration"),
        ({"a": 1.0, "b": -1.0}, 2, "list", "policy", "finite"),
        ({"a": 1.0, "b": float("nan")}, 2, "list", "policy", "finite"),
    ],
)
def test_bad_arguments_are_refused(
    durations: dict[str, float], workers: int, mode: str, order: str, message: str,
) -> None:
    plan = make_plan({"a": (), "b": ("a",)})
    with pytest.raises(ValueError, match=message):
        simulate(plan, durations, workers, mode=mode, order=order)


def test_ten_thousand_tasks_simulate_quickly() -> None:
    rng = random.Random(7)
    spec: dict[str, tuple[str, ...]] = {}
    for i in range(10_000):
        picks = {rng.randrange(i) for _ in range(rng.randint(0, 3))} if i else set()
        spec[f"t{i}"] = tuple(f"t{j}" for j in sorted(picks))
    plan = make_plan(spec)
    durations = {task_id: rng.uniform(0.5, 10.0) for task_id in plan.tasks}
    began = time.perf_counter()
    schedule = simulate(plan, durations, 16)
    elapsed = time.perf_counter() - began
    assert schedule.lower_bound - EPS <= schedule.makespan <= schedule.graham_bound + EPS
    assert elapsed < 2.0
