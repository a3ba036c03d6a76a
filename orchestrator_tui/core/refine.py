"""Plan-time refinement of the policy's order by replaying it in simulated time.

Highest bottom level first is a good list order but not the best one for every plan: a task
slightly off the critical path may be worth starting first because its successors fill slots
that would otherwise wait. Before a run, `refine` replays the policy (`core.simulate`) on the
predicted durations with the bottom levels of a few seeded perturbations of those durations,
and keeps whichever ordering finishes the simulated plan soonest; ties keep the plain bottom
levels. The result is still a non-idling list schedule (Graham's bound holds), it is
deterministic, and its cost is bounded by `BUDGET` simulated tasks per plan.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping

from orchestrator_tui.core.plan import Plan
from orchestrator_tui.core.simulate import simulate

TRIES = 20
"""Perturbations tried at most."""
BUDGET = 20_000
"""Simulated tasks at most over all tries: a plan of 2,000 tasks gets 10 tries."""
SPREAD = 0.3
"""Each perturbed duration is the estimate times e**u, u uniform in [-SPREAD, SPREAD]."""
SEED = 0


def refine(plan: Plan, estimates: Mapping[str, float], workers: int, *,
           mode: str = "list") -> Mapping[str, float]:
    """The durations whose bottom levels should order the policy for `plan` on `workers`.

    `estimates` are the predicted seconds per task (missing ones count as 1 s); the result is
    them, or a perturbation of them whose simulated schedule is shorter.
    """
    n = len(plan)
    tries = min(TRIES, BUDGET // max(n, 1))
    if tries == 0 or workers >= n:
        return estimates
    durations = {task_id: float(estimates.get(task_id, 1.0)) for task_id in plan.order}
    best = estimates
    shortest = simulate(plan, durations, workers, mode=mode).makespan
    rng = random.Random(SEED)
    for _ in range(tries):
        candidate = {task_id: seconds * math.exp(rng.uniform(-SPREAD, SPREAD))
                     for task_id, seconds in durations.items()}
        makespan = simulate(plan, durations, workers, estimates=candidate, mode=mode).makespan
        if makespan < shortest * (1 - 1e-9):
            best, shortest = candidate, makespan
    return best
