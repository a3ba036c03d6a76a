"""Plan-time refinement of the policy's order: never worse in simulation, bounded, repeatable."""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from orchestrator_tui.core import refine as refining
from orchestrator_tui.core.refine import refine
from orchestrator_tui.core.simulate import simulate
from tests.test_simulate import Case, cases, make_plan

EPS = 1e-9


@settings(max_examples=60, deadline=None)
@given(cases(with_priority=False))
def test_refined_order_is_never_worse_and_keeps_grahams_bound(case: Case) -> None:
    plain = simulate(case.plan, case.durations, case.workers)
    ranks = refine(case.plan, case.durations, case.workers)
    refined = simulate(case.plan, case.durations, case.workers, estimates=ranks)
    assert refined.makespan <= plain.makespan + EPS
    assert refined.makespan <= refined.graham_bound * (1 + EPS) + EPS
    assert set(refined.finishes) == set(case.plan.order)  # every task ran, once


def test_refinement_finds_the_better_order_where_bottom_levels_miss_it() -> None:
    """Two workers. Bottom levels start `long` and `first` (4 s each) and leave `mid` (3 s)
    for later, which ends at 7 s; starting `mid` and `first` lets `next` follow `first` while
    `long` runs on: 6 s."""
    plan = make_plan({"long": (), "mid": (), "first": (), "next": ("first",)})
    durations = {"long": 4.0, "mid": 3.0, "first": 1.0, "next": 3.0}
    ranks = refine(plan, durations, 2)
    assert simulate(plan, durations, 2).makespan == 7.0
    assert simulate(plan, durations, 2, estimates=ranks).makespan == 6.0
    assert refine(plan, durations, 2) == ranks  # deterministic


def test_large_plans_and_ample_workers_are_left_as_they_are(
        monkeypatch: pytest.MonkeyPatch) -> None:
    plan = make_plan({f"t{i}": () for i in range(50)})
    durations = {f"t{i}": float(i % 7 + 1) for i in range(50)}
    assert refine(plan, durations, 50) is durations  # every task starts at once
    monkeypatch.setattr(refining, "BUDGET", 49)
    assert refine(plan, durations, 4) is durations  # not even one try fits the budget
