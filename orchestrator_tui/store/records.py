"""The statements the engine writes, as named helpers that queue them on the writer."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from orchestrator_tui.store.writer import Writer

INSERT_SESSION = """INSERT INTO sessions (id, intent, workflow, workspace, state, plan,
    plan_hash, parallel_limit, max_concurrent, boot_id, created_at, updated_at, mode)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"""
SET_SESSION_STATE = """UPDATE sessions SET state = ?, updated_at = ?,
    finished_at = CASE WHEN ? THEN ? ELSE finished_at END WHERE id = ?"""
INSERT_TASK = """INSERT INTO tasks (session_id, id, kind, agent, state, idempotent, updated_at)
    VALUES (?, ?, ?, ?, ?, ?, ?)"""
SET_TASK_STATE = "UPDATE tasks SET state = ?, updated_at = ? WHERE session_id = ? AND id = ?"
SET_TASK_AGENT = "UPDATE tasks SET agent = ?, updated_at = ? WHERE session_id = ? AND id = ?"
"""The agent that runs a task from now on: a fallback or the escalation."""
_TASK_ROW = ("state", "attempts", "exit_code", "result", "error", "started_at", "finished_at",
             "updated_at")
"""The columns a task's row changes, in the order the update statements bind them."""


def _update_task(*empty: str) -> str:
    """The update of a task's row, with the columns named in `empty` written as NULL instead
    of bound (binding None costs more: `sqlite3` first offers it to its adapters)."""
    columns = ", ".join(f"{name} = NULL" if name in empty else f"{name} = ?"
                        for name in _TASK_ROW)
    return f"UPDATE tasks SET {columns} WHERE session_id = ? AND id = ?"


UPDATE_TASK = _update_task()
UPDATE_FRESH_TASK = _update_task("exit_code", "result", "error", "started_at", "finished_at")
"""`UPDATE_TASK` for a task that has not started."""
UPDATE_STARTED_TASK = _update_task("exit_code", "result", "error", "finished_at")
"""`UPDATE_TASK` for a task that has started and not ended."""

_ATTEMPT_END = ("pid", "process_start", "finished_at", "outcome", "exit_code", "stdout",
                "stderr", "output_bytes")
"""The columns of an attempt's row that are learned after its start."""


def _set_end(value: str, input_bytes: str) -> str:
    """`SET` terms: each column of `_ATTEMPT_END` to `value` (`{}` stands for its name), and
    the input size to `input_bytes` where that is not NULL."""
    terms = [f"{name} = {value.format(name)}" for name in _ATTEMPT_END]
    return ", ".join([*terms, f"input_bytes = coalesce({input_bytes}, input_bytes)"])


UPSERT_ATTEMPT = f"""INSERT INTO attempts (session_id, task_id, attempt, boot_id, pid,
    process_start, started_at, finished_at, outcome, exit_code, stdout, stderr, output_bytes,
    timeout, timeout_runs, input_bytes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (session_id, task_id, attempt) DO UPDATE
    SET {_set_end("excluded.{}", "excluded.input_bytes")}"""
INSERT_ATTEMPT = f"""INSERT INTO attempts (session_id, task_id, attempt, boot_id, started_at,
    timeout, timeout_runs, input_bytes) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (session_id, task_id, attempt) DO UPDATE
    SET {_set_end("NULL", "excluded.input_bytes")}"""
"""`UPSERT_ATTEMPT` for an attempt of which only the start is known: the columns learned
later are written as NULL, not bound."""
UPDATE_ATTEMPT = f"""UPDATE attempts SET {_set_end("?", "?")}
    WHERE session_id = ? AND task_id = ? AND attempt = ?"""
"""What changes in an attempt's row once it is written (cheaper than `UPSERT_ATTEMPT`)."""
SET_ATTEMPT_AGENT = """UPDATE attempts SET runner = ?, agent_session = ?, tokens_in = ?,
    tokens_out = ?, cost_usd = ?, turns = ? WHERE session_id = ? AND task_id = ? AND attempt = ?"""
"""What an agent CLI reported for an attempt; written for agent CLI attempts only."""
INSERT_TRANSITION = """INSERT INTO transitions (session_id, task_id, from_state, to_state,
    reason, at) VALUES (?, ?, ?, ?, ?, ?)"""
HANDLE_CONTROL = "UPDATE control SET handled_at = ?, outcome = ? WHERE id = ?"
SET_SESSION_LIMIT = "UPDATE sessions SET parallel_limit = ?, updated_at = ? WHERE id = ?"
INSERT_ENGINE = """INSERT INTO engines (boot_id, pid, process_start, started_at, heartbeat_at)
    VALUES (?, ?, ?, ?, ?)"""
ENGINE_HEARTBEAT = "UPDATE engines SET heartbeat_at = ? WHERE boot_id = ?"
ENGINE_STOPPED = "UPDATE engines SET stopped_at = ? WHERE boot_id = ?"


def transition(writer: Writer, session_id: str, task_id: str | None, old: str | None,
               new: str, reason: str, at: float) -> None:
    """Queue the history row of one state change."""
    writer.add(INSERT_TRANSITION, (session_id, task_id, old, new, reason, at))


def insert_tasks(writer: Writer, session_id: str,
                 rows: Iterable[tuple[str, str, str | None, str, bool]], at: float) -> None:
    """Queue the rows of a new plan's tasks: (id, kind, agent, state, idempotent)."""
    for task_id, kind, agent, state, idempotent in rows:
        writer.add(INSERT_TASK, (session_id, task_id, kind, agent, state, int(idempotent), at))


def to_json(value: Any) -> str:
    """Compact JSON for storage."""
    return json.dumps(value, separators=(",", ":"), default=str)


def plan_hash(plan_json: str) -> str:
    """The hash of a plan stored as `plan_json`: a session's `plan_hash`, and part of the
    solution cache's problem hash."""
    return hashlib.sha256(plan_json.encode()).hexdigest()
