"""Duration prediction from recorded history: a point estimate and a calibrated interval.

Durations are modelled in log space, per task kind, backed off to all kinds together when a
kind has no history. For each kind, `fit` compares two models on the kind's most recent
samples (held out): the median log duration, and a robust (Theil-Sen) line of log duration
on log input size; the one with the smaller held-out error is kept. A kind with few samples
is shrunk toward the global median, so an estimate moves steadily as history accumulates.

Intervals are split-conformal: the kind's model is fitted on its older samples, and the
quantile of its absolute log residuals on the newer ones gives a symmetric interval (in log
space) around the final model (fitted on everything). Calibrating on the newest samples
makes the stated coverage hold when the future looks like the recent past, not only like a
random draw of it. Absolute residuals keep the final point inside its interval even when the
newest samples drifted to one side of the older model: the drift widens the interval instead
of moving it away from the point. A kind with too few held-out residuals uses the residuals
of all kinds pooled.

Pure: no I/O. `predict` returns None when there is no history at all ("no data yet").
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

FLOOR_SECONDS = 0.01
"""Durations below this count as this much (logs of 0 are undefined)."""
SHRINK = 1.0
"""Pseudo-samples of the global median mixed into a kind's median."""
MIN_LINE = 8
"""Samples a kind needs before a size regression is considered."""
MIN_OWN_RESIDUALS = 20
"""Held-out residuals a kind needs to use its own interval rather than the pooled one."""
HOLDOUT = 0.3
"""Fraction of each kind's newest samples held out to choose the model and calibrate."""
MAX_PAIRS_POINTS = 150
"""Theil-Sen uses at most this many evenly spread points (its cost is quadratic)."""


@dataclass(frozen=True, slots=True)
class Sample:
    """One recorded duration: the task's kind, its seconds, and its input size if known."""

    kind: str
    seconds: float
    size: float | None = None


@dataclass(frozen=True, slots=True)
class Estimate:
    """A predicted duration in seconds with an interval of the predictor's coverage."""

    point: float
    low: float
    high: float
    n: int
    """Samples of this kind behind the estimate (0: backed off to all kinds)."""
    basis: str
    """"kind" or "global": which history the estimate comes from."""


@dataclass(frozen=True, slots=True)
class _Model:
    """log seconds = intercept + slope * log(1 + size) (slope 0: a constant)."""

    intercept: float
    slope: float = 0.0

    def log_seconds(self, size: float | None) -> float:
        if self.slope == 0.0 or size is None:
            return self.intercept
        return self.intercept + self.slope * _log_size(size)


@dataclass(frozen=True, slots=True)
class _KindFit:
    model: _Model
    low: float
    """Lower bound of the log residuals (the negated upper one: intervals are symmetric)."""
    high: float
    n: int
    median_size: float | None


class Predictor:
    """Fitted duration predictor; build one with `fit`."""

    def __init__(self, kinds: dict[str, _KindFit], fallback: _KindFit | None,
                 coverage: float) -> None:
        self._kinds = kinds
        self._global = fallback
        self.coverage = coverage
        """The probability each interval is meant to contain the true duration."""

    @property
    def kinds(self) -> list[str]:
        """The task kinds with history of their own."""
        return sorted(self._kinds)

    def predict(self, kind: str, size: float | None = None) -> Estimate | None:
        """The estimate for a task of `kind` with input `size` bytes; None: no data yet."""
        own = self._kinds.get(kind)
        fit = own if own is not None else self._global
        if fit is None:
            return None
        if size is None and fit.model.slope:
            size = fit.median_size
        centre = fit.model.log_seconds(size)
        return Estimate(
            point=math.exp(centre),
            low=math.exp(centre + fit.low),
            high=math.exp(centre + fit.high),
            n=fit.n if own is not None else 0,
            basis="kind" if own is not None else "global",
        )


def fit(samples: Iterable[Sample], coverage: float = 0.8) -> Predictor:
    """Learn a predictor from samples given oldest first.

    Raises:
        ValueError: a coverage outside (0, 1), or a negative or non-finite duration or size.
    """
    if not 0 < coverage < 1:
        raise ValueError(f"coverage must be between 0 and 1, not {coverage}")
    by_kind: dict[str, list[tuple[float | None, float]]] = defaultdict(list)
    for sample in samples:
        if not math.isfinite(sample.seconds) or sample.seconds < 0:
            raise ValueError(f"duration of a {sample.kind!r} sample must be finite and >= 0")
        if sample.size is not None and not (math.isfinite(sample.size) and sample.size >= 0):
            raise ValueError(f"size of a {sample.kind!r} sample must be finite and >= 0")
        by_kind[sample.kind].append((sample.size, _log_seconds(sample.seconds)))
    if not by_kind:
        return Predictor({}, None, coverage)
    everything = [y for rows in by_kind.values() for _, y in rows]
    prior = statistics.median(everything)
    pooled: list[float] = []
    held: dict[str, list[float]] = {}
    models: dict[str, _Model] = {}
    for kind, rows in by_kind.items():
        models[kind], held[kind] = _choose(rows, prior)
        pooled.extend(held[kind])
    global_residuals = [y - prior for y in everything]
    fallback = _KindFit(_Model(prior), *_bounds(global_residuals, coverage), len(everything),
                        None)
    pooled_bounds = _bounds(pooled, coverage) if pooled else (fallback.low, fallback.high)
    kinds: dict[str, _KindFit] = {}
    for kind, rows in by_kind.items():
        residuals = held[kind]
        low, high = (_bounds(residuals, coverage) if len(residuals) >= MIN_OWN_RESIDUALS
                     else pooled_bounds)
        sizes = [size for size, _ in rows if size is not None]
        kinds[kind] = _KindFit(models[kind], low, high, len(rows),
                               statistics.median(sizes) if sizes else None)
    return Predictor(kinds, fallback, coverage)


def _choose(rows: Sequence[tuple[float | None, float]], prior: float,
            ) -> tuple[_Model, list[float]]:
    """The kind's final model and the held-out residuals of its chosen form."""
    cut = len(rows) - max(1, round(len(rows) * HOLDOUT)) if len(rows) >= 2 else len(rows)
    older, newer = rows[:cut], rows[cut:]
    def constant(part: Sequence[tuple[float | None, float]]) -> _Model:
        return _constant(part, prior)

    forms: list[Callable[[Sequence[tuple[float | None, float]]], _Model]] = [constant]
    if len(rows) >= MIN_LINE and _sized_spread(older):
        forms.append(_line)
    best: tuple[float, int, list[float]] | None = None
    for index, form in enumerate(forms):
        model = form(older)
        residuals = [y - model.log_seconds(size) for size, y in newer]
        error = statistics.median(abs(r) for r in residuals) if residuals else 0.0
        if best is None or error < best[0]:
            best = (error, index, residuals)
    assert best is not None
    return forms[best[1]](rows), best[2]


def _constant(rows: Sequence[tuple[float | None, float]], prior: float) -> _Model:
    """The median log duration, shrunk toward the prior by `SHRINK` pseudo-samples."""
    if not rows:
        return _Model(prior)
    n = len(rows)
    return _Model((n * statistics.median(y for _, y in rows) + SHRINK * prior) / (n + SHRINK))


def _line(rows: Sequence[tuple[float | None, float]]) -> _Model:
    """Theil-Sen fit of log seconds on log size (rows without a size are left out)."""
    points = [(_log_size(size), y) for size, y in rows if size is not None]
    step = max(1, len(points) // MAX_PAIRS_POINTS)
    spread = sorted(points)[::step]
    slopes = [(y2 - y1) / (x2 - x1) for i, (x1, y1) in enumerate(spread)
              for x2, y2 in spread[i + 1:] if x2 - x1 > 1e-9]
    if not slopes:
        return _Model(statistics.median(y for _, y in points))
    slope = statistics.median(slopes)
    return _Model(statistics.median(y - slope * x for x, y in points), slope)


def _sized_spread(rows: Sequence[tuple[float | None, float]]) -> bool:
    """Whether enough rows have sizes, of at least two different values, to fit a line."""
    sizes = {size for size, _ in rows if size is not None}
    return len(sizes) >= 2 and sum(size is not None for size, _ in rows) >= MIN_LINE // 2


def _bounds(residuals: Sequence[float], coverage: float) -> tuple[float, float]:
    """Split-conformal bounds: the absolute residual rank that covers `coverage` of new cases."""
    ordered = sorted(abs(residual) for residual in residuals)
    n = len(ordered)
    rank = min(n - 1, math.ceil((n + 1) * coverage) - 1)
    return -ordered[rank], ordered[rank]


def _log_seconds(seconds: float) -> float:
    return math.log(max(seconds, FLOOR_SECONDS))


def _log_size(size: float) -> float:
    return math.log1p(size)
