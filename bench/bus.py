"""Message bus throughput and latency on a real SQLite file.

In process: 20,000 messages sent in batches (`send_many`), received in batches of the same
size and acknowledged, through the async `Bus` (medians of `--runs`); then the latency of
one message sent, received and acknowledged alone (p50 and p99 of 500). Through the CLI: 8
processes each send `--cli-messages` messages with `orchestrator comm send` to the next one
and take theirs with `orchestrator comm receive --ack`; the rate counts messages delivered
and acknowledged per second of wall time.

    python bench/bus.py [--runs 5] [--batch 500] [--cli-messages 10] [--json]
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import median, parser, report

from orchestrator_tui.engine.bus import Bus
from orchestrator_tui.store.bus import Outgoing

MESSAGES = 20_000
LATENCY_SAMPLES = 500
CLI = [sys.executable, "-m", "orchestrator_tui"]


async def batched(db: Path, batch: int) -> float:
    """Messages per second sent, received and acknowledged in batches of `batch`."""
    async with await Bus.open(db) as bus:
        await bus.register("sink")
        payload = json.dumps({"task": "t", "detail": "x" * 64})
        began, done = time.perf_counter(), 0
        while done < MESSAGES:
            await bus.send_many([Outgoing("bench", "sink", "work", payload)] * batch)
            got = await bus.receive("sink", batch)
            done += len(await bus.ack("sink", [m.id for m in got]))
        return done / (time.perf_counter() - began)


async def latencies(db: Path) -> list[float]:
    """Milliseconds of each of 500 lone round trips: send, receive, acknowledge."""
    async with await Bus.open(db) as bus:
        await bus.register("solo")
        samples = []
        for n in range(LATENCY_SAMPLES):
            began = time.perf_counter()
            await bus.send(Outgoing("bench", "solo", "ping", json.dumps({"n": n})))
            [message] = await bus.receive("solo")
            await bus.ack("solo", [message.id])
            samples.append((time.perf_counter() - began) * 1000)
        return samples


AGENT = """
import json, os, subprocess, sys, time
me, peer, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
cli = [sys.executable, "-m", "orchestrator_tui"]
env = {**os.environ, "ORCHESTRATOR_AGENT": me}
for n in range(count):
    subprocess.run([*cli, "comm", "send", peer, "work", json.dumps({"n": n})], env=env,
                   check=True, capture_output=True)
got, deadline = 0, time.monotonic() + 300
while got < count and time.monotonic() < deadline:
    out = subprocess.run([*cli, "comm", "receive", "--max", "50", "--wait", "2", "--ack",
                          "--json"], env=env, check=True, capture_output=True, text=True)
    got += len(json.loads(out.stdout))
print(got)
"""


def through_cli(db: Path, per_agent: int) -> float:
    """Messages per second delivered and acknowledged among 8 CLI agent processes."""
    env = {**os.environ, "ORCHESTRATOR_DB": str(db)}
    names = [f"agent{i}" for i in range(8)]
    for name in names:
        subprocess.run([*CLI, "comm", "register", name], env=env, check=True,
                       capture_output=True)
    began = time.perf_counter()
    agents = [subprocess.Popen([sys.executable, "-c", AGENT, name, names[(i + 1) % 8],
                                str(per_agent)], env=env, stdout=subprocess.PIPE, text=True)
              for i, name in enumerate(names)]
    delivered = sum(int(proc.communicate()[0] or 0) for proc in agents)
    seconds = time.perf_counter() - began
    if delivered != 8 * per_agent:
        raise SystemExit(f"the CLI agents received {delivered} of {8 * per_agent} messages")
    return delivered / seconds


def main() -> None:
    """Run the measurements and print a table (or `--json`)."""
    args = parser(__doc__.splitlines()[0])
    args.add_argument("--batch", type=int, default=500, help="messages per batch (500)")
    args.add_argument("--cli-messages", type=int, default=10,
                      help="messages each of the 8 CLI agents sends (10)")
    opts = args.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-bus-") as folder:
        root = Path(folder)
        rates = [asyncio.run(batched(root / f"batched-{run}.db", opts.batch))
                 for run in range(opts.runs)]
        samples = sorted(asyncio.run(latencies(root / "latency.db")))
        cli_rate = through_cli(root / "cli.db", opts.cli_messages)
    p50 = statistics.median(samples)
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    figures = {"messages_per_s": round(median(rates)), "p50_ms": round(p50, 3),
               "p99_ms": round(p99, 3), "cli_messages_per_s": round(cli_rate, 1),
               "batch": opts.batch, "runs": opts.runs}
    rows = [("in-process send -> receive -> ack", f"{figures['messages_per_s']:,} msg/s",
             f"batches of {opts.batch}, median of {opts.runs} (target >= 20,000)"),
            ("lone round trip p50", f"{p50:.2f} ms", f"{LATENCY_SAMPLES} messages"),
            ("lone round trip p99", f"{p99:.2f} ms", ""),
            ("through the CLI, 8 processes", f"{cli_rate:.1f} msg/s",
             f"{8 * opts.cli_messages} messages, one `comm send` process each")]
    report("message bus", rows, figures, opts.json)


if __name__ == "__main__":
    main()
