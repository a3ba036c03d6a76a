"""Durable task throughput of the engine, against raw `asyncio.create_subprocess_exec`.

A 1,000-node layered DAG (10 layers of 100; each node depends on 3 random nodes of the layer
before) runs through the real engine on a real SQLite file, every transition committed:
once as no-op `python` tasks (the engine alone), once as `true` commands. The same number of
`true` processes is then spawned with bare asyncio at the same concurrency, the two taking
turns at going first. Medians of `--runs` runs (default 10), after one unmeasured run of each
kind (the first run of a process pays for imports and cold caches); `--json` prints the
figures.
The ratio of command to raw spawns is given two ways: the ratio of the two medians, and the
median of each run's own ratio (its two measurements taken back to back), which a machine
whose speed drifts during the benchmark disturbs less.
Run it from anywhere: it works inside its own temporary workspace, as `orchestrator run`
works inside the user's.

    python bench/throughput.py [--runs 10] [--parallel 16] [--json]
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import median, parser, report

from orchestrator_tui.core.models import IntentSpec, TaskSpec
from orchestrator_tui.core.plan import Plan
from orchestrator_tui.core.states import SessionState
from orchestrator_tui.engine.loop import use_pidfd_child_watcher
from orchestrator_tui.engine.session import Engine, SessionRequest

NOOP = "orchestrator_tui.engine.runners.python:noop"


def layered_dag(kind: str, layers: int = 10, width: int = 100, seed: int = 7) -> IntentSpec:
    """The benchmark DAG: `layers` x `width`, 3 random dependencies in the layer before."""
    rng = random.Random(seed)
    true = shutil.which("true") or "true"
    tasks = []
    for layer in range(layers):
        for index in range(width):
            deps = tuple(f"t{layer - 1}-{j}" for j in rng.sample(range(width), 3)) \
                if layer else ()
            if kind == "python":
                tasks.append(TaskSpec(id=f"t{layer}-{index}", python=NOOP, depends_on=deps))
            else:
                tasks.append(TaskSpec(id=f"t{layer}-{index}", command=(true,), depends_on=deps))
    return IntentSpec(name=f"bench-{kind}", tasks=tuple(tasks))


async def engine_run(kind: str, parallel: int, folder: Path) -> tuple[float, int]:
    """Seconds to run the DAG through the engine, and how many tasks succeeded."""
    db = folder / f"{kind}-{time.monotonic_ns()}.db"
    plan = Plan(layered_dag(kind))
    async with await Engine.open(db) as engine:
        execution = await engine.start(SessionRequest(plan=plan, workspace=folder,
                                                      workflow="bench", parallel_limit=parallel))
        began = time.perf_counter()
        final = await engine.run(execution)
        seconds = time.perf_counter() - began
    if final != SessionState.COMPLETED:
        raise SystemExit(f"benchmark session ended {final}")
    return seconds, execution.counts.get("succeeded", 0)


async def raw_spawn(count: int, parallel: int) -> float:
    """Seconds to run `count` `true` processes with bare asyncio, `parallel` at a time."""
    gate = asyncio.Semaphore(parallel)
    true = shutil.which("true") or "true"

    async def one() -> None:
        async with gate:
            proc = await asyncio.create_subprocess_exec(true)
            await proc.wait()

    began = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(count)))
    return time.perf_counter() - began


def main() -> None:
    args = parser(__doc__.splitlines()[0])
    args.add_argument("--parallel", type=int, default=16, help="concurrency of both sides")
    args.set_defaults(runs=10)
    opts = args.parse_args()
    use_pidfd_child_watcher()
    noop, command, raw = [], [], []
    with tempfile.TemporaryDirectory(prefix="orchestrator-bench-") as tmp:
        folder = Path(tmp).resolve()
        os.chdir(folder)  # as a user runs `orchestrator run` inside the workspace
        asyncio.run(raw_spawn(1000, opts.parallel))  # warm-ups, not measured
        for kind in ("command", "python"):
            asyncio.run(engine_run(kind, opts.parallel, folder))
        for run in range(opts.runs):
            # The two spawn measurements alternate which goes first (ABBA), so that neither
            # always follows the other: on a shared machine the order itself moves figures.
            for side in ("raw", "command") if run % 2 == 0 else ("command", "raw"):
                if side == "raw":
                    raw.append(1000 / asyncio.run(raw_spawn(1000, opts.parallel)))
                else:
                    seconds, done = asyncio.run(engine_run("command", opts.parallel, folder))
                    command.append(done / seconds)
        for _ in range(opts.runs):
            seconds, done = asyncio.run(engine_run("python", opts.parallel, folder))
            noop.append(done / seconds)
    paired = [c / r for c, r in zip(command, raw, strict=True)]
    figures = {
        "noop_tasks_per_s": round(median(noop), 1),
        "command_tasks_per_s": round(median(command), 1),
        "raw_spawn_per_s": round(median(raw), 1),
        "command_vs_raw_ratio": round(median(command) / median(raw), 3),
        "paired_ratio_median": round(median(paired), 3),
        "paired_ratio_range": [round(min(paired), 3), round(max(paired), 3)],
        "command_per_s_range": [round(min(command), 1), round(max(command), 1)],
        "raw_per_s_range": [round(min(raw), 1), round(max(raw), 1)],
        "parallel": opts.parallel, "runs": opts.runs, "tasks": 1000,
        "cpus": os.cpu_count(),
    }
    rows = [
        ("durable no-op python tasks/s", f"{figures['noop_tasks_per_s']:,.0f}",
         "target >= 3,000 (huey ~1,500, Luigi 480, DBOS 350, Prefect ~120)"),
        ("durable `true` command tasks/s", f"{figures['command_tasks_per_s']:,.0f}",
         "runs ranged {:,.0f} to {:,.0f}".format(*figures["command_per_s_range"])),
        ("raw asyncio spawn of `true`/s", f"{figures['raw_spawn_per_s']:,.0f}",
         "same concurrency ({}); runs ranged {:,.0f} to {:,.0f}".format(
             opts.parallel, *figures["raw_per_s_range"])),
        ("command / raw", f"{figures['command_vs_raw_ratio']:.0%}",
         "ratio of the medians; target >= 85%"),
        ("command / raw, run by run", f"{figures['paired_ratio_median']:.0%}",
         "median of each run's ratio; runs ranged {:.0%} to {:.0%}".format(
             *figures["paired_ratio_range"])),
    ]
    report(f"throughput: 1,000-node layered DAG, median of {opts.runs} runs", rows, figures,
           opts.json)


if __name__ == "__main__":
    main()
