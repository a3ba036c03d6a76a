"""Carrying on a session whose engine is gone (quit, killed, rebooted).

Recovery settles what the old engine left: agent processes that outlived it are found by pid
and process start time and stopped; its open attempts are closed as lost; tasks it was
running go back to `ready` when they are idempotent and to `interrupted` otherwise, to wait
for the user's decision. The session passes through RECOVERING and is then run by this
engine. A task recorded as succeeded is never run again. The settling is one transaction
that first checks the session still belongs to the dead engine, so two processes can't both
take it over.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiosqlite
import psutil

from orchestrator_tui.core.errors import OrchestratorError
from orchestrator_tui.core.plan import Plan
from orchestrator_tui.core.states import (
    ACTIVE_SESSION_STATES,
    SessionState,
    TaskState,
    check_session,
    check_task,
)
from orchestrator_tui.engine.control import session_engine_alive
from orchestrator_tui.engine.processes import signal_group
from orchestrator_tui.store import queries, records
from orchestrator_tui.store.queries import SessionRow

S, T = SessionState, TaskState
LEFTOVER_WAIT = 3.0
"""Seconds to wait for leftover agent processes to disappear after SIGKILL."""


class SessionTaken(OrchestratorError):
    """Another engine took the session over while this one was recovering it."""


@dataclass
class Settled:
    """What recovery found and did, for the message log and the CLI."""

    session: SessionRow
    plan: Plan
    states: dict[str, TaskState]
    attempts: dict[str, int]
    stopped: int = 0
    lost: list[str] = field(default_factory=list)
    """Tasks whose running attempt was lost with the old engine."""
    rerun: list[str] = field(default_factory=list)
    interrupted: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for people."""
        parts = [f"recovered session {self.session.id} (was {self.session.state})"]
        if self.stopped:
            parts.append(f"{self.stopped} leftover agent process(es) stopped")
        if self.rerun:
            parts.append(f"re-running {len(self.rerun)} idempotent task(s)")
        if self.interrupted:
            parts.append(f"{len(self.interrupted)} task(s) interrupted, waiting for a "
                         f"decision: {', '.join(self.interrupted[:5])}")
        done = sum(1 for state in self.states.values() if state == T.SUCCEEDED)
        parts.append(f"{done} of {len(self.states)} already succeeded")
        return "; ".join(parts)


async def find_orphan(conn: aiosqlite.Connection, session_id: str | None,
                      workspace: Path | None = None) -> SessionRow:
    """The session to recover: the one named, else the latest active one (of `workspace`).

    Raises:
        OrchestratorError: no such session, it is finished, or its engine is alive.
    """
    session = await queries.find_session(conn, session_id, active_only=session_id is None)
    if session.state not in ACTIVE_SESSION_STATES:
        raise OrchestratorError(f"session {session.id} is {session.state}; there is nothing "
                                "to carry on")
    if await session_engine_alive(conn, session):
        raise OrchestratorError(f"session {session.id} is still run by a live engine")
    if workspace is not None and Path(session.workspace) != workspace:
        raise OrchestratorError(f"session {session.id} works in {session.workspace}, not in "
                                f"{workspace}; pass --workspace {session.workspace}")
    return session


async def leftover_pids(conn: aiosqlite.Connection,
                        session_id: str) -> list[tuple[int, float | None]]:
    """Pids and start times of the session's attempts that never ended."""
    async with conn.execute("SELECT pid, process_start FROM attempts WHERE session_id = ? AND "
                            "finished_at IS NULL AND pid IS NOT NULL", (session_id,)) as cursor:
        return [(int(pid), started) for pid, started in await cursor.fetchall()]


def stop_leftovers(session_id: str, pids: list[tuple[int, float | None]]) -> int:
    """SIGKILL the agent processes of `session_id` that outlived their engine, and wait
    until they are gone.

    They are found two ways: by the pid and start time their attempts recorded, and by the
    `ORCHESTRATOR_SESSION` variable every agent process (and its children) inherits, which
    also finds a process whose pid the dead engine had no time to record.
    """
    found: dict[int, psutil.Process] = {}
    for pid, started in pids:
        try:
            proc = psutil.Process(pid)
            if started is None or abs(proc.create_time() - started) < 1.0:
                found[pid] = proc
        except psutil.Error:
            continue
    me = os.getpid()
    for proc in psutil.process_iter():
        try:
            if proc.pid != me and proc.environ().get("ORCHESTRATOR_SESSION") == session_id:
                found[proc.pid] = proc
        except psutil.Error:
            continue
    for pid in found:
        if not signal_group(pid, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    wait_gone(list(found.values()), LEFTOVER_WAIT)
    return len(found)


def wait_gone(procs: list[psutil.Process], timeout: float) -> None:
    """Wait until every process has ended. A zombie counts as ended: it runs no more, and
    an orphan's zombie waits on whichever process reaps orphans, which may be slow."""
    deadline = time.monotonic() + timeout
    while procs and time.monotonic() < deadline:
        procs = [proc for proc in procs if not _ended(proc)]
        if procs:
            time.sleep(0.01)


def _ended(proc: psutil.Process) -> bool:
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:
        return False


def settle(conn: sqlite3.Connection, session: SessionRow, boot_id: str, *,
           keep_paused: bool) -> Settled:
    """In the writer's transaction: take the session over for `boot_id` and settle what the
    old engine left. Runs in the writer's thread (`Writer.call`)."""
    row = conn.execute("SELECT state, boot_id FROM sessions WHERE id = ?",
                       (session.id,)).fetchone()
    if row is None or (row[0], row[1]) != (session.state, session.boot_id):
        raise SessionTaken(f"session {session.id} changed while it was being recovered "
                           "(another process may have taken it over); try again")
    now = time.time()
    plan = Plan.from_dict(json.loads(session.plan))
    settled = Settled(session, plan, {}, {})
    old = SessionState(session.state)
    if old != S.PLANNING:
        check_session(session.id, old, S.RECOVERING)
        _transition(conn, session.id, None, old, S.RECOVERING,
                    f"engine {str(session.boot_id)[:8]} is gone; recovering", now)
    conn.execute("UPDATE sessions SET state = ?, boot_id = ?, updated_at = ? WHERE id = ?",
                 (S.RECOVERING if old != S.PLANNING else S.PLANNING, boot_id, now, session.id))
    open_attempts = {task_id for (task_id,) in conn.execute(
        "SELECT task_id FROM attempts WHERE session_id = ? AND finished_at IS NULL",
        (session.id,))}
    conn.execute("UPDATE attempts SET finished_at = ?, outcome = 'lost' WHERE session_id = ? "
                 "AND finished_at IS NULL", (now, session.id))
    # Requests the dead engine never answered are stale, except the user's decisions on
    # interrupted tasks, which the new engine applies.
    conn.execute("UPDATE control SET handled_at = ?, outcome = 'dropped: its engine had "
                 "stopped' WHERE session_id = ? AND handled_at IS NULL AND action NOT IN "
                 "('retry', 'skip')", (now, session.id))
    settled.lost = sorted(open_attempts)
    # Attempt numbers go on from the highest recorded anywhere, so a new attempt never
    # takes the number (and the row) of one the old engine started.
    numbered = dict(conn.execute("SELECT task_id, max(attempt) FROM attempts WHERE "
                                 "session_id = ? GROUP BY task_id", (session.id,)).fetchall())
    for task_id, state, attempts, idempotent in conn.execute(
            "SELECT id, state, attempts, idempotent FROM tasks WHERE session_id = ?",
            (session.id,)).fetchall():
        current = TaskState(state)
        settled.attempts[task_id] = max(attempts, numbered.get(task_id) or 0)
        target = _after_crash(current, bool(idempotent))
        if target is not None:
            check_task(task_id, current, target)
            reason = ("re-run after the engine stopped (idempotent)" if target == T.READY
                      else "the engine stopped while it ran; not idempotent, so it waits for "
                           "your decision: retry, skip or abort")
            conn.execute(records.SET_TASK_STATE, (target, now, session.id, task_id))
            _transition(conn, session.id, task_id, current, target, reason, now)
            (settled.rerun if target == T.READY else settled.interrupted).append(task_id)
            current = target
        settled.states[task_id] = current
    if keep_paused and old == S.PAUSED:
        _transition(conn, session.id, None, S.RECOVERING, S.PAUSED,
                    "recovered; still paused as it was", now)
        conn.execute("UPDATE sessions SET state = ? WHERE id = ?", (S.PAUSED, session.id))
    return settled


def _after_crash(state: TaskState, idempotent: bool) -> TaskState | None:
    """Where a task goes when its engine is gone (None: it stays)."""
    if state in (T.RUNNING, T.PAUSED):
        return T.READY if idempotent else T.INTERRUPTED
    if state == T.RETRYING:
        return T.READY
    return None


def _transition(conn: sqlite3.Connection, session_id: str, task_id: str | None, old: str,
                new: str, reason: str, now: float) -> None:
    conn.execute(records.INSERT_TRANSITION, (session_id, task_id, old, new, reason, now))
