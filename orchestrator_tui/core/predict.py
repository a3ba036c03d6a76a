"""Duration prediction from recorded history: a point estimate and a calibrated interval.

Durations are modelled in log space, per task kind, backed off to all kinds together when a
kind has no history. History comes in runs (sessions, or trace instances): samples of one run
share its machine and its inputs, so the predictor is judged the way it is used, by
predicting each of the newest runs from the runs before it (rolling origin).

- Point: four forms compete per kind: the median log duration, and a robust (Theil-Sen) line
  of log duration on log input size, each either over all runs alike or with recent runs
  weighing more (a half-life of `HALF_LIFE` runs, for kinds whose level drifts). The form
  with the smallest rolling-origin error is kept. A line never predicts beyond the durations
  the kind has shown, and a kind with few samples is shrunk toward the global median, so an
  estimate moves steadily as history accumulates.
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
from collections import defaultdict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orchestrator_tui.core.plan import Plan

FLOOR_SECONDS = 0.01
"""Durations below this count as this much (logs of 0 are undefined)."""
CALIBRATION_RUNS = 5
"""Newest runs each predicted from the runs before it, to choose forms and size intervals."""
PSEUDO_RUNS = 10
"""Samples without a run are cut, in order, into this many runs."""
HALF_LIFE = 2.0
"""Runs after which a sample counts half, in the forms that follow recent runs."""
MIN_LINE = 8
"""Sized samples a kind needs before a size regression is considered."""
MIN_OWN_RESIDUALS = 20
"""Rolling-origin residuals a kind needs to use its own interval rather than the pooled one,
"""
MIN_OWN_RUNS = 3
"""and the runs they must come from."""
MIN_SIZE_RATIO = 1.05
"""The largest input a kind has seen must be this many times its smallest for a line: sizes
that barely differ give wild slopes."""
MIN_SIDE = 0.3
"""The least share of the symmetric bound each side of an interval reaches. Residuals of a
few runs can all fall on one side (the runs drifted one way); a bound resting on the point
would then miss any run that drifts back, however slightly."""
MAX_PAIRS_POINTS = 150
"""Theil-Sen uses at most this many evenly spread points (its cost is quadratic)."""


@dataclass(frozen=True, slots=True)
class Sample:
    """One recorded duration: the task's kind (its agent or program), its seconds, its input
    size if known, the run (session) it belongs to, and which task it was, if known (for
    example `intent/task id`, the finest history there is)."""

    kind: str
    seconds: float
    size: float | None = None
    run: Hashable | None = None
    task: str | None = None


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
class _Model:
    """log seconds = intercept + slope * log(1 + size), kept within [floor, ceiling]."""

    intercept: float
    slope: float = 0.0
    floor: float = -math.inf
    ceiling: float = math.inf

    def log_seconds(self, size: float | None) -> float:
        if self.slope == 0.0 or size is None:
            return self.intercept
        return min(self.ceiling, max(self.floor, self.intercept + self.slope * _log_size(size)))


@dataclass(frozen=True, slots=True)
class _GroupFit:
    model: _Model
    low: float
    """Log residual bounds: the interval is [point * e**low, point * e**high]."""
    high: float
    n: int
    median_size: float | None


_Row = tuple[float | None, float, int]
"""A sample as fitted: (size, log seconds, run index)."""
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

    def predict(self, kind: str, size: float | None = None,
                task: str | None = None) -> Estimate | None:
        """The estimate for `task` of `kind` with input `size` bytes, from the task's own
        history, else its kind's, else all kinds'; None: no data yet."""
        keys = [((kind, task), "task")] if task is not None else []
        for key, basis in [*keys, ((kind,), "kind")]:
            found = self._groups.get(key)
            if found is not None:
                return _estimate(found, size, found.n, basis)
        return None if self._global is None else _estimate(self._global, size, 0, "global")


def _estimate(fit: _GroupFit, size: float | None, n: int, basis: str) -> Estimate:
    if size is None and fit.model.slope:
        size = fit.median_size
    centre = fit.model.log_seconds(size)
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
    return {task_id: predictor.predict(task.kind, task=task_key(intent, task_id))
            for task_id, task in plan.tasks.items()}


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
    runs = 1 + max(run for rows in groups.values() for _, _, run in rows)
    everything = [row for key, rows in groups.items() if len(key) == 1 for row in rows]
    residuals = _rolling_residuals(groups, runs)
    priors = _priors(groups)
    models: dict[_Key, tuple[_Model, list[_Residual]]] = {}
    for key, rows in groups.items():
        forms = _forms(rows, priors[key])
        best = min(range(len(forms)), key=lambda i: (_error(residuals[key][i]), i)
                   if forms[i] is not None else (math.inf, i))
        model = forms[best]
        assert model is not None
        models[key] = model, residuals[key][best]
    prior = priors[()]
    fallback = _GroupFit(_Model(prior), *_bounds([(y - prior, run) for _, y, run in everything],
                                                 coverage), len(everything), None)
    pooled_residuals = [r for key, (_, own) in models.items() if len(key) == 1 for r in own]
    bounds: dict[_Key, tuple[float, float]] = {
        (): _bounds(pooled_residuals, coverage) if pooled_residuals
        else (fallback.low, fallback.high)}
    fitted: dict[_Key, _GroupFit] = {}
    for key in sorted(models, key=len):  # kinds before their tasks
        model, own = models[key]
        enough = len(own) >= MIN_OWN_RESIDUALS and len({run for _, run in own}) >= MIN_OWN_RUNS
        bounds[key] = _bounds(own, coverage) if enough else bounds[key[:-1]]
        sizes = [size for size, _, _ in groups[key] if size is not None]
        fitted[key] = _GroupFit(model, *bounds[key], len(groups[key]),
                                statistics.median(sizes) if sizes else None)
    return Predictor(fitted, fallback, coverage)


def _rows_by_group(samples: Sequence[Sample]) -> dict[_Key, list[_Row]]:
    """Each kind's rows, and each known task's, runs numbered in order of first appearance."""
    runs: dict[Hashable, int] = {}
    unnamed = sum(sample.run is None for sample in samples)
    seen_unnamed = 0
    groups: dict[_Key, list[_Row]] = defaultdict(list)
    for sample in samples:
        if not math.isfinite(sample.seconds) or sample.seconds < 0:
            raise ValueError(f"duration of a {sample.kind!r} sample must be finite and >= 0")
        if sample.size is not None and not (math.isfinite(sample.size) and sample.size >= 0):
            raise ValueError(f"size of a {sample.kind!r} sample must be finite and >= 0")
        key: Hashable = sample.run
        if key is None:
            key = ("unnamed run", seen_unnamed * PSEUDO_RUNS // unnamed)
            seen_unnamed += 1
        row = (sample.size, _log_seconds(sample.seconds), runs.setdefault(key, len(runs)))
        groups[(sample.kind,)].append(row)
        if sample.task is not None:
            groups[(sample.kind, sample.task)].append(row)
    return groups


def _priors(groups: dict[_Key, list[_Row]]) -> dict[_Key, float]:
    """What each group is shrunk toward: its parent's median log duration, itself shrunk the
    same way (a kind's toward all kinds', a task's toward its kind's), by one pseudo-sample."""
    overall = [y for key, rows in groups.items() if len(key) == 1 for _, y, _ in rows]
    shrunk: dict[_Key, float] = {(): statistics.median(overall) if overall else 0.0}
    for key in sorted(groups, key=len):
        rows, parent = groups[key], shrunk.get(key[:-1], shrunk[()])
        n = len(rows)
        shrunk[key] = (n * statistics.median(y for _, y, _ in rows) + parent) / (n + 1)
    return {key: shrunk.get(key[:-1], shrunk[()]) for key in groups} | {(): shrunk[()]}


def _rolling_residuals(groups: dict[_Key, list[_Row]], runs: int,
                       ) -> dict[_Key, list[list[_Residual]]]:
    """Per group and form: log residuals of each of the newest runs, predicted from the runs
    before it (for the groups that had some)."""
    residuals: dict[_Key, list[list[_Residual]]] = defaultdict(lambda: [[], [], [], []])
    for run in range(max(1, runs - CALIBRATION_RUNS), runs):
        before = {key: [row for row in rows if row[2] < run] for key, rows in groups.items()}
        before = {key: rows for key, rows in before.items() if rows}
        if not before:
            continue
        priors = _priors(before)
        for key, rows in groups.items():
            if key not in before:  # a group's first run says how new groups fare, not it
                continue
            forms = _forms(before[key], priors[key])
            for size, y, _ in (row for row in rows if row[2] == run):
                for index, form in enumerate(forms):
                    model = form or forms[index - 1]
                    assert model is not None
                    residuals[key][index].append((y - model.log_seconds(size), run))
    return residuals


def _forms(rows: Sequence[_Row], prior: float) -> list[_Model | None]:
    """The competing models of one group: median and line, each flat and recency-weighted
    (None: a line the rows cannot support)."""
    if not rows:
        return [_Model(prior), None, _Model(prior), None]
    newest = max(run for _, _, run in rows)
    flat = [1.0] * len(rows)
    recent = [0.5 ** ((newest - run) / HALF_LIFE) for _, _, run in rows]
    slope = _slope(rows)
    forms: list[_Model | None] = []
    for weights in (flat, recent):
        forms.append(_median_model(rows, weights, prior))
        forms.append(None if slope is None else _line(rows, weights, slope))
    return forms


def _median_model(rows: Sequence[_Row], weights: Sequence[float], prior: float) -> _Model:
    """The weighted median log duration, shrunk toward the prior by one pseudo-sample."""
    n = len(rows)
    return _Model((n * _weighted_median([y for _, y, _ in rows], weights) + prior) / (n + 1))


def _slope(rows: Sequence[_Row]) -> float | None:
    """Theil-Sen slope of log seconds on log size (None: too few sized rows, or sizes too
    alike)."""
    points = sorted((_log_size(size), y) for size, y, _ in rows if size is not None)
    if (len(points) < MIN_LINE // 2 or len(rows) < MIN_LINE
            or points[-1][0] - points[0][0] < math.log(MIN_SIZE_RATIO)):
        return None
    spread = points[::max(1, len(points) // MAX_PAIRS_POINTS)]
    slopes = [(y2 - y1) / (x2 - x1) for i, (x1, y1) in enumerate(spread)
              for x2, y2 in spread[i + 1:] if x2 - x1 > 1e-9]
    return statistics.median(slopes) if slopes else None


def _line(rows: Sequence[_Row], weights: Sequence[float], slope: float) -> _Model:
    """The line through the weighted median intercept, within the kind's observed range."""
    sized = [(size, y, w) for (size, y, _), w in zip(rows, weights, strict=True)
             if size is not None]
    intercept = _weighted_median([y - slope * _log_size(size) for size, y, _ in sized],
                                 [w for _, _, w in sized])
    logs = [y for _, y, _ in rows]
    return _Model(intercept, slope, min(logs), max(logs))


def _weighted_median(values: Sequence[float], weights: Sequence[float]) -> float:
    ordered = sorted(zip(values, weights, strict=True))
    half, total = sum(weights) / 2, 0.0
    for value, weight in ordered:
        total += weight
        if total >= half:
            return value
    return ordered[-1][0]


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


def _log_size(size: float) -> float:
    return math.log1p(size)
