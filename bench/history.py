"""A session's start as recorded history grows, and the memory of an engine kept open.

One engine, open the whole time as the app keeps it, runs session after session of a
1,000-task layered DAG of no-op `python` tasks (the DAG of `throughput.py`, every transition
durable) on one SQLite file. Once the history holds each of `--sizes` (thousands of ended
attempts), it times `Engine.start` over `--runs` sessions (median; each session then runs,
so the history grows by a little during the measurement). Every start fits the duration
predictor on the newest `NEWEST_ATTEMPTS` attempts. The process's resident memory is read
after each size. The peer, timed in the same run on a copy of the file as it was at that
size, is the predictor fitted on the whole history, as every start did before that bound:
the read of every ended attempt and the fit (timed once the engine is closed, so that the
engine's memory figures are its own).

    python bench/history.py [--sizes 10,20,40] [--runs 3] [--json]
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import median, parser, report
from throughput import layered_dag

from orchestrator_tui.core.plan import Plan
from orchestrator_tui.engine.learning import NEWEST_ATTEMPTS, fitted
from orchestrator_tui.engine.session import Engine, SessionRequest
from orchestrator_tui.store import learning as history
from orchestrator_tui.store.database import connect


async def run_session(engine: Engine, folder: Path) -> float:
    """Start one session and run it; return the seconds its start took."""
    plan = Plan(layered_dag("python"))
    began = time.perf_counter()
    execution = await engine.start(SessionRequest(plan=plan, workspace=folder,
                                                  workflow="bench", parallel_limit=16))
    took = time.perf_counter() - began
    await engine.run(execution)
    return took


async def whole_history_fit(db: Path) -> tuple[float, int]:
    """Seconds to read every ended attempt and fit the predictor on the successful ones,
    and how many attempts were read."""
    conn = await connect(db)
    try:
        began = time.perf_counter()
        rows = await history.attempt_samples(conn)
        await fitted(rows)
        return time.perf_counter() - began, len(rows)
    finally:
        await conn.close()


async def measure(sizes: list[int], runs: int, folder: Path) -> dict[str, list[float]]:
    """Per history size: the median start (ms) of the sessions run from that size on, the
    resident memory (MiB) after them, and, once the engine is closed (so that its memory
    figures are its own), the whole-history fit (ms) on a copy of the file as it was then,
    with how many attempts it read (the size, plus those sessions')."""
    figures: dict[str, list[float]] = {"attempts": [], "start_ms": [], "whole_history_ms": [],
                                       "rss_mib": []}
    process = psutil.Process()
    recorded = 0
    copies = []
    async with await Engine.open(folder / "history.db") as engine:
        for size in sizes:
            while recorded < size * 1000:
                await run_session(engine, folder)
                recorded += 1000
            starts = []
            for _ in range(runs):
                starts.append(await run_session(engine, folder))
                recorded += 1000
            figures["start_ms"].append(round(median(starts) * 1000, 1))
            figures["rss_mib"].append(round(process.memory_info().rss / 2**20, 1))
            copies.append(folder / f"history-{size}k.db")
            await engine.writer.copy_to(copies[-1])
    for copy in copies:
        whole, attempts = await whole_history_fit(copy)
        figures["attempts"].append(attempts)
        figures["whole_history_ms"].append(round(whole * 1000, 1))
    return figures


def main() -> None:
    args = parser(__doc__.splitlines()[0])
    args.add_argument("--sizes", default="10,20,40",
                      help="history sizes to measure at, in thousands of attempts")
    args.set_defaults(runs=3)
    opts = args.parse_args()
    sizes = sorted({int(size) for size in opts.sizes.split(",") if size.strip()})
    with tempfile.TemporaryDirectory(prefix="orchestrator-bench-") as tmp:
        folder = Path(tmp).resolve()
        os.chdir(folder)
        figures: dict[str, object] = dict(asyncio.run(measure(sizes, opts.runs, folder)))
    starts, wholes = figures["start_ms"], figures["whole_history_ms"]
    assert isinstance(starts, list) and isinstance(wholes, list)
    figures.update(newest_attempts=NEWEST_ATTEMPTS, runs=opts.runs,
                   start_growth=round(starts[-1] / starts[0], 2),
                   whole_history_growth=round(wholes[-1] / wholes[0], 2))
    attempts, memory = figures["attempts"], figures["rss_mib"]
    assert isinstance(attempts, list) and isinstance(memory, list)
    rows = [(f"start, history of {size:,}k attempts", f"{start:,.0f} ms",
             f"median of {opts.runs}; fitting all {n:,} took {whole:,.0f} ms "
             f"({whole / start:.1f}x); memory {rss:,.0f} MiB")
            for size, n, start, whole, rss in zip(sizes, attempts, starts, wholes, memory,
                                                  strict=True)]
    rows.append(("growth, smallest to largest", f"{figures['start_growth']}x",
                 f"whole-history fit {figures['whole_history_growth']}x"))
    report(f"history: session start as history grows (fit on the newest {NEWEST_ATTEMPTS:,})",
           rows, figures, opts.json)


if __name__ == "__main__":
    main()
