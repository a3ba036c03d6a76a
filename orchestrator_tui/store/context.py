"""The shared context store in SQL (key -> JSON value per session, versioned, with
compare-and-set and history) and agents' progress reports. Writes go through the bus's
`transaction`, so a busy database is waited for, never reported as locked.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from orchestrator_tui.store.bus_events import publish
from orchestrator_tui.store.bus_rules import BusError, check_name, check_payload, transaction


class ContextConflict(BusError):
    """A compare-and-set whose expected version is not the stored one; nothing written."""


@dataclass(frozen=True, slots=True)
class ContextValue:
    """One version of a context key: its JSON text, who wrote it and when."""

    key: str
    value: str
    version: int
    written_by: str
    written_at: float

    def to_dict(self) -> dict[str, Any]:
        """As JSON-able data, the value decoded."""
        return {"key": self.key, "value": json.loads(self.value), "version": self.version,
                "written_by": self.written_by, "written_at": self.written_at}


def check_key(key: str) -> str:
    """A context key: 1 to 256 printable characters."""
    if not isinstance(key, str) or not 0 < len(key) <= 256 or not key.isprintable():
        raise BusError(f"context key {key!r} is not valid: use 1 to 256 printable characters")
    return key


def context_get(conn: sqlite3.Connection, session_id: str, key: str) -> ContextValue | None:
    """The current value of `key` in a session, or None."""
    row = conn.execute("SELECT key, value, version, written_by, written_at FROM context "
                       "WHERE session_id = ? AND key = ?", (session_id, check_key(key))
                       ).fetchone()
    return ContextValue(*row) if row else None


def context_set(conn: sqlite3.Connection, session_id: str, key: str, value: str | bytes,
                writer: str, *, expect_version: int | None = None) -> ContextValue:
    """Write `key` (JSON text) as its next version; with `expect_version` only if the stored
    version is that one (0: only if the key does not exist yet).

    Raises:
        ContextConflict: the stored version differs; nothing was written.
        BusError: a bad key or value.
    """
    where = f"context key {check_key(key)!r} of session {session_id}"
    text = check_payload(value, where)
    check_name(writer, f"{where}: writer")

    def body(db: sqlite3.Connection) -> ContextValue:
        current = context_get(db, session_id, key)
        version = current.version if current else 0
        if expect_version is not None and expect_version != version:
            by = (f" (written by {current.written_by} at "
                  f"{time.strftime('%H:%M:%S', time.localtime(current.written_at))})"
                  if current else " (it does not exist)")
            raise ContextConflict(f"{where} is at version {version}{by}, not the expected "
                                  f"{expect_version}; read it again and retry")
        new = ContextValue(key, text, version + 1, writer, time.time())
        db.execute("INSERT OR REPLACE INTO context (session_id, key, value, version, "
                   "written_by, written_at) VALUES (?, ?, ?, ?, ?, ?)",
                   (session_id, key, text, new.version, writer, new.written_at))
        db.execute("INSERT INTO context_history (session_id, key, version, value, written_by, "
                   "written_at) VALUES (?, ?, ?, ?, ?, ?)",
                   (session_id, key, new.version, text, writer, new.written_at))
        return new
    return transaction(conn, body)


def context_history(conn: sqlite3.Connection, session_id: str, key: str) -> list[ContextValue]:
    """Every version of `key` in a session, oldest first."""
    return [ContextValue(*row) for row in conn.execute(
        "SELECT key, value, version, written_by, written_at FROM context_history WHERE "
        "session_id = ? AND key = ? ORDER BY version", (session_id, check_key(key)))]


def context_keys(conn: sqlite3.Connection, session_id: str) -> list[ContextValue]:
    """Every key of a session's context at its current version."""
    return [ContextValue(*row) for row in conn.execute(
        "SELECT key, value, version, written_by, written_at FROM context WHERE "
        "session_id = ? ORDER BY key", (session_id,))]


# -- progress ----------------------------------------------------------------------------


def record_progress(conn: sqlite3.Connection, agent: str, percent: float, note: str | None,
                    *, session_id: str | None = None, task_id: str | None = None) -> int:
    """Record an agent's progress (0 to 100) and publish a `progress` event; the row id."""
    check_name(agent, "agent reporting progress")
    if not 0 <= percent <= 100:
        raise BusError(f"progress of {agent}: {percent:g} is not a percentage from 0 to 100")
    if note is not None and len(note) > 4096:
        raise BusError(f"progress of {agent}: the note is {len(note)} characters, over 4096")

    def body(db: sqlite3.Connection) -> int:
        row_id = int(db.execute(
            "INSERT INTO progress (session_id, task_id, agent, percent, note, at) VALUES "
            "(?, ?, ?, ?, ?, ?)", (session_id, task_id, agent, percent, note, time.time())
        ).lastrowid or 0)
        publish(db, agent, "progress", json.dumps({"task": task_id, "percent": percent,
                                                   "note": note}), session_id=session_id)
        return row_id
    return transaction(conn, body)


def latest_progress(conn: sqlite3.Connection, session_id: str) -> dict[str, dict[str, Any]]:
    """The latest progress of each task (or agent) of a session."""
    rows = conn.execute("SELECT coalesce(task_id, agent), agent, percent, note, at FROM "
                        "progress WHERE session_id = ? ORDER BY id", (session_id,))
    return {str(who): {"agent": agent, "percent": pct, "note": note, "at": at}
            for who, agent, pct, note, at in rows}
