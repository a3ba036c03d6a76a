"""Timeouts learned from recorded durations, for tasks whose workflow sets none.

A task with no `timeout:` used to run without one, so a hung agent held its slot forever.
Once a task's kind has a duration estimate of its own (`Estimate.basis` `kind`, or the finer
`task`; not the `global` back-off) from enough samples, `TimeoutRule` turns the estimate's
upper bound into a timeout. An explicit
`timeout:` always wins, and a kind without such history gets none, as before.

Pure: no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from orchestrator_tui.core.predict import Estimate


@dataclass(frozen=True, slots=True)
class Timeout:
    """An attempt's time limit in seconds; `runs` is how many recorded runs it was learned
    from (None: the workflow set it)."""

    seconds: float
    runs: int | None = None

    @property
    def learned(self) -> bool:
        """Whether history, not the workflow, set this limit."""
        return self.runs is not None

    def describe(self) -> str:
        """`learned from 12 runs`, or `set by the workflow`."""
        if self.runs is None:
            return "set by the workflow"
        return f"learned from {self.runs} run{'s' if self.runs != 1 else ''}"


@dataclass(frozen=True, slots=True)
class TimeoutRule:
    """How a timeout is seeded from an estimate: max(factor * high, high + slack) seconds,
    rounded up to a whole second, once the kind has `min_runs` samples of its own.

    The rule is generous on purpose, because its two errors are not alike: a timeout that
    fires on a slow but healthy run throws its work away (and a retry may do it again),
    while one that fires late on a hung run only costs waiting, which without a timeout
    would have lasted forever. `high` is already the slow end of the interval (with the
    predictor's coverage of 0.8, about the 90th percentile of a run); the factor 4 leaves
    room for runs several times slower than any recorded (a loaded machine, a larger input,
    a cold cache), and the additive two minutes protects short kinds, whose durations are
    dominated by jitter (process start, an agent CLI's first reply, the network): a task
    that usually takes 2 s gets 128 s, not 8 s.
    """

    factor: float = 4.0
    slack: float = 120.0
    min_runs: int = 5

    def seed(self, estimate: Estimate | None) -> Timeout | None:
        """The learned timeout for an estimate; None without one from the kind's (or the
        task's) own history of at least `min_runs` samples."""
        if estimate is None or estimate.basis == "global" or estimate.n < self.min_runs:
            return None
        seconds = max(self.factor * estimate.high, estimate.high + self.slack)
        if not math.isfinite(seconds):
            return None
        return Timeout(float(max(1, math.ceil(seconds))), estimate.n)


def choose_timeout(explicit: float | None, learned: Timeout | None) -> Timeout | None:
    """The limit an attempt runs under: the workflow's `timeout:` if set, else the learned
    one, else none."""
    if explicit is not None:
        return Timeout(explicit)
    return learned
