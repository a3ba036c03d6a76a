"""Duration prediction: backoff, explicit absence of data, learning and calibrated intervals."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from orchestrator_tui.core.predict import Sample, fit


def lognormal(rng: random.Random, kind: str, n: int, median: float, sigma: float,
              ) -> list[Sample]:
    """`n` samples of a kind whose durations are lognormal around `median`."""
    return [Sample(kind, median * math.exp(rng.gauss(0, sigma))) for _ in range(n)]


def test_no_history_means_no_estimate() -> None:
    predictor = fit([])
    assert predictor.predict("build") is None
    assert predictor.kinds == []


def test_unknown_kind_backs_off_to_all_kinds() -> None:
    rng = random.Random(1)
    predictor = fit(lognormal(rng, "build", 50, 10.0, 0.2) + lognormal(rng, "test", 50, 40.0, 0.2))
    own = predictor.predict("build")
    other = predictor.predict("lint")
    assert own is not None and other is not None
    assert (own.basis, own.n) == ("kind", 50)
    assert (other.basis, other.n) == ("global", 0)
    assert own.point == pytest.approx(10.0, rel=0.15)
    assert 10.0 <= other.point <= 40.0
    assert other.high - other.low > own.high - own.low
    assert own.low <= own.point <= own.high


def test_estimates_improve_monotonically_with_history_of_a_stable_kind() -> None:
    rng = random.Random(2)
    others = lognormal(rng, "deploy", 40, 300.0, 0.3)
    errors = []
    for n in range(0, 12):
        estimate = fit(others + [Sample("stable", 12.0)] * n).predict("stable")
        assert estimate is not None
        errors.append(abs(math.log(estimate.point / 12.0)))
    assert all(later < earlier for earlier, later in itertools.pairwise(errors))
    assert errors[-1] < errors[0] / 10


def test_size_regression_follows_input_size() -> None:
    rng = random.Random(3)
    samples = []
    for _ in range(200):
        size = rng.uniform(1e6, 1e9)
        samples.append(Sample("align", 2e-6 * size * math.exp(rng.gauss(0, 0.1)), size))
    predictor = fit(samples)
    small, large = predictor.predict("align", 1e7), predictor.predict("align", 9e8)
    assert small is not None and large is not None
    assert small.point == pytest.approx(20.0, rel=0.15)
    assert large.point == pytest.approx(1800.0, rel=0.15)
    unsized = predictor.predict("align")  # no size given: the kind's typical size
    assert unsized is not None and small.point < unsized.point < large.point


@pytest.mark.parametrize("sigma", [0.1, 0.5, 1.0])
def test_interval_coverage_is_what_it_says(sigma: float) -> None:
    rng = random.Random(int(sigma * 10))
    fresh = lognormal(rng, "job", 2000, 30.0, sigma)
    rates = []
    for _ in range(8):  # the average over independent histories of 400 samples each
        history = lognormal(rng, "job", 400, 30.0, sigma) + lognormal(rng, "x", 5, 2.0, 0.1)
        predictor = fit(history)
        estimate = predictor.predict("job")
        assert estimate is not None and predictor.coverage == 0.8
        rates.append(sum(estimate.low <= s.seconds <= estimate.high for s in fresh) / 2000)
    assert 0.76 <= sum(rates) / len(rates) <= 0.84


def test_zero_durations_and_bad_input() -> None:
    predictor = fit([Sample("noop", 0.0)] * 5)
    estimate = predictor.predict("noop")
    assert estimate is not None and estimate.point > 0
    with pytest.raises(ValueError, match="finite"):
        fit([Sample("a", -1.0)])
    with pytest.raises(ValueError, match="size"):
        fit([Sample("a", 1.0, float("nan"))])
    with pytest.raises(ValueError, match="coverage"):
        fit([], coverage=1.5)


def test_interval_holds_its_point_and_leans_toward_a_drift() -> None:
    rng = random.Random(7)
    history = lognormal(rng, "build", 120, 10.0, 0.05) + lognormal(rng, "build", 60, 20.0, 0.05)
    estimate = fit(history).predict("build")
    assert estimate is not None
    assert estimate.low <= estimate.point <= estimate.high
    assert estimate.low <= 20.0 <= estimate.high
    assert estimate.high / estimate.point > estimate.point / estimate.low  # upward drift


def test_both_sides_of_an_interval_reach_past_its_point() -> None:
    """Runs that only ever got slower still leave room for one that is a little faster."""
    history = [Sample("build", 10.0 * 1.1 ** run * (1 + 0.01 * i), run=run)
               for run in range(8) for i in range(10)]
    estimate = fit(history).predict("build")
    assert estimate is not None
    assert estimate.low < 0.97 * estimate.point
    assert estimate.high / estimate.point > estimate.point / estimate.low


def test_runs_with_more_tasks_of_a_kind_predict_by_their_count() -> None:
    """A kind whose tasks run longer in larger runs (say, sharing a disk) follows its count."""
    rng = random.Random(3)
    counts = [4, 8, 16, 32, 6, 12, 24, 48]
    history = [Sample("align", 0.5 * count * math.exp(rng.gauss(0, 0.05)), run=run, count=count)
               for run, count in enumerate(counts) for _ in range(count)]
    predictor = fit(history)
    small, large = predictor.predict("align", count=8), predictor.predict("align", count=32)
    assert small is not None and large is not None
    assert small.point == pytest.approx(4.0, rel=0.2)
    assert large.point == pytest.approx(16.0, rel=0.2)


def test_a_count_without_a_trend_changes_nothing() -> None:
    rng = random.Random(4)
    history = [Sample("lint", 10.0 * math.exp(rng.gauss(0, 0.2)), run=run, count=count)
               for run, count in enumerate([3, 30, 5, 50, 4, 40, 6, 60]) for _ in range(10)]
    predictor = fit(history)
    few, many = predictor.predict("lint", count=3), predictor.predict("lint", count=60)
    assert few is not None and many is not None
    assert few.point == many.point == pytest.approx(10.0, rel=0.15)


def test_a_size_line_never_predicts_beyond_what_the_kind_has_shown() -> None:
    samples = [Sample("fit", seconds, size) for seconds, size in
               [(1.0, 1e3), (2.0, 2e3), (4.0, 4e3), (8.0, 8e3)] * 4]
    estimate = fit(samples).predict("fit", 1e12)
    assert estimate is not None and estimate.point <= 8.0 * 1.0001


def test_a_task_backs_off_to_its_kind_then_to_all_kinds() -> None:
    """One agent does two jobs of different lengths: each job has its own estimate, a new
    job of that agent gets the agent's, and an unknown agent all kinds'."""
    rng = random.Random(9)
    history = [Sample("builder", 10.0 * math.exp(rng.gauss(0, 0.1)), run=n, task="ci/lint")
               for n in range(30)]
    history += [Sample("builder", 300.0 * math.exp(rng.gauss(0, 0.1)), run=n, task="ci/build")
                for n in range(30)]
    predictor = fit(history)
    lint, build = predictor.predict("builder", task="ci/lint"), \
        predictor.predict("builder", task="ci/build")
    new, agent = predictor.predict("builder", task="ci/new"), predictor.predict("builder")
    unknown = predictor.predict("tester", task="ci/lint")
    assert lint is not None and build is not None and new is not None and unknown is not None
    assert (lint.basis, lint.n, build.basis) == ("task", 30, "task")
    assert lint.point == pytest.approx(10.0, rel=0.1)
    assert build.point == pytest.approx(300.0, rel=0.1)
    assert new == agent and (new.basis, new.n) == ("kind", 60)
    assert (unknown.basis, unknown.n) == ("global", 0)
    assert lint.high - lint.low < new.high - new.low  # its own history is the sharper
