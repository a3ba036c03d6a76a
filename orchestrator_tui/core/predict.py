"""Duration prediction from recorded history: a point estimate and a calibrated interval.

Durations are modelled in log space, per task kind, backed off to all kinds together when a
kind has no history. History comes in runs (sessions, or trace instances): samples of one run
share its machine and its inputs, so the predictor is judged the way it is used, by
predicting each of the newest runs from the runs before it (rolling origin).

- Point: forms compete per kind (`core.duration_forms`): the median log duration; a robust
  (Theil-Sen) line of log duration on log input size; a line on the log of the run's count
  (how many tasks of the kind the run has: larger runs of a workflow often run each task
  longer or shorter); and both lines together. Each is fitted over all runs alike and with
  recent runs weighing more, for kinds whose level drifts. The form with the smallest
  rolling-origin error is kept, except that a form using the count must beat the best form
  without it by `COUNT_MARGIN`: a count trend over a few runs is easily chance. A line never
  predicts beyond the durations the kind has shown, and a kind with few samples is shrunk
  toward the global median, so an estimate moves steadily as history accumulates.
- Interval: split conformal on those rolling-origin residuals, by their signed quantiles, so
  a kind that has drifted to one side gets an interval leaning that way; each side still
  reaches some way past its point. A kind with residuals from too few runs uses the
  residuals of all kinds pooled.
  Residuals count one each, not one per run: when runs differ far more than the samples within
  a run, a history of few runs gives intervals that cover less than they say.

Pure: no I/O. `predict` returns None when there is no history at all ("no data yet").
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from orchestrator_tui.core.duration_forms import (
    COUNTED,
    FORMS,
    PER_WEIGHTING,
    PLAIN,
    Model,
    Row,
    fit_forms,
    log_count,
    log_size,
)

if TYPE_CHECKING:
    from orchestrator_tui.core.plan import Plan

FLOOR_SECONDS = 0.01
"""Durations below this count as this much (logs of 0 are undefined)."""
CALIBRATION_RUNS = 5
"""Newest runs each predicted from the runs before it, to choose forms and size intervals."""
PSEUDO_RUNS = 10
"""Samples without a run are cut, in order, into this many runs."""
MIN_OWN_RESIDUALS = 20
"""Rolling-origin residuals a kind needs to use its own interval rather than the pooled one,
"""
MIN_OWN_RUNS = 3
"""and the runs they must come from."""
MIN_SIDE = 0.3
"""The least share of the symmetric bound each side of an interval reaches. Residuals of a
few runs can all fall on one side (the runs drifted one way); a bound resting on the point
would then miss any run that drifts back, however slightly."""
COUNT_MARGIN = 0.06
"""How much smaller (as a share) the rolling-origin error of a form using the count must be
than that of the best form without it, for the count form to be kept."""


@dataclass(frozen=True, slots=True)
class Sample:
    """One recorded duration: the task's kind (its agent or program), its seconds, its input
    size if known, the run (session) it belongs to, which task it was, if known (for example
    `intent/task id`, the finest history there is), and the count: how many tasks of its kind
    its run had, if known."""

    kind: str
    seconds: float
    size: float | None = None
    run: Hashable | None = None
    task: str | None = None
    count: int | None = None


@dataclass(frozen=True, slots=True)
class Estimate:
    """A predicted duration in seconds with an interval of the predictor's coverage."""

    point: float
    low: float
    high: float
    n: int
    """Samples behind the estimate (0: backed off to all kinds)."""
    basis: str
    """"task", "kind" or "global": which history the estimate comes from."""


@dataclass(frozen=True, slots=True)
class _GroupFit:
    model: Model
    low: float
    """Log residual bounds: the interval is [point * e**low, point * e**high]."""
    high: float
    n: int
    median_x_size: float | None
    """The median of the group's log sizes and log counts: what an unknown one is taken as."""
    median_x_count: float | None


_Residual = tuple[float, int]
"""A log residual and the run it was measured on."""
_Key = tuple[str, ...]
"""A group of samples: (kind,) or (kind, task); its parent drops the last part."""


class Predictor:
    """Fitted duration predictor; build one with `fit`."""

    def __init__(self, groups: dict[_Key, _GroupFit], fallback: _GroupFit | None,
                 coverage: float) -> None:
        self._groups = groups
        self._global = fallback
        self.coverage = coverage
        """The probability each interval is meant to contain the true duration."""

    @property
    def kinds(self) -> list[str]:
        """The task kinds with history of their own."""
        return sorted(key[0] for key in self._groups if len(key) == 1)

    def predict(self, kind: str, size: float | None = None, task: str | None = None,
                count: int | None = None) -> Estimate | None:
        """The estimate for `task` of `kind` with input `size` bytes in a run of `count` tasks
        of that kind, from the task's own history, else its kind's, else all kinds'; None: no
        data yet. An unknown size or count is taken as the kind's median."""
        keys = [((kind, task), "task")] if task is not None else []
        for key, basis in [*keys, ((kind,), "kind")]:
            found = self._groups.get(key)
            if found is not None:
                return _estimate(found, size, count, found.n, basis)
        return (None if self._global is None
                else _estimate(self._global, size, count, 0, "global"))


def _estimate(fit: _GroupFit, size: float | None, count: int | None, n: int,
              basis: str) -> Estimate:
    centre = fit.model.log_seconds(
        fit.median_x_size if size is None else log_size(size),
        fit.median_x_count if count is None else log_count(count))
    return Estimate(point=math.exp(centre), low=math.exp(centre + fit.low),
                    high=math.exp(centre + fit.high), n=n, basis=basis)


def task_key(intent: str, task_id: str) -> str:
    """How a task of a workflow is named in history: the same task of the same intent in
    another session is the same task."""
    return f"{intent}/{task_id}"


def task_estimates(plan: Plan, predictor: Predictor) -> dict[str, Estimate | None]:
    """Each task's predicted duration: from its own history in its intent, else its kind's,
    else all kinds' (None: no data yet)."""
    intent = plan.intent.name
    counts = kind_counts(plan)
    return {task_id: predictor.predict(task.kind, task=task_key(intent, task_id),
                                       count=counts[task.kind])
            for task_id, task in plan.tasks.items()}


def kind_counts(plan: Plan) -> Counter[str]:
    """How many tasks of each kind the plan has (the count its samples are recorded with)."""
    return Counter(task.kind for task in plan.tasks.values())


def fit(samples: Iterable[Sample], coverage: float = 0.8) -> Predictor:
    """Learn a predictor from samples given oldest first.

    Raises:
        ValueError: a coverage outside (0, 1), or a negative or non-finite duration or size.
    """
    if not 0 < coverage < 1:
        raise ValueError(f"coverage must be between 0 and 1, not {coverage}")
    groups = _rows_by_group(list(samples))
    if not groups:
        return Predictor({}, None, coverage)
    runs = 1 + max(row.run for rows in groups.values() for row in rows)
    everything = [row for key, rows in groups.items() if len(key) == 1 for row in rows]
    residuals = _rolling_residuals(groups, runs)
    priors = _priors(groups)
    models: dict[_Key, tuple[Model, list[_Residual]]] = {}
    for key, rows in groups.items():
        forms = fit_forms(rows, priors[key])
        errors = [_error(residuals[key][i]) if form is not None else math.inf
                  for i, form in enumerate(forms)]
        plain = min(PLAIN, key=lambda i: (errors[i], i))
        counted = min(COUNTED, key=lambda i: (errors[i], i))
        best = counted if errors[counted] < (1 - COUNT_MARGIN) * errors[plain] else plain
        model = forms[best]
        assert model is not None
        models[key] = model, residuals[key][best]
    prior = priors[()]
    fallback = _GroupFit(Model(prior), *_bounds([(row.y - prior, row.run) for row in everything],
                                                 coverage), len(everything), None, None)
    pooled_residuals = [r for key, (_, own) in models.items() if len(key) == 1 for r in own]
    bounds: dict[_Key, tuple[float, float]] = {
        (): _bounds(pooled_residuals, coverage) if pooled_residuals
        else (fallback.low, fallback.high)}
    fitted: dict[_Key, _GroupFit] = {}
    for key in sorted(models, key=len):  # kinds before their tasks
        model, own = models[key]
        enough = len(own) >= MIN_OWN_RESIDUALS and len({run for _, run in own}) >= MIN_OWN_RUNS
        bounds[key] = _bounds(own, coverage) if enough else bounds[key[:-1]]
        sizes = [row.x_size for row in groups[key] if row.x_size is not None]
        counts = [row.x_count for row in groups[key] if row.x_count is not None]
        fitted[key] = _GroupFit(model, *bounds[key], len(groups[key]),
                                statistics.median(sizes) if sizes else None,
                                statistics.median(counts) if counts else None)
    return Predictor(fitted, fallback, coverage)


def _rows_by_group(samples: Sequence[Sample]) -> dict[_Key, list[Row]]:
    """Each kind's rows, and each known task's, runs numbered in order of first appearance."""
    runs: dict[Hashable, int] = {}
    unnamed = sum(sample.run is None for sample in samples)
    seen_unnamed = 0
    groups: dict[_Key, list[Row]] = defaultdict(list)
    for sample in samples:
        if not math.isfinite(sample.seconds) or sample.seconds < 0:
            raise ValueError(f"duration of a {sample.kind!r} sample must be finite and >= 0")
        if sample.size is not None and not (math.isfinite(sample.size) and sample.size >= 0):
            raise ValueError(f"size of a {sample.kind!r} sample must be finite and >= 0")
        key: Hashable = sample.run
        if key is None:
            key = ("unnamed run", seen_unnamed * PSEUDO_RUNS // unnamed)
            seen_unnamed += 1
        row = Row(None if sample.size is None else log_size(sample.size),
                   None if sample.count is None else log_count(sample.count),
                   _log_seconds(sample.seconds), runs.setdefault(key, len(runs)))
        groups[(sample.kind,)].append(row)
        if sample.task is not None:
            groups[(sample.kind, sample.task)].append(row)
    return groups


def _priors(groups: dict[_Key, list[Row]]) -> dict[_Key, float]:
    """What each group is shrunk toward: its parent's median log duration, itself shrunk the
    same way (a kind's toward all kinds', a task's toward its kind's), by one pseudo-sample."""
    overall = [row.y for key, rows in groups.items() if len(key) == 1 for row in rows]
    shrunk: dict[_Key, float] = {(): statistics.median(overall) if overall else 0.0}
    for key in sorted(groups, key=len):
        rows, parent = groups[key], shrunk.get(key[:-1], shrunk[()])
        n = len(rows)
        shrunk[key] = (n * statistics.median(row.y for row in rows) + parent) / (n + 1)
    return {key: shrunk.get(key[:-1], shrunk[()]) for key in groups} | {(): shrunk[()]}


def _rolling_residuals(groups: dict[_Key, list[Row]], runs: int,
                       ) -> dict[_Key, list[list[_Residual]]]:
    """Per group and form: log residuals of each of the newest runs, predicted from the runs
    before it (for the groups that had some)."""
    residuals: dict[_Key, list[list[_Residual]]] = defaultdict(
        lambda: [[] for _ in range(FORMS)])
    for run in range(max(1, runs - CALIBRATION_RUNS), runs):
        before = {key: [row for row in rows if row.run < run] for key, rows in groups.items()}
        before = {key: rows for key, rows in before.items() if rows}
        if not before:
            continue
        priors = _priors(before)
        for key, rows in groups.items():
            if key not in before:  # a group's first run says how new groups fare, not it
                continue
            forms = fit_forms(before[key], priors[key])
            for row in rows:
                if row.run != run:
                    continue
                for index, form in enumerate(forms):
                    model = form or forms[index - index % PER_WEIGHTING]  # its median
                    assert model is not None
                    residuals[key][index].append(
                        (row.y - model.log_seconds(row.x_size, row.x_count), run))
    return residuals


def _error(residuals: Sequence[_Residual]) -> float:
    """Median absolute residual (infinite without any: a form never tried is never kept)."""
    return statistics.median(abs(r) for r, _ in residuals) if residuals else math.inf


def _bounds(residuals: Sequence[_Residual], coverage: float) -> tuple[float, float]:
    """Split-conformal bounds: the signed residual ranks leaving (1 - coverage) / 2 of new
    cases on each side, each side reaching at least `MIN_SIDE` of the symmetric bound (the
    `coverage` rank of the absolute residuals) away from the point."""
    ordered = sorted(value for value, _ in residuals)
    n = len(ordered)
    low = ordered[max(0, math.floor((n + 1) * (1 - coverage) / 2) - 1)]
    high = ordered[min(n - 1, math.ceil((n + 1) * (1 + coverage) / 2) - 1)]
    sizes = sorted(abs(value) for value in ordered)
    reach = MIN_SIDE * sizes[min(n - 1, math.ceil((n + 1) * coverage) - 1)]
    return min(low, -reach), max(high, reach)


def _log_seconds(seconds: float) -> float:
    return math.log(max(seconds, FLOOR_SECONDS))
