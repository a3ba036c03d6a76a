"""Read queries: sessions, tasks, history, control requests and settings, as plain rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiosqlite

from orchestrator_tui.core.errors import OrchestratorError
from orchestrator_tui.store.records import plan_hash


@dataclass(frozen=True, slots=True)
class SessionRow:
    """One session as stored."""

    id: str
    intent: str
    workflow: str
    workspace: str
    state: str
    plan: str
    parallel_limit: int
    max_concurrent: int | None
    boot_id: str | None
    created_at: float
    updated_at: float
    finished_at: float | None
    mode: str | None = None
    """`list` or `levels` (None in sessions recorded before it was kept: `list`)."""
    plan_hash: str | None = None
    """The hash of `plan` (None in sessions recorded before it was kept: see `plan_key`)."""

    @property
    def plan_key(self) -> str:
        """The plan's hash, stored or (for older sessions) computed: the same for every
        session of the same tasks."""
        return self.plan_hash or plan_hash(self.plan)


@dataclass(frozen=True, slots=True)
class TaskRow:
    """One task of a session as stored."""

    session_id: str
    id: str
    kind: str
    agent: str | None
    state: str
    attempts: int
    idempotent: bool
    exit_code: int | None
    result: str | None
    error: str | None
    started_at: float | None
    finished_at: float | None
    updated_at: float


@dataclass(frozen=True, slots=True)
class AttemptRow:
    """One attempt of a task, as recorded."""

    attempt: int
    pid: int | None
    started_at: float
    finished_at: float | None
    outcome: str | None
    exit_code: int | None
    stdout: str | None
    stderr: str | None
    output_bytes: int | None
    runner: str | None = None
    """The agent CLI that ran it (claude, codex, gemini); None for commands."""
    agent_session: str | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    cost_usd: float | None = None
    turns: int | None = None
    timeout: float | None = None
    """The time limit it ran under, if any."""
    timeout_runs: int | None = None
    """How many recorded runs that limit was learned from (None: the workflow set it)."""
    input_bytes: int | None = None
    """The size of what it was given, where known (an agent's prompt)."""


@dataclass(frozen=True, slots=True)
class TransitionRow:
    """One recorded state change of a session (task_id None) or of one of its tasks."""

    id: int
    session_id: str
    task_id: str | None
    from_state: str | None
    to_state: str
    reason: str
    at: float


@dataclass(frozen=True, slots=True)
class ControlRow:
    """A request to an engine from another process: pause, resume, abort, set-limit."""

    id: int
    session_id: str
    action: str
    argument: str | None
    requested_at: float
    handled_at: float | None
    outcome: str | None


@dataclass(frozen=True, slots=True)
class EngineRow:
    """One engine start (boot): which process, since when, last heartbeat."""

    boot_id: str
    pid: int
    process_start: float
    started_at: float
    heartbeat_at: float
    stopped_at: float | None = None
    """Set when the engine closed cleanly; its sessions then have no live engine."""


SESSION_COLUMNS = ("id, intent, workflow, workspace, state, plan, parallel_limit, max_concurrent,"
                   " boot_id, created_at, updated_at, finished_at, mode, plan_hash")
TASK_COLUMNS = ("session_id, id, kind, agent, state, attempts, idempotent, exit_code, result,"
                " error, started_at, finished_at, updated_at")


async def _all(conn: aiosqlite.Connection, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
    async with conn.execute(sql, params) as cursor:
        return list(await cursor.fetchall())


async def find_session(conn: aiosqlite.Connection, session_id: str | None,
                       *, active_only: bool = False) -> SessionRow:
    """The session with this id (or unique id prefix), else the most recent one.

    Raises:
        OrchestratorError: no such session, or the prefix is ambiguous.
    """
    where = "WHERE state IN ('PLANNING', 'EXECUTING', 'PAUSED', 'RECOVERING')" \
        if active_only else ""
    if session_id is None:
        rows = await _all(conn, f"SELECT {SESSION_COLUMNS} FROM sessions {where} "
                                "ORDER BY created_at DESC, rowid DESC LIMIT 1")
        if not rows:
            kind = "active session" if active_only else "session"
            raise OrchestratorError(f"no {kind} in this database")
        return SessionRow(*rows[0])
    rows = await _all(conn, f"SELECT {SESSION_COLUMNS} FROM sessions WHERE id = ? OR id LIKE ?"
                            " ORDER BY id LIMIT 5", (session_id, f"{escape_like(session_id)}%"))
    exact = [row for row in rows if row[0] == session_id]
    if exact:
        return SessionRow(*exact[0])
    if len(rows) == 1:
        return SessionRow(*rows[0])
    if not rows:
        raise OrchestratorError(f"no session {session_id!r} in this database")
    raise OrchestratorError(f"session id {session_id!r} is ambiguous: "
                            + ", ".join(row[0] for row in rows))


def escape_like(text: str) -> str:
    """`text` as a literal LIKE prefix (SQLite's default LIKE has no escape, so filter)."""
    return "".join(ch for ch in text if ch not in "%_")


async def list_sessions(conn: aiosqlite.Connection, limit: int = 50) -> list[SessionRow]:
    """The most recent sessions, newest first."""
    rows = await _all(conn, f"SELECT {SESSION_COLUMNS} FROM sessions "
                            "ORDER BY created_at DESC, rowid DESC LIMIT ?", (limit,))
    return [SessionRow(*row) for row in rows]


async def session_tasks(conn: aiosqlite.Connection, session_id: str) -> list[TaskRow]:
    """Every task of a session."""
    rows = await _all(conn, f"SELECT {TASK_COLUMNS} FROM tasks WHERE session_id = ?",
                      (session_id,))
    return [TaskRow(row[0], row[1], row[2], row[3], row[4], row[5], bool(row[6]), row[7],
                    row[8], row[9], row[10], row[11], row[12]) for row in rows]


async def task_attempts(conn: aiosqlite.Connection, session_id: str,
                        task_id: str) -> list[AttemptRow]:
    """Every attempt of one task, first attempt first."""
    rows = await _all(conn, "SELECT attempt, pid, started_at, finished_at, outcome, exit_code,"
                            " stdout, stderr, output_bytes, runner, agent_session, tokens_in,"
                            " tokens_out, cost_usd, turns, timeout, timeout_runs, input_bytes"
                            " FROM attempts"
                            " WHERE session_id = ?"
                            " AND task_id = ? ORDER BY attempt", (session_id, task_id))
    return [AttemptRow(*row) for row in rows]


async def open_attempt_pids(conn: aiosqlite.Connection, session_id: str) -> dict[str, int]:
    """The pid of each attempt of the session that has not finished, by task id."""
    rows = await _all(conn, "SELECT task_id, pid FROM attempts WHERE session_id = ? AND "
                            "finished_at IS NULL AND pid IS NOT NULL", (session_id,))
    return {str(task_id): int(pid) for task_id, pid in rows}


async def task_counts(conn: aiosqlite.Connection, session_id: str) -> dict[str, int]:
    """How many tasks of a session are in each state."""
    rows = await _all(conn, "SELECT state, count(*) FROM tasks WHERE session_id = ? "
                            "GROUP BY state", (session_id,))
    return dict(rows)


async def history(conn: aiosqlite.Connection, session_id: str, *, tasks: bool = True,
                  limit: int | None = None) -> list[TransitionRow]:
    """The recorded state changes of a session, oldest first."""
    sql = "SELECT id, session_id, task_id, from_state, to_state, reason, at FROM transitions " \
          "WHERE session_id = ?" + ("" if tasks else " AND task_id IS NULL") + " ORDER BY id"
    rows = await _all(conn, sql, (session_id,))
    if limit is not None:
        rows = rows[-limit:]
    return [TransitionRow(*row) for row in rows]


OPEN_CONTROLS = ("SELECT id, session_id, action, argument, requested_at, handled_at, outcome"
                 " FROM control WHERE session_id = ? AND handled_at IS NULL ORDER BY id")
"""Requests for a session that no engine has handled yet, oldest first (the engine polls
this through `Writer.peek`)."""


async def control(conn: aiosqlite.Connection, control_id: int) -> ControlRow | None:
    """One control request by id."""
    rows = await _all(conn, "SELECT id, session_id, action, argument, requested_at, handled_at,"
                            " outcome FROM control WHERE id = ?", (control_id,))
    return ControlRow(*rows[0]) if rows else None


async def engine(conn: aiosqlite.Connection, boot_id: str) -> EngineRow | None:
    """The engine start recorded under `boot_id`."""
    rows = await _all(conn, "SELECT boot_id, pid, process_start, started_at, heartbeat_at, "
                            "stopped_at FROM engines WHERE boot_id = ?", (boot_id,))
    return EngineRow(*rows[0]) if rows else None


async def settings(conn: aiosqlite.Connection) -> dict[str, str]:
    """Every stored setting."""
    rows = await _all(conn, "SELECT key, value FROM settings", ())
    return {str(key): str(value) for key, value in rows}


async def setting(conn: aiosqlite.Connection, key: str) -> str | None:
    """A stored setting, or None."""
    rows = await _all(conn, "SELECT value FROM settings WHERE key = ?", (key,))
    return str(rows[0][0]) if rows else None


# ----- checkpoints -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CheckpointRow:
    """A checkpoint: a session's recorded state (JSON) and a snapshot of the workspace files.

    `kind` is "git" (snapshot = commit id) or "archive" (snapshot = the archive's path in the
    workspace); `undo_of` names the checkpoint whose restore this one was taken before.
    """

    id: str
    session_id: str | None
    name: str
    kind: str
    snapshot: str
    state: str
    reason: str
    undo_of: str | None
    size_bytes: int | None
    created_at: float


CHECKPOINT_COLUMNS = ("id, session_id, name, kind, snapshot, state, reason, undo_of, size_bytes,"
                      " created_at")


async def checkpoints(conn: aiosqlite.Connection,
                      session_id: str | None = None) -> list[CheckpointRow]:
    """The checkpoints of one session (or all of them), oldest first."""
    where, params = ("WHERE session_id = ?", (session_id,)) if session_id else ("", ())
    rows = await _all(conn, f"SELECT {CHECKPOINT_COLUMNS} FROM checkpoints {where} "
                            "ORDER BY created_at, rowid", params)
    return [CheckpointRow(*row) for row in rows]


async def find_checkpoint(conn: aiosqlite.Connection, checkpoint_id: str) -> CheckpointRow:
    """The checkpoint with this id or unique id prefix.

    Raises:
        OrchestratorError: no such checkpoint, or the prefix is ambiguous.
    """
    if not escape_like(checkpoint_id).strip():
        raise OrchestratorError("name a checkpoint by its id (or the start of it)")
    rows = await _all(conn, f"SELECT {CHECKPOINT_COLUMNS} FROM checkpoints WHERE id = ? OR "
                            "id LIKE ? ORDER BY id LIMIT 5",
                      (checkpoint_id, f"{escape_like(checkpoint_id)}%"))
    exact = [row for row in rows if row[0] == checkpoint_id]
    if exact or len(rows) == 1:
        return CheckpointRow(*(exact or rows)[0])
    if not rows:
        raise OrchestratorError(f"no checkpoint {checkpoint_id!r} in this database; "
                                "`checkpoint list` shows them")
    raise OrchestratorError(f"checkpoint id {checkpoint_id!r} is ambiguous: "
                            + ", ".join(row[0] for row in rows))


# ----- recovery ----------------------------------------------------------------------------


async def agent_success_rates(conn: aiosqlite.Connection) -> dict[str, tuple[int, int]]:
    """Per agent, over every session: (tasks it ran that succeeded, tasks it ran that ended
    succeeded or failed). The recovery policy ranks fallback agents by it."""
    rows = await _all(conn, "SELECT agent, sum(state = 'succeeded'), count(*) FROM tasks "
                            "WHERE agent IS NOT NULL AND state IN ('succeeded', 'failed') "
                            "GROUP BY agent")
    return {str(agent): (int(good), int(runs)) for agent, good, runs in rows}
