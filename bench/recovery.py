"""Crash recovery under fire: a session killed (SIGKILL) at random instants, resumed each time.

A workflow of `--tasks` tasks (chains of four; every twentieth task, a chain's end, is not
idempotent) whose command appends its `ORCHESTRATOR_ATTEMPT` to a ledger file runs with
`orchestrator run`; the engine is killed `--kills` times at a random instant after it has
dispatched again, and each time `orchestrator resume` carries the session on in a new
process, until it completes. Then the invariants are checked:

- every task is done exactly once in the database (one succeeded attempt; none lost);
- no task ran again after its success was committed (no ledger entry after it);
- every ledger entry has its attempt row (write-ahead);
- a task that is not idempotent never runs again without a decision, and at most once;
- no agent process of the session is left;
- the final task states are those of a run without crashes: every task succeeded, except
  the non-idempotent tasks the driver decided to skip.

The driver's decision on an interrupted (non-idempotent) task: `retry` when the ledger shows
no entry for it (its command never ran, so running it is its first run), else `skip` (it
ran once already; running it again would repeat its effect).

`restart_to_dispatch_s` is the median time from starting `orchestrator resume` to the first
attempt row of the new engine; it is measured again on a 10,000-task session killed mid-run
(the target there: under 1 s).

    python bench/recovery.py [--tasks 1000] [--kills 30] [--big 10000] [--json]
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import median, parser, report

CLI = [sys.executable, "-m", "orchestrator_tui"]
POLL = 0.02


def workflow_text(ledger: Path, tasks: int, seconds: float) -> str:
    """The workflow (JSON): chains of four ledger tasks; every twentieth task, the end of
    a chain, is not idempotent."""
    code = (f"import os, time; f = open({str(ledger)!r}, 'a'); "
            "f.write(os.environ['ORCHESTRATOR_ATTEMPT'] + '\\n'); f.close(); "
            f"time.sleep({seconds})")
    entries = []
    for i in range(tasks):
        task: dict[str, object] = {"id": f"t{i}", "command": ["{python}", "-S", "-c", code]}
        if i % 4:
            task["depends_on"] = [f"t{i - 1}"]
        if not_idempotent(i):
            task["idempotent"] = False
        entries.append(task)
    return json.dumps({"intents": {"ledger": {"tasks": entries}}})


def not_idempotent(index: int) -> bool:
    return index % 20 == 3


def rows(db: Path, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Read rows, waiting out a moment of lock contention."""
    for _ in range(100):
        try:
            with sqlite3.connect(db, timeout=5) as conn:
                return conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError:
            time.sleep(POLL)
    raise RuntimeError(f"cannot read {db}")


def session_processes(session_id: str) -> list[int]:
    """Living (not zombie) processes carrying the session in their environment."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get("ORCHESTRATOR_SESSION") == session_id \
                    and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc.pid)
        except psutil.Error:
            continue
    return found


@dataclass
class Crashes:
    """One session run to completion through kills and resumes."""

    folder: Path
    tasks: int
    kills: int
    parallel: int = 8
    seconds: float = 0.05
    delay: tuple[float, float] = (0.2, 1.0)
    """Range of seconds, after the engine dispatched again, before the next kill."""
    seed: int = 1
    ledger: Path = field(init=False)
    db: Path = field(init=False)
    restarts: list[float] = field(default_factory=list)
    decisions: dict[str, str] = field(default_factory=dict)
    snapshots: list[tuple[set[str], int]] = field(default_factory=list)
    """At each kill: the tasks committed as succeeded, and the ledger's length."""
    killed: int = 0

    def __post_init__(self) -> None:
        self.ledger = self.folder / "ledger.txt"
        self.db = self.folder / ".orchestrator" / "state.db"
        self._rng = random.Random(self.seed)
        self._decided: set[tuple[str, int]] = set()
        self._env = {k: v for k, v in os.environ.items()
                     if k not in ("ORCHESTRATOR_DB", "ORCHESTRATOR_CRASH_AT")}

    def run(self) -> None:
        """Run, kill and resume until the session is finished."""
        flow = self.folder / "ledger.json"
        flow.write_text(workflow_text(self.ledger, self.tasks, self.seconds))
        engine = self._start("run", "ledger", "--workflow", str(flow), "--parallel",
                             str(self.parallel))
        self._until_dispatch(engine, 0)
        while self.killed < self.kills and engine.poll() is None:
            self._wait(engine, self._rng.uniform(*self.delay))
            if engine.poll() is not None:
                break
            engine.send_signal(signal.SIGKILL)
            engine.wait(30)
            self.killed += 1
            self.snapshots.append((self.succeeded(), len(self.ledger_entries())))
            if self.session_state() not in ("PLANNING", "EXECUTING", "PAUSED", "RECOVERING"):
                return
            last = int(rows(self.db, "SELECT coalesce(max(id), 0) FROM attempts")[0][0])
            began = time.time()
            engine = self._start("resume")
            first = self._until_dispatch(engine, last)
            if first is not None:
                self.restarts.append(first - began)
        while engine.poll() is None:
            self._wait(engine, 0.2)
        if engine.returncode != 0:
            raise SystemExit(f"the last engine ended with exit code {engine.returncode}; "
                             f"see {self.folder / 'engine.log'}")

    def _start(self, *args: str) -> subprocess.Popen[bytes]:
        with (self.folder / "engine.log").open("ab") as log:
            return subprocess.Popen([*CLI, *args], cwd=self.folder, env=self._env,
                                    stdout=subprocess.DEVNULL, stderr=log)

    def _until_dispatch(self, engine: subprocess.Popen[bytes], last: int) -> float | None:
        """Wait for the engine's first attempt row after `last` and return its start time
        (None: the engine ended, or waits for decisions with nothing to start)."""
        while engine.poll() is None:
            found = rows(self.db, "SELECT min(started_at) FROM attempts WHERE id > ?",
                         (last,)) if self.db.exists() else [(None,)]
            if found[0][0] is not None:
                return float(found[0][0])  # type: ignore[arg-type]
            if self._decide() == 0 and self.session_state() == "PAUSED":
                return None
            time.sleep(POLL)
        return None

    def _wait(self, engine: subprocess.Popen[bytes], seconds: float) -> None:
        """Let the engine work for `seconds`, deciding on interrupted tasks meanwhile."""
        deadline = time.monotonic() + seconds
        while engine.poll() is None and time.monotonic() < deadline:
            self._decide()
            time.sleep(POLL)

    def _decide(self) -> int:
        """Decide on interrupted tasks not decided yet; return how many were."""
        made = 0
        ran = Counter(self.ledger_entries())
        for task, attempts in rows(self.db, "SELECT id, attempts FROM tasks WHERE state = "
                                            "'interrupted'"):
            key = (str(task), int(attempts))  # type: ignore[call-overload]
            if key in self._decided:
                continue
            action = "skip" if ran[key[0]] else "retry"
            out = subprocess.run([*CLI, "task", action, key[0]], cwd=self.folder,
                                 env=self._env, capture_output=True, text=True, timeout=60,
                                 check=False)
            if out.returncode == 0:
                self._decided.add(key)
                self.decisions[key[0]] = action
                made += 1
        return made

    def session_state(self) -> str:
        found = rows(self.db, "SELECT state FROM sessions")
        return str(found[0][0]) if found else ""

    def succeeded(self) -> set[str]:
        return {str(t) for (t,) in rows(self.db, "SELECT id FROM tasks WHERE state = "
                                                 "'succeeded'")}

    def ledger_entries(self) -> list[str]:
        """The task of each ledger line, in order."""
        if not self.ledger.exists():
            return []
        return [line.split("/")[1] for line in self.ledger.read_text().split()]

    def check(self) -> dict[str, object]:
        """Check the invariants (AssertionError names the first broken one) and return the
        figures."""
        db = self.db
        [(session_id, state)] = rows(db, "SELECT id, state FROM sessions")
        assert state == "COMPLETED", f"the session ended {state}"
        states = {str(t): str(s) for t, s in rows(db, "SELECT id, state FROM tasks")}
        expected = {f"t{i}": "skipped" if self.decisions.get(f"t{i}") == "skip"
                    else "succeeded" for i in range(self.tasks)}
        assert states == expected, "final states differ from a run without crashes: " + \
            ", ".join(f"{t} {s}" for t, s in sorted(states.items()) if expected.get(t) != s)
        won = dict(rows(db, "SELECT task_id, attempt FROM attempts WHERE outcome = "
                            "'succeeded'"))
        wins = Counter(str(t) for (t,) in rows(db, "SELECT task_id FROM attempts WHERE "
                                                   "outcome = 'succeeded'"))
        twice = sorted(t for t, n in wins.items() if n > 1)
        lost = sorted(t for t, s in states.items() if s == "succeeded" and wins[t] != 1)
        recorded = {(str(t), int(n)) for t, n in  # type: ignore[call-overload]
                    rows(db, "SELECT task_id, attempt FROM attempts")}
        entries = [line.split("/") for line in self.ledger.read_text().split()]
        ran = Counter(task for _, task, _ in entries)
        unrecorded = sorted({(t, int(n)) for _, t, n in entries} - recorded)
        assert not unrecorded, f"processes ran without their attempt row: {unrecorded[:5]}"
        reused = sorted(k for k, n in Counter((t, n) for _, t, n in entries).items() if n > 1)
        assert not reused, f"one attempt number ran twice: {reused[:5]}"
        after = sorted({t for _, t, n in entries if t in won and int(n) > int(won[t])})  # type: ignore[call-overload]
        for done, length in self.snapshots:
            after += sorted(set(self.ledger_entries()[length:]) & done)
        assert not after, f"ran again after their success was committed: {after[:5]}"
        strict = [f"t{i}" for i in range(self.tasks) if not_idempotent(i)]
        assert all(ran[t] <= 1 for t in strict), "a non-idempotent task ran twice"
        for task, old, new, reason in rows(
                db, "SELECT task_id, from_state, to_state, reason FROM transitions WHERE "
                    "to_state = 'ready' AND from_state IN ('running', 'paused', "
                    "'interrupted')"):
            if task in strict:
                assert old == "interrupted" and reason == "retry decided by the user", \
                    f"{task} went {old} -> {new} without a decision ({reason})"
        leftover = session_processes(str(session_id))
        assert not leftover, f"agent processes left behind: {leftover}"
        assert not twice and not lost, f"completed twice: {twice}; lost: {lost}"
        lost_attempts = rows(db, "SELECT count(*) FROM attempts WHERE outcome = 'lost'")[0][0]
        return {
            "tasks": self.tasks, "kills": self.killed, "lost": len(lost),
            "completed_twice": len(twice),
            "rerun_after_crash": sum(1 for t, n in ran.items() if n > 1),
            "lost_attempts": lost_attempts,
            "attempt_outcomes": {str(o): n for o, n in rows(
                db, "SELECT outcome, count(*) FROM attempts GROUP BY outcome")},
            "decisions": dict(Counter(self.decisions.values())),
            "leftover_processes": len(leftover),
            "restart_to_dispatch_s": round(median(self.restarts), 3) if self.restarts
            else None,
        }


def big_restart(folder: Path, tasks: int, runs: int, parallel: int) -> list[float]:
    """Seconds from `orchestrator resume` to the first new attempt of a `tasks`-task session
    killed mid-run, `runs` times (killed again after each measurement), then aborted."""
    soak = Crashes(folder, tasks, kills=0, parallel=parallel, seconds=0.2)
    flow = folder / "ledger.json"
    flow.write_text(workflow_text(soak.ledger, tasks, soak.seconds))
    engine = soak._start("run", "ledger", "--workflow", str(flow), "--parallel", str(parallel))
    seconds = []
    try:
        soak._until_dispatch(engine, 0)
        for _ in range(runs):
            soak._wait(engine, 1.0)
            engine.send_signal(signal.SIGKILL)
            engine.wait(30)
            last = int(rows(soak.db, "SELECT max(id) FROM attempts")[0][0])  # type: ignore[call-overload]
            began = time.time()
            engine = soak._start("resume")
            first = soak._until_dispatch(engine, last)
            if first is None:
                raise SystemExit("the resumed 10,000-task session never dispatched")
            seconds.append(first - began)
    finally:
        if engine.poll() is None:
            engine.send_signal(signal.SIGKILL)
            engine.wait(30)
        subprocess.run([*CLI, "abort"], cwd=folder, env=soak._env, capture_output=True,
                       timeout=120, check=False)
    return seconds


def main() -> None:
    args = parser(__doc__.splitlines()[0])
    args.add_argument("--tasks", type=int, default=1000, help="tasks of the killed session")
    args.add_argument("--kills", type=int, default=30, help="SIGKILLs at random instants")
    args.add_argument("--parallel", type=int, default=8, help="agents at once")
    args.add_argument("--big", type=int, default=10_000,
                      help="tasks of the session whose restart is timed alone (0: skip)")
    args.add_argument("--seed", type=int, default=1, help="seed of the random instants")
    args.set_defaults(runs=5)
    opts = args.parse_args()
    with tempfile.TemporaryDirectory(prefix="orchestrator-bench-") as tmp:
        folder = Path(tmp).resolve() / "soak"
        folder.mkdir()
        began = time.perf_counter()
        soak = Crashes(folder, opts.tasks, opts.kills, parallel=opts.parallel, seconds=0.1,
                       delay=(0.1, 0.6), seed=opts.seed)
        soak.run()
        figures = soak.check()
        figures["soak_s"] = round(time.perf_counter() - began, 1)
        big: list[float] = []
        if opts.big:
            folder = Path(tmp).resolve() / "big"
            folder.mkdir()
            big = big_restart(folder, opts.big, opts.runs, opts.parallel)
    figures["big_tasks"] = opts.big
    figures["big_restart_to_dispatch_s"] = round(median(big), 3) if big else None
    figures["parallel"] = opts.parallel
    figures["cpus"] = os.cpu_count()
    restart = figures["restart_to_dispatch_s"]
    rows_ = [
        ("kills survived", str(figures["kills"]), f"{opts.tasks:,} tasks, {opts.parallel} at "
                                                  f"once, took {figures['soak_s']} s"),
        ("tasks lost", str(figures["lost"]), "must be 0"),
        ("tasks completed twice", str(figures["completed_twice"]), "must be 0"),
        ("idempotent tasks run again", str(figures["rerun_after_crash"]),
         "their attempt was lost with the engine; allowed for idempotent tasks"),
        ("decisions on non-idempotent tasks", json.dumps(figures["decisions"]),
         "retry when the ledger shows no run, else skip"),
        ("leftover agent processes", str(figures["leftover_processes"]), "must be 0"),
        ("restart to dispatch (median)", f"{restart} s" if restart is not None else "-",
         f"over {len(soak.restarts)} restarts"),
        (f"restart to dispatch, {opts.big:,} tasks",
         f"{figures['big_restart_to_dispatch_s']} s" if big else "-",
         f"median of {len(big)}; target < 1 s"),
    ]
    report("recovery: kill -9 at random instants, then resume", rows_, figures, opts.json)


if __name__ == "__main__":
    main()
