"""Fixed data for snapshot tests: a database with recorded sessions at fixed times, and a fake
live run whose snapshots, journal and output never change."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

from orchestrator_tui.core.models import IntentSpec, TaskSpec
from orchestrator_tui.core.plan import Plan
from orchestrator_tui.core.states import SessionState
from orchestrator_tui.engine.events import Control, JournalEntry, Snapshot, TaskView
from orchestrator_tui.store.database import connect
from orchestrator_tui.store.queries import SESSION_COLUMNS

T0 = 1_767_348_000.0
"""2026-01-02 10:00:00 UTC: the start of the live session."""
NOW = T0 + 45.2
LIVE = "sess-0000cccc"


def build_plan() -> Plan:
    """The BUILD intent's shape: planning, then implementation, then validation."""
    planning = ("planning.architect", "planning.api-designer")
    building = ("implementation.builder-python", "implementation.builder-typescript")
    tasks = [TaskSpec(id=t, agent=t.split(".")[1], phase="planning") for t in planning]
    tasks += [TaskSpec(id=t, agent=t.split(".")[1], depends_on=planning) for t in building]
    tasks += [TaskSpec(id=f"validation.{a}", agent=a, depends_on=building)
              for a in ("validator-test-runner", "security-scout")]
    return Plan(IntentSpec(name="build", tasks=tuple(tasks), description="Feature construction"))


def analyze_plan() -> Plan:
    """Three agents side by side."""
    return Plan(IntentSpec(name="analyze", tasks=tuple(
        TaskSpec(id=a, agent=a) for a in ("security-scout", "code-reviewer",
                                          "perf-optimizer"))))


LIVE_STATES = {"planning.architect": "succeeded", "planning.api-designer": "succeeded",
               "implementation.builder-python": "running",
               "implementation.builder-typescript": "running",
               "validation.validator-test-runner": "pending",
               "validation.security-scout": "pending"}


def journal() -> list[JournalEntry]:
    """The live session's journal so far."""
    rows = [("session", None, "PLANNING", "EXECUTING", "plan ready", 0.0)]
    for n, task in enumerate(("planning.architect", "planning.api-designer")):
        rows += [("task", task, "pending", "ready", "dependencies met", 0.0),
                 ("task", task, "ready", "running", "attempt 1 started", 0.1 + n / 100),
                 ("task", task, "running", "succeeded", f"{4 + n} findings in 12 files",
                  18.0 + n)]
    for task, start in (("implementation.builder-python", 19.5),
                        ("implementation.builder-typescript", 20.0)):
        rows += [("task", task, "pending", "ready", "dependencies met", start - 0.5),
                 ("task", task, "ready", "running", "attempt 1 started", start)]
    rows.append(("note", "implementation.builder-typescript", None, None,
                 "implementation.builder-typescript retrying: exit code 1: npm not found", 30.0))
    rows.sort(key=lambda row: row[-1])
    return [JournalEntry(seq, T0 + at, kind, task, old, new, text)
            for seq, (kind, task, old, new, text, at) in enumerate(rows, start=1)]


class FakeExecution:
    """A live run frozen at NOW: it answers like an `Execution` and never changes."""

    def __init__(self) -> None:
        self.session_id = LIVE
        self.plan = build_plan()
        self.session_state = SessionState.EXECUTING
        self.requests: list[Control] = []
        self._journal = journal()

    def snapshot(self) -> Snapshot:
        running = (TaskView("implementation.builder-python", "builder-python", "running", 1,
                            T0 + 19.5, 4242),
                   TaskView("implementation.builder-typescript", "builder-typescript",
                            "running", 2, T0 + 31.0, 4243))
        return Snapshot(LIVE, "EXECUTING", 6, {"succeeded": 2, "running": 2, "pending": 2},
                        running, 4, T0, NOW, (), len(self._journal))

    def journal_since(self, seq: int) -> list[JournalEntry]:
        return [entry for entry in self._journal if entry.seq > seq]

    def output_tail(self, task_id: str) -> tuple[str, str] | None:
        return ("building wheel\nrunning tests: 41 passed\n", "warning: slow test\n")

    def request(self, control: Control) -> None:
        self.requests.append(control)


def _session_row(session_id: str, plan: Plan, state: str, start: float,
                 finished: float | None) -> tuple[object, ...]:
    return (session_id, plan.intent.name, "workflows/default.yaml", "repo", state,
            json.dumps(plan.to_dict()), 4, None, None, start, finished or start, finished)


def fill_database(path: Path) -> None:
    """Three recorded sessions (two finished, the live one) with tasks and transitions."""
    asyncio.run(_create(path))
    day = T0 - 86_400
    analyze, build = analyze_plan(), build_plan()
    with sqlite3.connect(path) as conn:
        conn.executemany(f"INSERT INTO sessions ({SESSION_COLUMNS}) VALUES "
                         "(?,?,?,?,?,?,?,?,?,?,?,?,'list',NULL)", [
            _session_row("sess-0000aaaa", analyze, "COMPLETED", day, day + 12.5),
            _session_row("sess-0000bbbb", build, "FAILED", day + 3600, day + 3671.0),
            _session_row(LIVE, build, "EXECUTING", T0, None)])
        tasks = [("sess-0000aaaa", t, t, t, "succeeded", 1, 1, 0, f"{n} findings", None,
                  day + 0.1, day + 10 + n, day + 10 + n)
                 for n, t in enumerate(analyze.tasks)]
        tasks += [("sess-0000bbbb", t, t.split(".")[1], t.split(".")[1],
                   "failed" if t.endswith("python") else "succeeded" if t.startswith("plan")
                   else "skipped" if t.startswith("valid") else "succeeded", 1, 1,
                   2 if t.endswith("python") else 0, "", "exit code 2: tests failed"
                   if t.endswith("python") else None, day + 3600, day + 3660, day + 3660)
                  for t in build.tasks]
        tasks += [(LIVE, t, t.split(".")[1], t.split(".")[1], state,
                   1 if state != "pending" else 0, 1, 0 if state == "succeeded" else None,
                   "4 findings" if state == "succeeded" else None, None,
                   T0 + 0.1 if state != "pending" else None,
                   T0 + 18 if state == "succeeded" else None, T0 + 18)
                  for t, state in LIVE_STATES.items()]
        conn.executemany("INSERT INTO tasks VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", tasks)
        conn.executemany(
            "INSERT INTO attempts (session_id, task_id, attempt, boot_id, pid, started_at, "
            "finished_at, outcome, exit_code) VALUES (?,?,?,?,?,?,?,?,?)",
            [(LIVE, "implementation.builder-python", 1, "boot", 4242, T0 + 19.5, None, None,
              None)])
        conn.executemany(
            "INSERT INTO transitions (session_id, task_id, from_state, to_state, reason, at) "
            "VALUES (?,?,?,?,?,?)",
            [("sess-0000aaaa", None, None, "IDLE", "session created", day),
             ("sess-0000aaaa", None, "IDLE", "PLANNING", "planning intent analyze", day),
             ("sess-0000aaaa", None, "PLANNING", "EXECUTING", "plan ready", day + 0.05),
             ("sess-0000aaaa", None, "EXECUTING", "COMPLETED", "all 3 tasks succeeded",
              day + 12.5)])


async def _create(path: Path) -> None:
    conn = await connect(path)
    await conn.close()
