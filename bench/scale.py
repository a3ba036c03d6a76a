"""Overhead per task and parallel efficiency, on the local runner and on a local Ray cluster.

A wide DAG of 2,000 `sleep 0.05` tasks (one root task, everything else depending on it
alone) runs through the real engine on a real SQLite file at `--parallel` (default 16:
sleep tasks are not CPU bound, so a 2-core machine can hold 16 at once), once with the local
runner and once with the Ray executor on `ray.init(num_cpus=PARALLEL)` (Ray's start-up and
a warm-up run are not timed). Ideal time = the critical path plus ceil(rest / P) rounds of
the sleep; overhead per task = (wall - ideal) / tasks; efficiency = ideal / wall. A sweep
of concurrency (1, 2, 4, ... 64) on the local runner, with 20 tasks per slot so that every
point's ideal is the same 1 s, shows where this machine saturates.

    python bench/scale.py [--tasks 2000] [--parallel 16] [--no-ray] [--json]
"""

from __future__ import annotations

import asyncio
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import parser, report, stdout_to_stderr

from orchestrator_tui.core.models import IntentSpec, TaskSpec
from orchestrator_tui.core.plan import Plan
from orchestrator_tui.core.states import SessionState
from orchestrator_tui.engine.loop import use_pidfd_child_watcher
from orchestrator_tui.engine.runners.ray_runner import RayRunner
from orchestrator_tui.engine.session import Engine, SessionRequest

SLEEP = 0.05
SWEEP = (1, 2, 4, 8, 16, 32, 64)
PER_SLOT = 20


def wide_dag(count: int) -> IntentSpec:
    """One root, then `count - 1` tasks that depend on it only."""
    sleep = shutil.which("sleep") or "sleep"
    argv = (sleep, f"{SLEEP:g}")
    tasks = [TaskSpec(id="root", command=argv)]
    tasks += [TaskSpec(id=f"t{i}", command=argv, depends_on=("root",)) for i in range(count - 1)]
    return IntentSpec(name="scale", tasks=tuple(tasks))


def ideal_seconds(count: int, parallel: int) -> float:
    """The least wall time of the wide DAG at `parallel`: the root, then full rounds."""
    return SLEEP * (1 + math.ceil((count - 1) / parallel))


async def run_once(count: int, parallel: int, folder: Path, ray: RayRunner | None) -> float:
    """Wall seconds of one session of the wide DAG (every task must succeed)."""
    db = folder / f"scale-{time.monotonic_ns()}.db"
    async with await Engine.open(db) as engine:
        execution = await engine.start(SessionRequest(
            plan=Plan(wide_dag(count)), workspace=folder, workflow="bench",
            parallel_limit=parallel, ray=ray))
        began = time.perf_counter()
        final = await engine.run(execution)
        seconds = time.perf_counter() - began
    if final != SessionState.COMPLETED:
        raise SystemExit(f"benchmark session ended {final}")
    return seconds


def figures_of(wall: float, count: int, parallel: int) -> dict[str, float]:
    ideal = ideal_seconds(count, parallel)
    return {"wall_s": round(wall, 3), "ideal_s": round(ideal, 3),
            "overhead_ms": round(1000 * (wall - ideal) / count, 3),
            "efficiency": round(ideal / wall, 3),
            "tasks_per_s": round(count / wall, 1)}


def main() -> None:
    args = parser(__doc__.splitlines()[0])
    args.add_argument("--tasks", type=int, default=2000, help="tasks of the wide DAG")
    args.add_argument("--parallel", type=int, default=16, help="concurrency of both runs")
    args.add_argument("--no-ray", action="store_true", help="only the local runner")
    args.set_defaults(runs=1)
    opts = args.parse_args()
    use_pidfd_child_watcher()
    with stdout_to_stderr(opts.json), \
            tempfile.TemporaryDirectory(prefix="orchestrator-bench-") as tmp:
        folder = Path(tmp).resolve()
        os.chdir(folder)  # as a user runs `orchestrator run` inside the workspace
        local = min(asyncio.run(run_once(opts.tasks, opts.parallel, folder, None))
                    for _ in range(opts.runs))
        sweep = []
        for parallel in SWEEP:
            count = PER_SLOT * parallel + 1
            wall = asyncio.run(run_once(count, parallel, folder, None))
            sweep.append({"parallel": parallel, "tasks": count,
                          **figures_of(wall, count, parallel)})
        ray_wall = None if opts.no_ray else run_ray(opts.tasks, opts.parallel, opts.runs,
                                                    folder)
    loc = figures_of(local, opts.tasks, opts.parallel)
    figures: dict[str, Any] = {
        "tasks": opts.tasks, "parallel": opts.parallel, "sleep_s": SLEEP,
        "cpus": os.cpu_count(), "local_wall_s": loc["wall_s"], "ideal_s": loc["ideal_s"],
        "local_overhead_ms": loc["overhead_ms"], "local_efficiency": loc["efficiency"],
        "ray_overhead_ms": None, "ray_efficiency": None, "ray_wall_s": None, "sweep": sweep}
    rows = [("ideal wall time", f"{loc['ideal_s']:.2f} s",
             f"{opts.tasks:,} x sleep {SLEEP:g} s at {opts.parallel} at once"),
            ("local: wall time", f"{loc['wall_s']:.2f} s", f"{loc['tasks_per_s']:,.0f} tasks/s"),
            ("local: overhead per task", f"{loc['overhead_ms']:.2f} ms", "(wall - ideal) / tasks"),
            ("local: efficiency", f"{loc['efficiency']:.0%}", "ideal / wall; target >= 90%")]
    if ray_wall is not None:
        ray = figures_of(ray_wall, opts.tasks, opts.parallel)
        figures.update(ray_wall_s=ray["wall_s"], ray_overhead_ms=ray["overhead_ms"],
                       ray_efficiency=ray["efficiency"])
        rows += [("ray: wall time", f"{ray['wall_s']:.2f} s",
                  f"ray.init(num_cpus={opts.parallel}); {ray['tasks_per_s']:,.0f} tasks/s"),
                 ("ray: overhead per task", f"{ray['overhead_ms']:.2f} ms", ""),
                 ("ray: efficiency", f"{ray['efficiency']:.0%}", "")]
    for point in sweep:
        rows.append((f"sweep: {point['parallel']} at once", f"{point['efficiency']:.0%}",
                     f"{point['tasks']:,} tasks, ideal {point['ideal_s']:.2f} s, wall "
                     f"{point['wall_s']:.2f} s, {point['overhead_ms']:.2f} ms/task"))
    report(f"scale: wide DAG of {opts.tasks:,} sleep tasks (best of {opts.runs})", rows,
           figures, opts.json)


def run_ray(count: int, parallel: int, runs: int, folder: Path) -> float:
    """The best wall time on a local Ray cluster of `parallel` CPUs (warmed up first)."""
    import ray

    ray.init(num_cpus=parallel, include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    try:
        runner = RayRunner()
        asyncio.run(run_once(4 * parallel, parallel, folder, runner))  # workers start here
        return min(asyncio.run(run_once(count, parallel, folder, runner)) for _ in range(runs))
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
