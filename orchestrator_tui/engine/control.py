"""Controlling a session from another process (the CLI, another app) through the database."""

from __future__ import annotations

import asyncio
import signal
import time

import aiosqlite
import psutil

from orchestrator_tui.core.errors import OrchestratorError
from orchestrator_tui.core.states import (
    ACTIVE_SESSION_STATES,
    DONE_TASK_STATES,
    SessionState,
    TaskState,
    check_session,
)
from orchestrator_tui.engine.processes import signal_group
from orchestrator_tui.store import queries, records
from orchestrator_tui.store.queries import ControlRow, SessionRow

ACTIONS = ("pause", "resume", "abort", "set-limit", "retry", "skip")
DECISIONS = ("retry", "skip")
"""Decisions on an interrupted task; kept for the next engine when none runs the session."""


def engine_alive(row: queries.EngineRow | None) -> bool:
    """Whether the engine process of a boot is still running (same pid, same start time)."""
    if row is None or row.stopped_at is not None:
        return False
    try:
        proc = psutil.Process(row.pid)
        return abs(proc.create_time() - row.process_start) < 1.0 and \
            proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


async def session_engine_alive(conn: aiosqlite.Connection, session: SessionRow) -> bool:
    """Whether the engine that runs `session` is alive."""
    return session.boot_id is not None and engine_alive(await queries.engine(conn,
                                                                             session.boot_id))


async def send(conn: aiosqlite.Connection, session: SessionRow, action: str,
               argument: str | None = None, *, wait: float = 5.0) -> ControlRow:
    """Ask the engine running `session` to act, and wait until it has.

    Raises:
        OrchestratorError: unknown action, session not active, no live engine, or no answer.
    """
    if action not in ACTIONS:
        raise OrchestratorError(f"unknown action {action!r}; use one of {', '.join(ACTIONS)}")
    if session.state not in ACTIVE_SESSION_STATES:
        raise OrchestratorError(f"session {session.id} is {session.state}; nothing to {action}")
    if not await session_engine_alive(conn, session):
        raise OrchestratorError(
            f"no engine is running session {session.id} (state {session.state}); "
            "`orchestrator resume` carries it on, `orchestrator abort` ends it")
    control_id = await queue(conn, session, action, argument)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        row = await queries.control(conn, control_id)
        if row is not None and row.handled_at is not None:
            return row
        await asyncio.sleep(0.05)
    raise OrchestratorError(f"the engine of session {session.id} did not answer within "
                            f"{wait:g} s; the request stays queued (id {control_id})")


async def queue(conn: aiosqlite.Connection, session: SessionRow, action: str,
                argument: str | None = None) -> int:
    """Record a request for the engine of `session` (now or, for decisions, the next one)."""
    await conn.execute("BEGIN IMMEDIATE")
    try:
        cursor = await conn.execute(
            "INSERT INTO control (session_id, action, argument, requested_at) VALUES (?,?,?,?)",
            (session.id, action, argument, time.time()))
        control_id = cursor.lastrowid
        await conn.execute("COMMIT")
    except BaseException:
        await conn.execute("ROLLBACK")
        raise
    assert control_id is not None
    return control_id


async def abort_orphaned(conn: aiosqlite.Connection, session: SessionRow) -> str:
    """End a session whose engine is gone: stop its leftover processes, record ABORTED."""
    check_session(session.id, SessionState(session.state), SessionState.ABORTED)
    stopped = 0
    async with conn.execute(
        "SELECT task_id, pid, process_start FROM attempts WHERE session_id = ? AND "
        "finished_at IS NULL AND pid IS NOT NULL", (session.id,)) as cursor:
        leftovers = list(await cursor.fetchall())
    for _task_id, pid, started in leftovers:
        if _same_process(pid, started) and signal_group(pid, signal.SIGKILL):
            stopped += 1
    now = time.time()
    done = tuple(DONE_TASK_STATES)
    await conn.execute("BEGIN IMMEDIATE")
    try:
        async with conn.execute(
            f"SELECT id, state FROM tasks WHERE session_id = ? AND state NOT IN "
            f"({','.join('?' * len(done))})", (session.id, *done)) as cursor:
            open_tasks = list(await cursor.fetchall())
        for task_id, state in open_tasks:
            await conn.execute(records.SET_TASK_STATE, (TaskState.CANCELLED, now, session.id,
                                                        task_id))
            await conn.execute(records.INSERT_TRANSITION, (
                session.id, task_id, state, TaskState.CANCELLED, "session aborted", now))
        await conn.execute(records.SET_SESSION_STATE, (SessionState.ABORTED, now, True, now,
                                                       session.id))
        await conn.execute(records.INSERT_TRANSITION, (
            session.id, None, session.state, SessionState.ABORTED,
            "aborted by the user; its engine was not running", now))
        await conn.execute("COMMIT")
    except BaseException:
        await conn.execute("ROLLBACK")
        raise
    return f"aborted; {len(open_tasks)} task(s) cancelled, {stopped} leftover process(es) stopped"


def _same_process(pid: int, started: float | None) -> bool:
    try:
        proc = psutil.Process(pid)
        return started is None or abs(proc.create_time() - started) < 1.0
    except psutil.Error:
        return False
