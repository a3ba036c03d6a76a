"""Scheduling and duration prediction measured on real workflow traces.

Reads every `*.json` / `*.json.gz` trace document of a folder (WfCommons instances, compact or
WfFormat; see `core.wfformat`) and reports:

- schedule: each instance replayed in simulated time with the engine's own policy
  (`core.simulate`, its order refined before the run by `core.refine` as the engine does)
  at P=4 and P=16, durations from the trace: makespan / lower bound
  (max(critical path, W/P)), geometric mean and worst over all instances, how many exceed
  Graham's bound (must be 0), and the median parallel efficiency W/(P*M); the same in
  levels mode (one level at a time, `orchestrator run --mode levels`).
- prediction, per family with at least 4 instances: `core.predict` trained on the tasks of at
  least 1 s of the smaller half (by task count), each with its input size and its instance's
  count of tasks of its kind (as the engine gives its plan's), scored on the same population
  of the larger half: median absolute percentage error, coverage of the 80% interval, mean
  interval width (s), mean interval score (s; width plus 2/alpha times any miss), and the
  share of tasks whose kind was seen in training (nextflow's instances are different
  pipelines: most of its kinds are new and back off to all kinds). Sub-second runs (27% of
  all, some of 0 s) are left out of training too: in log space they would drag each kind's
  model toward a population that is never scored.
- learning pays: on those larger halves, at P=4 and P=16, the schedule ordered by durations
  predicted from all tasks of the smaller half (short ones included: the order needs them)
  and run with the true ones, against the same policy knowing the true durations (the
  oracle) and against ready-queue (FIFO) order: geometric means of makespan ratios.

    python bench/learning.py [--data DIR] [--json]
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import math
import statistics
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

if importlib.util.find_spec("orchestrator_tui") is None:  # run from a checkout, not installed
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rich.console import Console
from rich.table import Table

from orchestrator_tui.core.errors import OrchestratorError
from orchestrator_tui.core.predict import Predictor, Sample, fit
from orchestrator_tui.core.refine import refine
from orchestrator_tui.core.simulate import simulate
from orchestrator_tui.core.wfformat import TraceInstance, parse_document

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "wfinstances"
WORKERS = (4, 16)
COVERAGE = 0.8
MIN_SECONDS = 1.0
"""Tasks shorter than this are neither trained on nor scored (percentage errors of near-zero
runtimes explode)."""
MIN_INSTANCES = 4
"""Families with fewer instances are replayed but not used for prediction."""
EPS = 1e-9


def load(folder: Path) -> dict[str, list[TraceInstance]]:
    """The instances of every trace document in `folder`, by family, smallest first."""
    families: dict[str, list[TraceInstance]] = defaultdict(list)
    for path in sorted([*folder.glob("*.json"), *folder.glob("*.json.gz")]):
        opener = gzip.open if path.suffix == ".gz" else open
        try:
            with opener(path, "rt", encoding="utf-8") as stream:
                data = json.load(stream)
        except (OSError, ValueError) as exc:
            raise SystemExit(f"{path.name}: cannot read trace: {exc}") from exc
        for instance in parse_document(data, source=path.name):
            families[instance.family].append(instance)
    for instances in families.values():
        instances.sort(key=lambda instance: len(instance.tasks))
    return dict(families)


def geomean(values: list[float]) -> float:
    """Geometric mean of positive ratios."""
    return math.exp(math.fsum(map(math.log, values)) / len(values)) if values else math.nan


def schedule_replay(
    families: dict[str, list[TraceInstance]],
) -> tuple[dict[str, Any], dict[str, dict[int, float]]]:
    """The schedule figures at each worker count, and the per-family geometric means."""
    figures: dict[str, Any] = {}
    per_family: dict[str, dict[int, float]] = defaultdict(dict)
    for workers in WORKERS:
        ratios: list[float] = []
        efficiencies: list[float] = []
        level_ratios: list[float] = []
        level_efficiencies: list[float] = []
        violations = 0
        for family, instances in families.items():
            mine: list[float] = []
            for instance in instances:
                plan, durations = instance.plan(), instance.durations
                run = simulate(plan, durations, workers,
                               estimates=refine(plan, durations, workers))
                if run.lower_bound <= 0:
                    continue
                mine.append(run.makespan / run.lower_bound)
                efficiencies.append(run.efficiency)
                violations += run.makespan > run.graham_bound * (1 + EPS) + EPS
                levels = simulate(plan, durations, workers, mode="levels",
                                  estimates=refine(plan, durations, workers, mode="levels"))
                level_ratios.append(levels.makespan / levels.lower_bound)
                level_efficiencies.append(levels.efficiency)
            ratios += mine
            per_family[family][workers] = geomean(mine)
        figures[f"p{workers}"] = {
            "geomean_ratio": round(geomean(ratios), 4),
            "worst_ratio": round(max(ratios), 4),
            "graham_violations": violations,
            "efficiency_median": round(statistics.median(efficiencies), 4),
            "levels_geomean_ratio": round(geomean(level_ratios), 4),
            "levels_efficiency_median": round(statistics.median(level_efficiencies), 4),
        }
    return figures, per_family


def split(instances: list[TraceInstance]) -> tuple[list[TraceInstance], list[TraceInstance]]:
    """The smaller half (training) and the larger half (scoring) of a family's instances."""
    half = len(instances) // 2
    return instances[:half], instances[half:]


def train(instances: list[TraceInstance], shortest: float = 0.0) -> Predictor:
    """A predictor fed the instances' tasks of at least `shortest` s, smallest instance first,
    each instance one run."""
    return fit((Sample(task.kind, task.runtime, task.input_bytes, run=number,
                       count=counts[task.kind])
                for number, instance in enumerate(instances)
                for counts in [kind_counts(instance)] for task in instance.tasks
                if task.runtime >= shortest), COVERAGE)


def kind_counts(instance: TraceInstance) -> Counter[str]:
    """How many tasks of each kind the instance has."""
    return Counter(task.kind for task in instance.tasks)


def score(predictor: Predictor, instances: list[TraceInstance]) -> dict[str, float]:
    """MdAPE, coverage, mean width and mean interval score on tasks of at least 1 s, and the
    share of those whose kind had history of its own (the rest back off to all kinds)."""
    errors: list[float] = []
    known = 0
    covered: list[bool] = []
    widths: list[float] = []
    scores: list[float] = []
    penalty = 2 / (1 - COVERAGE)
    for instance in instances:
        counts = kind_counts(instance)
        for task in instance.tasks:
            if task.runtime < MIN_SECONDS:
                continue
            estimate = predictor.predict(task.kind, task.input_bytes, count=counts[task.kind])
            if estimate is None:
                continue
            truth = task.runtime
            known += estimate.basis != "global"
            errors.append(abs(estimate.point - truth) / truth)
            covered.append(estimate.low <= truth <= estimate.high)
            width = estimate.high - estimate.low
            widths.append(width)
            scores.append(width + penalty * (max(0.0, estimate.low - truth)
                                             + max(0.0, truth - estimate.high)))
    if not errors:
        return {"mdape": math.nan, "coverage80": math.nan, "width": math.nan,
                "interval_score": math.nan, "known_kinds": math.nan}
    return {
        "mdape": round(statistics.median(errors), 4),
        "coverage80": round(sum(covered) / len(covered), 4),
        "width": round(statistics.fmean(widths), 3),
        "interval_score": round(statistics.fmean(scores), 3),
        "known_kinds": round(known / len(errors), 4),
    }


def predicted_durations(predictor: Predictor, instance: TraceInstance) -> dict[str, float]:
    """Predicted seconds per task (tasks without any estimate are left to the default)."""
    result: dict[str, float] = {}
    counts = kind_counts(instance)
    for task in instance.tasks:
        estimate = predictor.predict(task.kind, task.input_bytes, count=counts[task.kind])
        if estimate is not None:
            result[task.id] = estimate.point
    return result


def prediction_and_learning(families: dict[str, list[TraceInstance]],
                            ) -> tuple[dict[str, Any], dict[str, Any], dict[str, list[float]]]:
    """Per-family prediction scores, the learning-pays ratios and their detail per P."""
    prediction: dict[str, Any] = {}
    detail: dict[str, list[float]] = defaultdict(list)
    for family, instances in sorted(families.items()):
        if len(instances) < MIN_INSTANCES:
            continue
        older, newer = split(instances)
        prediction[family] = score(train(older, MIN_SECONDS), newer)
        predictor = train(older)  # the schedule needs estimates of sub-second tasks too
        for instance in newer:
            plan, truth = instance.plan(), instance.durations
            guess = predicted_durations(predictor, instance)
            for workers in WORKERS:
                oracle = simulate(plan, truth, workers,
                                  estimates=refine(plan, truth, workers)).makespan
                if oracle <= 0:
                    continue
                learned = simulate(plan, truth, workers,
                                   estimates=refine(plan, guess, workers)).makespan
                fifo = simulate(plan, truth, workers, order="fifo").makespan
                detail[f"predicted_p{workers}"].append(learned / oracle)
                detail[f"fifo_p{workers}"].append(fifo / oracle)
    pays = {
        "predicted_vs_oracle": round(geomean(
            [r for key, rs in detail.items() if key.startswith("predicted") for r in rs]), 4),
        "fifo_vs_oracle": round(geomean(
            [r for key, rs in detail.items() if key.startswith("fifo") for r in rs]), 4),
    }
    return prediction, pays, detail


def show(figures: dict[str, Any], per_family: dict[str, dict[int, float]],
         detail: dict[str, list[float]]) -> None:
    """The figures as readable tables."""
    console = Console()
    table = Table(title="Scheduling replay (makespan / lower bound)", title_justify="left")
    table.add_column("family")
    for workers in WORKERS:
        table.add_column(f"P={workers}", justify="right")
    for family, by_p in sorted(per_family.items()):
        table.add_row(family, *(f"{by_p[w]:.4f}" for w in WORKERS))
    for key, label in (("geomean_ratio", "geomean (all instances)"),
                       ("worst_ratio", "worst"), ("graham_violations", "Graham violations"),
                       ("efficiency_median", "efficiency W/(P*M), median"),
                       ("levels_geomean_ratio", "levels mode: geomean"),
                       ("levels_efficiency_median", "levels mode: efficiency, median")):
        table.add_row(label, *(str(figures["schedule"][f"p{w}"][key]) for w in WORKERS))
    console.print(table)
    table = Table(title="Prediction (train on smaller half, score larger half, tasks >= 1 s)",
                  title_justify="left")
    for column in ("family", "MdAPE", "coverage 80%", "mean width s", "interval score s",
                   "kind known"):
        table.add_column(column, justify="left" if column == "family" else "right")
    for family, row in figures["prediction"].items():
        table.add_row(family, *(str(row[key]) for key in
                                ("mdape", "coverage80", "width", "interval_score",
                                 "known_kinds")))
    console.print(table)
    table = Table(title="Learning pays (geometric mean makespan / oracle)", title_justify="left")
    table.add_column("order")
    for workers in WORKERS:
        table.add_column(f"P={workers}", justify="right")
    table.add_column("both", justify="right")
    pays = figures["learning_pays"]
    for name, key in (("predicted durations", "predicted"), ("ready-queue FIFO", "fifo")):
        table.add_row(name, *(f"{geomean(detail[f'{key}_p{w}']):.4f}" for w in WORKERS),
                      str(pays[f"{key}_vs_oracle"]))
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit status 2 when the data folder is missing or unreadable."""
    args = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    args.add_argument("--data", type=Path, default=DEFAULT_DATA,
                      help="folder of trace documents (*.json, *.json.gz)")
    args.add_argument("--json", action="store_true", help="print one JSON object of figures")
    options = args.parse_args(argv)
    folder: Path = options.data
    if not folder.is_dir():
        print(f"no trace folder at {folder}; give one with --data DIR", file=sys.stderr)
        return 2
    try:
        families = load(folder)
    except OrchestratorError as exc:
        print(f"{folder}: {exc}", file=sys.stderr)
        return 2
    if not families:
        print(f"no trace documents (*.json, *.json.gz) in {folder}", file=sys.stderr)
        return 2
    schedule, per_family = schedule_replay(families)
    prediction, pays, detail = prediction_and_learning(families)
    figures = {"schedule": schedule, "prediction": prediction, "learning_pays": pays}
    if options.json:
        print(json.dumps(figures, indent=2))
    else:
        show(figures, per_family, detail)
    return 0


if __name__ == "__main__":
    sys.exit(main())
