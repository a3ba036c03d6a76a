"""How fast a large plan is read, validated, levelled and critical-pathed.

Builds a random DAG of N tasks (each depends on 3 random earlier tasks, fixed seed) as a
workflow file (JSON and YAML) and as an `IntentSpec`, and times each stage as the median of a
few runs:

- `seconds_100k`: the JSON workflow file on disk -> read -> document -> workflow (every field
  of every task checked) -> validated plan (duplicate ids, unknown dependencies, acyclicity,
  levels, order) -> bottom levels and critical path. Budget: 2 s.
- `plan_seconds_100k`: only `IntentSpec` -> plan -> critical path, the part that is ours.
- `shuffled_seconds_100k`: that with the tasks listed in random order, which takes the
  networkx acyclicity check and Kahn's algorithm instead of the one-pass file-order levels.
- `yaml_parse_seconds_100k`: the same workflow as YAML text -> document (PyYAML with libyaml;
  one run, as it is slow: about 0.1 ms per task, which is why large generated workflows
  should be written as `.json`).
- `document_seconds_100k`: document -> workflow -> plan -> critical path.
- storing and restoring the plan (`to_dict` / JSON / `from_dict`).
- the same DAG with one back edge: how long until the cycle is reported, and its tasks.

The `_100k` names stay the same with `--nodes`; `nodes` says what was measured.

    python bench/plan_scale.py [--nodes N] [--runs R] [--seed S] [--json] [--check]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

if importlib.util.find_spec("orchestrator_tui") is None:  # run from a checkout, not installed
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orchestrator_tui.core.errors import CycleError
from orchestrator_tui.core.models import IntentSpec, TaskSpec
from orchestrator_tui.core.plan import Plan
from orchestrator_tui.core.workflow import build_plan, workflow_from_data
from orchestrator_tui.core.workflow_text import load_yaml
from orchestrator_tui.engine.workflows import read_workflow

T = TypeVar("T")
LIMIT_SECONDS = 2.0
"""The budget for `seconds_100k` at 100,000 tasks."""


def random_dag(nodes: int, seed: int) -> dict[str, tuple[str, ...]]:
    """Task id -> dependencies: each task depends on 3 distinct random earlier tasks."""
    rng = random.Random(seed)
    return {f"t{i}": tuple(f"t{j}" for j in sorted(rng.sample(range(i), min(3, i))))
            for i in range(nodes)}


def as_yaml(deps: dict[str, tuple[str, ...]]) -> str:
    """The DAG as a workflow file in block style, one task per four lines."""
    lines = ["intents:", "  scale:", "    description: random DAG benchmark",
             "    max_concurrent: 8", "    tasks:"]
    for task_id, after in deps.items():
        lines += [f"      - id: {task_id}", f"        command: [echo, {task_id}]"]
        if after:
            lines.append(f"        depends_on: [{', '.join(after)}]")
        lines.append("        timeout: 60")
    return "\n".join(lines) + "\n"


def as_intent(deps: dict[str, tuple[str, ...]], order: list[str] | None = None) -> IntentSpec:
    """The DAG as an intent, its tasks in `order` (default: creation order)."""
    ids = order if order is not None else list(deps)
    return IntentSpec("scale", tuple(TaskSpec(id=task_id, command=("echo", task_id),
                                              depends_on=deps[task_id], timeout=60.0)
                                     for task_id in ids))


def timed(runs: int, work: Callable[[], T]) -> tuple[float, T]:
    """Median seconds of `runs` calls of `work`, and the last result."""
    seconds: list[float] = []
    result: T | None = None
    for _ in range(runs):
        result = None  # free the previous result outside the timed part
        start = time.perf_counter()
        result = work()
        seconds.append(time.perf_counter() - start)
    assert result is not None
    return statistics.median(seconds), result


def plan_and_path(plan: Plan) -> list[str]:
    """The critical path of a fresh plan (which computes every task's bottom level)."""
    return plan.critical_path()


def intent_figures(deps: dict[str, tuple[str, ...]], runs: int,
                   seed: int) -> tuple[dict[str, Any], list[str]]:
    """The budget figure, from an IntentSpec in file order and shuffled."""
    intent = as_intent(deps)
    seconds, path = timed(runs, lambda: plan_and_path(Plan(intent)))
    shuffled_ids = list(deps)
    random.Random(seed + 1).shuffle(shuffled_ids)
    shuffled = as_intent(deps, shuffled_ids)
    shuffled_seconds, shuffled_path = timed(runs, lambda: plan_and_path(Plan(shuffled)))
    assert len(shuffled_path) == len(path)
    return {"plan_seconds_100k": round(seconds, 4),
            "shuffled_seconds_100k": round(shuffled_seconds, 4),
            "critical_path_tasks": len(path)}, path


def file_figures(deps: dict[str, tuple[str, ...]], runs: int,
                 path: list[str]) -> dict[str, Any]:
    """The budget figure: a JSON workflow file on disk -> plan -> critical path."""
    data = {"intents": {"scale": {
        "description": "random DAG benchmark", "max_concurrent": 8,
        "tasks": [{"id": tid, "command": ["echo", tid], "timeout": 60,
                   **({"depends_on": list(after)} if after else {})}
                  for tid, after in deps.items()]}}}
    with tempfile.TemporaryDirectory() as folder:
        file = Path(folder) / "scale.json"
        file.write_text(json.dumps(data, indent=1))

        def from_file() -> Plan:
            plan = build_plan(read_workflow(file), "scale")
            assert plan_and_path(plan) == path
            return plan

        seconds, _ = timed(runs, from_file)
        return {"seconds_100k": round(seconds, 4), "json_bytes": file.stat().st_size}


def document_figures(deps: dict[str, tuple[str, ...]], runs: int,
                     path: list[str]) -> tuple[dict[str, Any], Plan]:
    """YAML text -> document (one run), then document -> workflow -> plan -> critical path."""
    text, source = as_yaml(deps), "bench/scale.yaml"
    yaml_seconds, data = timed(1, lambda: load_yaml(text, source=source))

    def from_document() -> Plan:
        plan = build_plan(workflow_from_data(data, source=source, check_plans=False), "scale")
        assert plan_and_path(plan) == path
        return plan

    seconds, plan = timed(runs, from_document)
    return {"yaml_parse_seconds_100k": round(yaml_seconds, 4), "yaml_bytes": len(text.encode()),
            "document_seconds_100k": round(seconds, 4), "levels": plan.level_count}, plan


def storage_figures(plan: Plan, runs: int) -> dict[str, Any]:
    """Storing a plan as JSON and rebuilding it, as after a crash."""
    to_dict_seconds, stored = timed(runs, plan.to_dict)
    blob = json.dumps(stored, separators=(",", ":"))
    from_dict_seconds, restored = timed(runs, lambda: Plan.from_dict(json.loads(blob)))
    assert restored.levels == plan.levels and restored.intent == plan.intent
    return {"to_dict_seconds": round(to_dict_seconds, 4),
            "from_dict_json_seconds": round(from_dict_seconds, 4),
            "stored_bytes": len(blob.encode())}


def cycle_figures(deps: dict[str, tuple[str, ...]], runs: int) -> dict[str, Any]:
    """The DAG with one back edge: t0 waits for the last task, which (transitively) waits for t0."""
    cyclic = as_intent(dict(deps, t0=(f"t{len(deps) - 1}",)))

    def find_cycle() -> list[str]:
        try:
            Plan(cyclic)
        except CycleError as error:
            return error.cycle
        raise AssertionError("the back edge did not make a cycle")

    seconds, cycle = timed(runs, find_cycle)
    return {"cycle_detected_seconds": round(seconds, 4), "cycle_length": len(cycle),
            "cycle": cycle}


def measure(nodes: int, runs: int, seed: int) -> dict[str, Any]:
    """Every figure of the benchmark, as one JSON-able mapping."""
    deps = random_dag(nodes, seed)
    result: dict[str, Any] = {"nodes": nodes, "edges": sum(map(len, deps.values())),
                              "runs": runs, "seed": seed}
    figures, path = intent_figures(deps, runs, seed)
    result.update(figures)
    result.update(file_figures(deps, runs, path))
    figures, plan = document_figures(deps, runs, path)
    result.update(figures)
    result.update(storage_figures(plan, runs))
    del plan
    result.update(cycle_figures(deps, runs))
    result["limit_seconds"] = LIMIT_SECONDS
    result["within_limit"] = result["seconds_100k"] < LIMIT_SECONDS if nodes <= 100_000 else None
    return result


def show(result: dict[str, Any]) -> None:
    """Print the figures as a table."""
    from rich.console import Console
    from rich.table import Table

    cycle = result["cycle"]
    shown = " -> ".join(cycle[:6]) + (f" -> ... ({len(cycle) - 6} more)" if len(cycle) > 6
                                      else "")
    table = Table(title=f"Plan scale: {result['nodes']:,} tasks, {result['edges']:,} "
                        f"dependencies, median of {result['runs']}")
    table.add_column("stage")
    table.add_column("seconds", justify="right")
    table.add_column("notes")
    budget = "within" if result["within_limit"] else "OVER"
    rows = [
        ("JSON file -> workflow -> plan -> path", result["seconds_100k"],
         f"{budget} the {result['limit_seconds']:g} s budget; "
         f"{result['json_bytes'] / 1e6:.1f} MB file"),
        ("IntentSpec -> plan -> critical path", result["plan_seconds_100k"],
         f"{result['levels']} levels, critical path {result['critical_path_tasks']} tasks"),
        ("  same, tasks shuffled", result["shuffled_seconds_100k"],
         "networkx DAG check + Kahn levels"),
        ("YAML text -> document", result["yaml_parse_seconds_100k"],
         f"{result['yaml_bytes'] / 1e6:.1f} MB of YAML"),
        ("document -> workflow -> plan -> path", result["document_seconds_100k"],
         "every task field checked"),
        ("plan.to_dict()", result["to_dict_seconds"], ""),
        ("JSON -> Plan.from_dict()", result["from_dict_json_seconds"],
         f"{result['stored_bytes'] / 1e6:.1f} MB stored"),
        ("one back edge -> CycleError", result["cycle_detected_seconds"],
         f"{result['cycle_length']} tasks: {shown}"),
    ]
    for stage, seconds, note in rows:
        table.add_row(stage, f"{seconds:.3f}", note)
    console = Console()
    if not console.is_terminal:
        console = Console(width=120)  # piped: keep one line per stage
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--nodes", type=int, default=100_000, help="tasks in the DAG")
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--seed", type=int, default=7, help="random seed of the DAG")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--check", action="store_true",
                        help="exit with status 1 when seconds_100k misses the budget")
    args = parser.parse_args(argv)
    if args.nodes < 2 or args.runs < 1:
        parser.error("--nodes must be at least 2 and --runs at least 1")
    result = measure(args.nodes, args.runs, args.seed)
    if args.json:
        print(json.dumps(result))
    else:
        show(result)
    return 1 if args.check and result["within_limit"] is False else 0


if __name__ == "__main__":
    sys.exit(main())
