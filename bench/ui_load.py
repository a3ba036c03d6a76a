"""The app under load, in a real terminal: a 1,000-task run with 16 agents at once, watched on
the dashboard.

Each measurement runs in a child process whose stdin, stdout and stderr are a pseudo-terminal
of 120x40 (this process reads and discards what the app draws), so the app writes real escape
sequences, as it would in a terminal:

- first frame: seconds from starting `python -m orchestrator_tui.ui` to the menu on the pty;
- idle CPU: CPU seconds per wall second of the app on the menu and on the dashboard with
  nothing running (the worse of the two is reported);
- load: the same 1,000-task plan (10 levels of 100; each task depends on 3 of the level
  before and is a python task sleeping 0.1 s) runs once through the engine alone and once
  through the app showing the dashboard, in the same child; the UI's CPU per wall second is
  (CPU with the app - CPU of the engine alone) / wall time with the app;
- lag: for every snapshot the dashboard shows, milliseconds from the snapshot's `taken_at`
  to the end of the screen refresh that shows it.

    python bench/ui_load.py [--runs 3] [--json]
"""

from __future__ import annotations

import asyncio
import json
import os
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import median, parser, report

from orchestrator_tui.engine.events import Snapshot
from orchestrator_tui.engine.runners.python import TaskContext

ROWS, COLUMNS = 40, 120
LAYERS, WIDTH, NAP = 10, 100, 0.1
PARALLEL = 16
IDLE_SECONDS = 4.0
TARGETS = {"cpu_per_wall_s": 0.25, "lag_ms": 250.0, "idle_cpu_per_wall_s": 0.02,
           "first_frame_s": 1.0}


async def nap(context: TaskContext) -> None:
    """A task that waits a little: an agent that costs the engine nothing but time."""
    await asyncio.sleep(float(context.args.get("seconds", NAP)))


def write_workflow(folder: Path) -> Path:
    """The benchmark plan as a workflow file with one intent, `bench`."""
    lines = ["version: 1", "intents:", "  bench:", "    description: 1,000 python tasks",
             "    tasks:"]
    for layer in range(LAYERS):
        for index in range(WIDTH):
            deps = [f"t{layer - 1}-{(index * 7 + k * 13) % WIDTH}" for k in range(3)] \
                if layer else []
            lines.append(f"      - {{id: t{layer}-{index}, python: 'ui_load:nap', "
                         f"args: {{seconds: {NAP}}}, depends_on: [{', '.join(deps)}]}}")
    path = folder / "bench.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


# ----- the child: runs inside the pseudo-terminal ----------------------------------------


async def engine_alone(workflow: Path, folder: Path) -> tuple[float, float]:
    """CPU and wall seconds of the plan through the engine, without any UI."""
    from orchestrator_tui.engine.session import Engine, SessionRequest
    from orchestrator_tui.engine.workflows import load_plan

    plan, registry, source = load_plan("bench", str(workflow), folder, [])
    async with await Engine.open(folder / "alone.db") as engine:
        execution = await engine.start(SessionRequest(plan=plan, workspace=folder,
                                                      workflow=source, parallel_limit=PARALLEL,
                                                      registry=registry))
        cpu, wall = time.process_time(), time.perf_counter()
        await engine.run(execution)
        return time.process_time() - cpu, time.perf_counter() - wall


def child(workflow: Path, folder: Path, out: Path) -> None:
    """Measure the engine alone, then idle and load figures of the app in this terminal."""
    from orchestrator_tui.commands import CommandContext, execute, parse_slash
    from orchestrator_tui.ui.app import OrchestratorApp
    from orchestrator_tui.ui.messages import RunFinished, StartIntent

    alone_cpu, alone_wall = asyncio.run(engine_alone(workflow, folder))
    db = folder / "app.db"
    asyncio.run(execute(parse_slash(f"parallel set-limit {PARALLEL}"),
                        CommandContext(db_path=db, workspace=folder)))
    figures: dict[str, Any] = {"alone_cpu": alone_cpu, "alone_wall": alone_wall}

    class BenchApp(OrchestratorApp):
        lags: list[float] = []
        measuring = False
        finished = asyncio.Event()

        def show_snapshot(self, snap: Snapshot) -> None:
            super().show_snapshot(snap)
            if self.measuring:
                self.call_after_refresh(self._shown, snap.taken_at)

        def on_run_finished(self, event: RunFinished) -> None:
            super().on_run_finished(event)
            self.finished.set()

        def _shown(self, taken_at: float) -> None:
            self.lags.append((time.time() - taken_at) * 1000)

        def on_mount(self) -> None:
            super().on_mount()
            self.run_worker(self._drive(), group="bench", exit_on_error=True)

        async def _idle(self) -> float:
            await asyncio.sleep(1.0)  # let the screen settle first
            cpu, wall = time.process_time(), time.perf_counter()
            await asyncio.sleep(IDLE_SECONDS)
            return (time.process_time() - cpu) / (time.perf_counter() - wall)

        async def _drive(self) -> None:
            figures["idle_menu"] = await self._idle()
            self.action_go("dashboard")
            figures["idle_dashboard"] = await self._idle()
            self.measuring = True
            cpu, wall = time.process_time(), time.perf_counter()
            self.post_message(StartIntent("bench"))
            await self.finished.wait()
            figures["app_cpu"] = time.process_time() - cpu
            figures["app_wall"] = time.perf_counter() - wall
            self.measuring = False
            execution = self.host.execution
            figures["final"] = str(execution.session_state) if execution else "not started"
            figures["lags"] = list(self.lags)
            self.exit()

    BenchApp(folder, db, str(workflow)).run()
    out.write_text(json.dumps(figures))


# ----- the parent: owns the pseudo-terminal ----------------------------------------------


def spawn_in_pty(argv: list[str], cwd: Path) -> tuple[subprocess.Popen[bytes], int]:
    """Start `argv` with a 120x40 pseudo-terminal as its stdin, stdout and stderr."""
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": str(COLUMNS),
           "LINES": str(ROWS), "PYTHONPATH": str(Path(__file__).resolve().parent)}
    env.pop("ORCHESTRATOR_DB", None)
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, cwd=cwd, env=env,
                            start_new_session=True)
    os.close(slave)
    return proc, master


def drain(proc: subprocess.Popen[bytes], master: int, until: bytes | None = None,
          timeout: float = 300.0) -> float | None:
    """Read the terminal until `until` appears (return when, in seconds since now) or the
    process ends (return None)."""
    began, seen = time.perf_counter(), b""
    while time.perf_counter() - began < timeout:
        ready, _, _ = select.select([master], [], [], 0.05)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the terminal closed: the process has ended
                chunk = b""
            if not chunk:
                if proc.poll() is not None:
                    return None
                continue
            if until is not None:
                seen += chunk
                if until in seen:
                    return time.perf_counter() - began
                seen = seen[-len(until):]
        if proc.poll() is not None and not ready:
            return None
    raise SystemExit("the app did not finish in time")


def first_frame(folder: Path) -> float:
    """Seconds from launching the app to its menu on the terminal."""
    began = time.perf_counter()
    proc, master = spawn_in_pty([sys.executable, "-m", "orchestrator_tui.ui", "--workspace",
                                 str(folder), "--db", str(folder / "first.db")], folder)
    try:
        seen = drain(proc, master, b"STANDARD OPERATIONS", timeout=30)
        if seen is None:
            raise SystemExit("the app ended before showing its menu")
        took = time.perf_counter() - began
        os.write(master, b"q")
        drain(proc, master, timeout=30)
        return took
    finally:
        proc.wait(timeout=30)
        os.close(master)


def load(folder: Path) -> dict[str, Any]:
    """One child run: engine alone, idle app, app under load."""
    workflow = write_workflow(folder)
    out = folder / "figures.json"
    proc, master = spawn_in_pty([sys.executable, __file__, "--child", str(workflow),
                                 str(folder), str(out)], folder)
    try:
        drain(proc, master)
    finally:
        proc.wait(timeout=60)
        os.close(master)
    if proc.returncode or not out.exists():
        raise SystemExit(f"the measuring child failed (exit {proc.returncode})")
    return dict(json.loads(out.read_text()))


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    frames, cpu, idle, lags, alone, with_app = [], [], [], [], [], []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="ui-load-") as tmp:
            folder = Path(tmp)
            frames.append(first_frame(folder))
            got = load(folder)
        if got["final"] != "COMPLETED":
            raise SystemExit(f"run {run + 1} ended {got['final']}")
        alone.append(got["alone_cpu"] / got["alone_wall"])
        with_app.append(got["app_cpu"] / got["app_wall"])
        cpu.append((got["app_cpu"] - got["alone_cpu"]) / got["app_wall"])
        idle.append(max(got["idle_menu"], got["idle_dashboard"]))
        lags.extend(got["lags"])
    lags.sort()
    p95 = lags[int(len(lags) * 0.95) - 1] if lags else float("nan")
    figures = {"cpu_per_wall_s": round(median(cpu), 4), "lag_ms": round(median(lags), 1),
               "lag_p95_ms": round(p95, 1), "idle_cpu_per_wall_s": round(median(idle), 4),
               "first_frame_s": round(median(frames), 3),
               "process_cpu_per_wall_s": round(median(with_app), 4),
               "engine_alone_cpu_per_wall_s": round(median(alone), 4),
               "snapshots_shown": len(lags), "runs": args.runs}

    def verdict(key: str) -> str:
        return "meets" if figures[key] <= TARGETS[key] else "MISSES"

    rows = [
        ("UI CPU per wall second", f"{figures['cpu_per_wall_s']:.3f}",
         f"target <= 0.25 ({verdict('cpu_per_wall_s')}); process "
         f"{figures['process_cpu_per_wall_s']:.3f} - engine alone "
         f"{figures['engine_alone_cpu_per_wall_s']:.3f}"),
        ("screen lag, median", f"{figures['lag_ms']:.1f} ms",
         f"target <= 250 ms ({verdict('lag_ms')}); p95 {figures['lag_p95_ms']:.1f} ms over "
         f"{figures['snapshots_shown']} snapshots"),
        ("idle CPU per wall second", f"{figures['idle_cpu_per_wall_s']:.4f}",
         f"target <= 0.02 ({verdict('idle_cpu_per_wall_s')}); worse of menu and dashboard"),
        ("launch to first frame", f"{figures['first_frame_s']:.3f} s",
         f"target < 1 s ({verdict('first_frame_s')}); python start included"),
    ]
    report(f"UI under load: {LAYERS * WIDTH} tasks, {PARALLEL} at once, {COLUMNS}x{ROWS} pty, "
           f"median of {args.runs} runs", rows, figures, args.json)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        child(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]))
    else:
        main()
