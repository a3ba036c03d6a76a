"""The competing forms of the duration predictor (`core.predict`), fitted to one group of
samples: the median log duration, and robust (Theil-Sen) lines of log duration on log input
size, on the log of the run's count of tasks of the kind, and on both; each either over all
runs alike or with recent runs weighing more.

Pure: no I/O.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

HALF_LIFE = 2.0
"""Runs after which a sample counts half, in the forms that follow recent runs."""
MIN_LINE = 8
"""Sized samples a kind needs before a size regression is considered."""
MIN_SIZE_RATIO = 1.05
"""The largest input (or count) a kind has seen must be this many times its smallest for a
line: values that barely differ give wild slopes."""
MIN_COUNT_RUNS = 3
"""Runs with a count a kind needs before a count line is considered."""
MAX_PAIRS_POINTS = 150
"""Theil-Sen uses at most this many evenly spread points (its cost is quadratic)."""
MAX_COUNT_POINTS = 30
"""A count line is fitted on one point per run, so on at most this many runs: a long
history's slope barely moves with more, and each group fits it a dozen times."""


@dataclass(frozen=True, slots=True)
class Model:
    """log seconds = intercept + slope * x_size + count_slope * x_count, kept within [floor,
    ceiling], where x_size = log(1 + size) and x_count = log(count); a term whose feature is
    unknown is left out."""

    intercept: float
    slope: float = 0.0
    floor: float = -math.inf
    ceiling: float = math.inf
    count_slope: float = 0.0

    def log_seconds(self, x_size: float | None, x_count: float | None) -> float:
        """The prediction at a log size and a log count (either None: unknown)."""
        value = self.intercept
        if self.slope and x_size is not None:
            value += self.slope * x_size
        if self.count_slope and x_count is not None:
            value += self.count_slope * x_count
        return min(self.ceiling, max(self.floor, value))


class Row(NamedTuple):
    """A sample as fitted."""

    x_size: float | None
    """Log of 1 + the input size."""
    x_count: float | None
    """Log of the run's count of tasks of the kind."""
    y: float
    """Log seconds."""
    run: int
    """Index of the run, in order of first appearance."""


PER_WEIGHTING = 4
"""Forms per weighting: median, size line, count line, both lines (in this order)."""
FORMS = 2 * PER_WEIGHTING
"""All forms: the first `PER_WEIGHTING` flat, the rest recency-weighted."""
PLAIN = [i for i in range(FORMS) if i % PER_WEIGHTING < 2]
"""The forms without the count (median and size line)."""
COUNTED = [i for i in range(FORMS) if i % PER_WEIGHTING >= 2]
"""The forms using the count."""


def fit_forms(rows: Sequence[Row], prior: float) -> list[Model | None]:
    """The competing models of one group: median, size line, count line and both lines,
    each flat and recency-weighted (None: a line the rows cannot support)."""
    if not rows:
        return [Model(prior)] + [None] * (FORMS - 1)
    newest = max(row.run for row in rows)
    flat = [1.0] * len(rows)
    recent = [0.5 ** ((newest - row.run) / HALF_LIFE) for row in rows]
    slope = size_slope(rows)
    count_alone = count_slope(rows, 0.0)
    count_with = None if slope is None else count_slope(rows, slope)
    result: list[Model | None] = []
    for weights in (flat, recent):
        result.append(median_model(rows, weights, prior))
        result.append(None if slope is None else line(rows, weights, slope, 0.0))
        result.append(None if count_alone is None else line(rows, weights, 0.0, count_alone))
        result.append(None if slope is None or count_with is None
                     else line(rows, weights, slope, count_with))
    return result


def median_model(rows: Sequence[Row], weights: Sequence[float], prior: float) -> Model:
    """The weighted median log duration, shrunk toward the prior by one pseudo-sample."""
    n = len(rows)
    return Model((n * weighted_median([row.y for row in rows], weights) + prior) / (n + 1))


def size_slope(rows: Sequence[Row]) -> float | None:
    """Theil-Sen slope of log seconds on log size (None: too few sized rows, or sizes too
    alike)."""
    points = sorted((row.x_size, row.y) for row in rows if row.x_size is not None)
    if (len(points) < MIN_LINE // 2 or len(rows) < MIN_LINE
            or points[-1][0] - points[0][0] < math.log(MIN_SIZE_RATIO)):
        return None
    return theil_sen(points)


def count_slope(rows: Sequence[Row], slope: float) -> float | None:
    """Theil-Sen slope, over runs, of each run's median log seconds less the size term, on the
    log of the run's count (None: too few runs with a count, or counts too alike)."""
    counts = {row.run: row.x_count for row in rows if row.x_count is not None}
    if len(counts) < MIN_COUNT_RUNS \
            or max(counts.values()) - min(counts.values()) < math.log(MIN_SIZE_RATIO):
        return None  # the common case of one plan run again: its counts never change
    by_run: dict[int, list[float]] = defaultdict(list)
    for row in rows:
        if row.x_count is not None:
            by_run[row.run].append(row.y if row.x_size is None else row.y - slope * row.x_size)
    points = sorted((counts[run], statistics.median(ys)) for run, ys in by_run.items())
    if len(points) > MAX_COUNT_POINTS:  # evenly spread, the first and last kept
        last = len(points) - 1
        points = [points[i * last // (MAX_COUNT_POINTS - 1)] for i in range(MAX_COUNT_POINTS)]
    return theil_sen(points)


def theil_sen(points: Sequence[tuple[float, float]]) -> float | None:
    """The median slope over pairs of points (every k-th of them when there are at least
    twice `MAX_PAIRS_POINTS`)."""
    spread = points[::max(1, len(points) // MAX_PAIRS_POINTS)]
    slopes = [(y2 - y1) / (x2 - x1) for i, (x1, y1) in enumerate(spread)
              for x2, y2 in spread[i + 1:] if x2 - x1 > 1e-9]
    return statistics.median(slopes) if slopes else None


def line(rows: Sequence[Row], weights: Sequence[float], slope: float,
          count_slope: float) -> Model | None:
    """The line of these slopes through the weighted median intercept, within the group's
    observed durations (None: no row has every feature the line uses)."""
    fitted = [(row.y - slope * (row.x_size or 0.0) - count_slope * (row.x_count or 0.0), weight)
              for row, weight in zip(rows, weights, strict=True)
              if (row.x_size is not None or not slope)
              and (row.x_count is not None or not count_slope)]
    if not fitted:
        return None
    intercept = weighted_median([y for y, _ in fitted], [w for _, w in fitted])
    logs = [row.y for row in rows]
    return Model(intercept, slope, min(logs), max(logs), count_slope)


def weighted_median(values: Sequence[float], weights: Sequence[float]) -> float:
    """The value at which the cumulated weight reaches half the total."""
    ordered = sorted(zip(values, weights, strict=True))
    half, total = sum(weights) / 2, 0.0
    for value, weight in ordered:
        total += weight
        if total >= half:
            return value
    return ordered[-1][0]


def log_size(size: float) -> float:
    """The size feature: log(1 + bytes)."""
    return math.log1p(size)


def log_count(count: int) -> float:
    """The count feature: log(tasks of the kind in the run), at least 0."""
    return math.log(max(count, 1))
