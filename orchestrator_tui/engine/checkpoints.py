"""Checkpoints: a session's recorded state plus a snapshot of its workspace's files, and
restoring both.

A restore first takes a checkpoint of what is there now (its undo point, `undo_of` naming the
checkpoint being restored), so a restore can itself be undone and nothing of the user's is
lost. Restoring a session's state: tasks that had succeeded at checkpoint time are
`succeeded` (with their recorded result), every other task goes back to `pending`, and the
session goes through RECOVERING to PAUSED, ready to be resumed; each change is checked by the
state machines and recorded in `transitions`. A task keeps its attempt count, so new attempts
never reuse the number of a recorded one.

Rollback rule: among the session's tasks that are `failed` now, take the one that started
first (the start of its last attempt); the rollback target is the latest checkpoint of the
session whose reason starts with "phase" and that was taken at or before that start, that is
the checkpoint taken when the failed phase began.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite

from orchestrator_tui.core.errors import CheckpointError
from orchestrator_tui.core.states import (
    ACTIVE_SESSION_STATES,
    SessionState,
    TaskState,
    check_session,
    check_task,
)
from orchestrator_tui.engine.control import session_engine_alive
from orchestrator_tui.engine.snapshots import (
    DEFAULT_MAX_MB,
    FileSnapshot,
    drop_snapshot,
    restore_snapshot,
    take_snapshot,
)
from orchestrator_tui.store import bus_events, bus_rules, crashpoints, queries
from orchestrator_tui.store.database import connect
from orchestrator_tui.store.queries import CheckpointRow, SessionRow
from orchestrator_tui.store.records import INSERT_TRANSITION, to_json

S, T = SessionState, TaskState
STATE_VERSION = 1
PHASE_REASON = "phase"
"""Checkpoints whose reason starts with this mark phase boundaries (see the rollback rule)."""
MAX_NAME = 200
INSERT_CHECKPOINT = """INSERT INTO checkpoints (id, session_id, name, kind, snapshot, state,
    reason, undo_of, size_bytes, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"""
RESTORE_SESSION = """UPDATE sessions SET state = ?, updated_at = ?, finished_at = NULL,
    boot_id = NULL WHERE id = ?"""
"""A restored session is held by no engine (boot_id NULL) until one resumes it."""
RESTORE_TASK = """UPDATE tasks SET state = ?, attempts = ?, exit_code = ?, result = ?, error = ?,
    started_at = ?, finished_at = ?, updated_at = ? WHERE session_id = ? AND id = ?"""
TASK_FIELDS = ("state", "attempts", "exit_code", "result", "error", "started_at", "finished_at")


@dataclass(frozen=True, slots=True)
class RestoreResult:
    """What a restore did; `undo` is the checkpoint that brings back what was there before."""

    checkpoint: str
    undo: str
    session: str | None
    session_state: str | None
    files_restored: bool
    files_written: int = 0
    files_removed: int = 0
    files_kept: int = 0
    """Unsaved files (ignored by git) in the way of restored ones, left as they were."""
    tasks_reset: int = 0
    tasks_succeeded: int = 0


def new_checkpoint_id() -> str:
    """A short, unique, readable checkpoint id."""
    return "cp-" + uuid.uuid4().hex[:10]


async def create_checkpoint(db_path: Path, workspace: Path, session_id: str | None, name: str,
                            reason: str, *, undo_of: str | None = None) -> CheckpointRow:
    """Record a session's state (or none) and snapshot the workspace's files.

    Raises:
        CheckpointError: bad name, the session works in another folder, or the snapshot
            failed (nothing is recorded then).
    """
    conn = await connect(db_path)
    try:
        return await _create(conn, db_path, workspace, session_id, name, reason, undo_of)
    finally:
        await conn.close()


async def list_checkpoints(db_path: Path, session_id: str | None = None) -> list[CheckpointRow]:
    """The checkpoints of a session (id or prefix), or all of them; oldest first."""
    conn = await connect(db_path)
    try:
        if session_id is not None:
            session_id = (await queries.find_session(conn, session_id)).id
        return await queries.checkpoints(conn, session_id)
    finally:
        await conn.close()


async def restore_checkpoint(db_path: Path, workspace: Path, checkpoint_id: str, *,
                             files: bool = True) -> RestoreResult:
    """Bring back a checkpoint's files (unless not `files`) and its session's state.

    Raises:
        CheckpointError: the session's engine is alive and it is active, another live
            session works in the folder, the checkpoint is of another folder, or the
            snapshot cannot be restored (the message names the undo checkpoint).
    """
    conn = await connect(db_path)
    try:
        checkpoint = await queries.find_checkpoint(conn, checkpoint_id)
        saved = _saved_state(checkpoint)
        workspace = _require_same_folder(checkpoint, saved, workspace)
        session = await _session(conn, checkpoint)
        if session is not None:
            await _refuse_live(conn, session)
        if files:
            await _refuse_busy_folder(conn, workspace)
        undo = await _create(conn, db_path, workspace, checkpoint.session_id,
                             f"before restoring {checkpoint.id}",
                             f"undo point taken before restoring {checkpoint.id} "
                             f"({checkpoint.name})", checkpoint.id)
        written = removed = kept = 0
        if files:
            try:
                done = await asyncio.to_thread(
                    restore_snapshot, workspace, FileSnapshot(checkpoint.kind,
                                                              checkpoint.snapshot),
                    FileSnapshot(undo.kind, undo.snapshot), protect=_protected(db_path))
            except CheckpointError as error:
                raise CheckpointError(f"{error}; the files may be partly restored: `orchestrator"
                                      f" checkpoint restore {undo.id}` brings back what was "
                                      "there before") from error
            written, removed, kept = done.written, done.removed, done.kept
        reset = succeeded = 0
        state = None
        if session is not None:
            reset, succeeded = await _restore_session(conn, checkpoint, saved, session.id)
            state = S.PAUSED.value
        return RestoreResult(checkpoint.id, undo.id, checkpoint.session_id, state, files,
                             written, removed, kept, reset, succeeded)
    finally:
        await conn.close()


async def rollback(db_path: Path, workspace: Path, session_id: str | None = None) -> RestoreResult:
    """Restore the checkpoint taken when a session's failed phase began (see the module)."""
    conn = await connect(db_path)
    try:
        target = await rollback_target(conn, await queries.find_session(conn, session_id))
    finally:
        await conn.close()
    return await restore_checkpoint(db_path, workspace, target.id)


async def rollback_target(conn: aiosqlite.Connection, session: SessionRow) -> CheckpointRow:
    """The checkpoint a rollback of `session` restores (the rule is in the module's text).

    Raises:
        CheckpointError: no failed task, or no phase checkpoint before it started.
    """
    failed = [task for task in await queries.session_tasks(conn, session.id)
              if task.state == T.FAILED]
    if not failed:
        raise CheckpointError(f"session {session.id} has no failed task, so no failed phase to "
                              "roll back; `checkpoint restore ID` restores any checkpoint")
    first = min(failed, key=lambda task: (task.started_at or task.updated_at, task.id))
    began = first.started_at or first.updated_at
    phases = [row for row in await queries.checkpoints(conn, session.id)
              if row.reason.startswith(PHASE_REASON) and row.undo_of is None
              and row.created_at <= began]
    if not phases:
        raise CheckpointError(
            f"session {session.id}: no phase checkpoint was taken before its first failed task "
            f"({first.id}) started; `checkpoint list {session.id}` shows the ones there are")
    return phases[-1]


# ----- creating ------------------------------------------------------------------------------


async def _create(conn: aiosqlite.Connection, db_path: Path, workspace: Path,
                  session_id: str | None, name: str, reason: str,
                  undo_of: str | None) -> CheckpointRow:
    name = _checked_name(name)
    workspace = _folder(workspace)
    session = await queries.find_session(conn, session_id) if session_id else None
    if session is not None and not _same_folder(session.workspace, workspace):
        raise CheckpointError(f"session {session.id} works in {session.workspace}, not in "
                              f"{workspace}; run the command with --workspace "
                              f"{session.workspace}")
    created_at = time.time()
    state = await _state_of(conn, workspace, session)
    checkpoint_id = new_checkpoint_id()
    snapshot = await asyncio.to_thread(
        take_snapshot, workspace, checkpoint_id,
        message=f"orchestrator checkpoint {checkpoint_id}: {name}",
        max_bytes=await _max_bytes(conn), protect=_protected(db_path))
    crashpoints.reached("checkpoint")
    state["files"] = snapshot.files
    row = CheckpointRow(checkpoint_id, session.id if session else None, name, snapshot.kind,
                        snapshot.ref, to_json(state), reason, undo_of, snapshot.size_bytes,
                        created_at)
    try:
        await conn.execute("BEGIN IMMEDIATE")
        try:
            await conn.execute(INSERT_CHECKPOINT, (
                row.id, row.session_id, row.name, row.kind, row.snapshot, row.state, row.reason,
                row.undo_of, row.size_bytes, row.created_at))
            for statement, params in bus_events.event_statements(
                    bus_rules.ENGINE, "checkpoint_created", json.dumps(
                        {"checkpoint": row.id, "name": row.name, "reason": row.reason,
                         "kind": row.kind, "undo_of": row.undo_of}),
                    session_id=row.session_id, now=row.created_at):
                await conn.execute(statement, params)
            await conn.execute("COMMIT")
        except BaseException:
            await conn.execute("ROLLBACK")
            raise
    except BaseException:
        with contextlib.suppress(Exception):
            await asyncio.to_thread(drop_snapshot, workspace, checkpoint_id, snapshot)
        raise
    return row


async def _state_of(conn: aiosqlite.Connection, workspace: Path,
                    session: SessionRow | None) -> dict[str, Any]:
    """The recorded state a checkpoint keeps, read in one transaction."""
    state: dict[str, Any] = {"version": STATE_VERSION, "workspace": str(workspace),
                             "session": None, "tasks": {}}
    if session is None:
        return state
    await conn.execute("BEGIN")
    try:
        current = await queries.find_session(conn, session.id)
        tasks = await queries.session_tasks(conn, session.id)
    finally:
        await conn.execute("COMMIT")
    state["session"] = {"id": current.id, "intent": current.intent, "state": current.state,
                        "parallel_limit": current.parallel_limit}
    state["tasks"] = {task.id: {field: getattr(task, field) for field in TASK_FIELDS}
                      for task in tasks}
    return state


async def _max_bytes(conn: aiosqlite.Connection) -> int:
    stored = await queries.setting(conn, "checkpoint_max_mb")
    megabytes = int(stored) if stored and stored.isdigit() and int(stored) >= 1 \
        else DEFAULT_MAX_MB
    return megabytes * 1024 * 1024


def _folder(workspace: Path) -> Path:
    """The workspace, resolved and checked to be a folder."""
    workspace = workspace.resolve()
    if not workspace.is_dir():
        raise CheckpointError(f"workspace {workspace} is not a folder")
    return workspace


def _same_folder(recorded: str, workspace: Path) -> bool:
    return Path(recorded).resolve() == workspace


def _protected(db_path: Path) -> list[Path]:
    """The live database and its journals: never saved in a snapshot nor restored."""
    return [db_path, *(db_path.with_name(db_path.name + tail)
                       for tail in ("-wal", "-shm", "-journal"))]


def _checked_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise CheckpointError("a checkpoint needs a name")
    if len(name) > MAX_NAME or any(ord(ch) < 32 for ch in name):
        raise CheckpointError(f"checkpoint name {name[:40]!r}... must be one line of at most "
                              f"{MAX_NAME} characters")
    return name


# ----- restoring -----------------------------------------------------------------------------


def _saved_state(checkpoint: CheckpointRow) -> dict[str, Any]:
    try:
        saved = json.loads(checkpoint.state)
    except json.JSONDecodeError as error:
        raise CheckpointError(f"checkpoint {checkpoint.id}: its recorded state is not valid "
                              f"JSON ({error})") from error
    if not isinstance(saved, dict) or saved.get("version") != STATE_VERSION:
        raise CheckpointError(f"checkpoint {checkpoint.id} was written in a format this "
                              "version does not read")
    return saved


def _require_same_folder(checkpoint: CheckpointRow, saved: dict[str, Any],
                         workspace: Path) -> Path:
    recorded, workspace = Path(str(saved.get("workspace"))), workspace.resolve()
    if recorded != workspace:
        raise CheckpointError(f"checkpoint {checkpoint.id} holds the files of {recorded}, not "
                              f"of {workspace}; run the restore with --workspace {recorded}")
    return workspace


async def _session(conn: aiosqlite.Connection, checkpoint: CheckpointRow) -> SessionRow | None:
    if checkpoint.session_id is None:
        return None
    return await queries.find_session(conn, checkpoint.session_id)


async def _refuse_live(conn: aiosqlite.Connection, session: SessionRow) -> None:
    """Refuse to restore an active session whose engine is alive (it would carry on)."""
    if session.state not in ACTIVE_SESSION_STATES or \
            not await session_engine_alive(conn, session):
        return
    engine = await queries.engine(conn, str(session.boot_id))
    pid = engine.pid if engine else "?"
    if session.state == S.PAUSED:
        raise CheckpointError(
            f"session {session.id} is PAUSED, but its engine (process {pid}) is still alive and "
            "would carry on with the tasks a restore changes; restoring a session under a live "
            f"engine is not supported yet. End that engine first (`orchestrator abort "
            f"{session.id}`, or quit the program running it), then restore: the checkpoint "
            "keeps everything")
    raise CheckpointError(
        f"session {session.id} is {session.state} and its engine (process {pid}) is running "
        "it; a restore now would change files and tasks under running agents, and pausing is "
        f"not enough while that engine is alive. Abort it (`orchestrator abort {session.id}`) "
        "or let it finish, then restore")


async def _refuse_busy_folder(conn: aiosqlite.Connection, workspace: Path) -> None:
    """Refuse to change files under the agents of any live session in the same folder."""
    for session in await queries.list_sessions(conn, limit=1000):
        if session.state in ACTIVE_SESSION_STATES and \
                _same_folder(session.workspace, workspace) and \
                await session_engine_alive(conn, session):
            raise CheckpointError(
                f"session {session.id} is {session.state} in {workspace} and its engine is "
                "alive; restoring files now would change them under its agents. Abort it "
                f"(`orchestrator abort {session.id}`) or let it finish, then restore")


async def _restore_session(conn: aiosqlite.Connection, checkpoint: CheckpointRow,
                           saved: dict[str, Any], session_id: str) -> tuple[int, int]:
    """Move the session and its tasks back to the checkpoint's; return (reset, succeeded)."""
    why = f"checkpoint {checkpoint.id} ({checkpoint.name}) restored"
    saved_tasks: dict[str, dict[str, Any]] = saved.get("tasks") or {}
    reset = succeeded = 0
    await conn.execute("BEGIN IMMEDIATE")
    try:
        session = await queries.find_session(conn, session_id)
        await _refuse_live(conn, session)
        now = time.time()
        current = S(session.state)
        steps: list[tuple[SessionState, SessionState, str]] = [] if current == S.RECOVERING \
            else [(current, S.RECOVERING, f"restoring checkpoint {checkpoint.id}")]
        steps.append((S.RECOVERING, S.PAUSED, f"{why}; resume to carry on"))
        for old, new, _reason in steps:
            check_session(session.id, old, new, restore=True)
        if len(steps) == 2:
            await conn.execute(INSERT_TRANSITION, (session.id, None, *steps[0], now))
        for task in await queries.session_tasks(conn, session.id):
            before = saved_tasks.get(task.id) or {}
            if before.get("state") == T.SUCCEEDED:
                target, fields = T.SUCCEEDED, [before.get(name) for name in TASK_FIELDS[2:]]
                succeeded += 1
            else:
                target, fields = T.PENDING, [None] * (len(TASK_FIELDS) - 2)
                reset += task.state != T.PENDING
            if task.state != target:
                check_task(task.id, T(task.state), target, restore=True)
                await conn.execute(INSERT_TRANSITION, (session.id, task.id, task.state, target,
                                                       why, now))
            attempts = max(task.attempts, int(before.get("attempts") or 0))
            await conn.execute(RESTORE_TASK, (target, attempts, *fields, now, session.id,
                                              task.id))
        await conn.execute(INSERT_TRANSITION, (session.id, None, *steps[-1], now))
        await conn.execute(RESTORE_SESSION, (S.PAUSED, now, session.id))
        await conn.execute("COMMIT")
    except BaseException:
        await conn.execute("ROLLBACK")
        raise
    return reset, succeeded
