"""Events on the bus in SQL: publishing one records it and fans it out as a message to every
active subscriber of its type (or of `*`); the engine queues the same as plain statements in
its group commits (`event_statements`, and `HAND_OVER` for a finished task's messages)."""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

from orchestrator_tui.store.bus_rules import (
    MAX_ATTEMPTS,
    OPEN_STATES,
    check_name,
    check_payload,
    check_priority,
    transaction,
)


def publish(conn: sqlite3.Connection, source: str, type: str, payload: str | bytes, *,
            session_id: str | None = None, priority: str = "normal") -> tuple[int, int]:
    """Record an event and fan it out as a message to every active subscriber of its type
    (or of `*`); returns (event id, messages made). The same two statements as the engine
    queues (`event_statements`), run in a transaction of their own."""
    (record, recorded), (fan_out, fanned) = event_statements(
        source, type, payload, session_id=session_id, now=time.time(), priority=priority)

    def body(db: sqlite3.Connection) -> tuple[int, int]:
        event_id = int(db.execute(record, recorded).lastrowid or 0)
        return event_id, db.execute(fan_out, fanned).rowcount
    return transaction(conn, body)


def events(conn: sqlite3.Connection, *, session_id: str | None = None,
           limit: int = 100) -> list[dict[str, Any]]:
    """The newest published events, oldest first."""
    sql = "SELECT id, session_id, source, type, payload, subscribers, created_at FROM bus_events"
    rows = (conn.execute(sql + " WHERE session_id = ? ORDER BY id DESC LIMIT ?",
                         (session_id, limit)) if session_id
            else conn.execute(sql + " ORDER BY id DESC LIMIT ?", (limit,))).fetchall()
    return [{"id": r[0], "session": r[1], "source": r[2], "type": r[3],
             "payload": json.loads(r[4]), "subscribers": r[5], "created_at": r[6]}
            for r in reversed(rows)]


# -- the engine's queued statements ------------------------------------------------------
# The engine writes through its group-commit writer, which takes plain statements; these
# publish an event and hand a finished task's messages on without a read round trip.

SUBSCRIBED_TYPES = ("SELECT DISTINCT s.event FROM bus_subscriptions s JOIN bus_agents a ON "
                    "a.name = s.agent WHERE a.active = 1")
"""The event types some active agent listens to (`*`: every type)."""

_LISTENERS = ("FROM bus_subscriptions s JOIN bus_agents a ON a.name = s.agent WHERE "
              "s.event IN (?, '*') AND a.active = 1 AND s.agent != ?")
RECORD_EVENT = ("INSERT INTO bus_events (session_id, source, type, payload, subscribers, "
                f"created_at) SELECT ?, ?, ?, ?, count(DISTINCT s.agent), ? {_LISTENERS}")
FAN_OUT_EVENT = (
    "INSERT INTO messages (session_id, sender, recipient_kind, recipient, agent, type, "
    "payload, priority, state, max_attempts, visible_at, reason, event_id, created_at) "
    "SELECT ?, ?, 'agent', agent, agent, ?, ?, ?, 'pending', ?, ?, NULL, "
    f"(SELECT max(id) FROM bus_events), ? FROM (SELECT DISTINCT s.agent AS agent {_LISTENERS})"
    " ORDER BY agent")
"""Run right after `RECORD_EVENT` in the same transaction: the newest event is that one."""

HAND_OVER = (
    "INSERT INTO messages (session_id, sender, recipient_kind, recipient, agent, type, "
    "payload, priority, state, max_attempts, visible_at, reason, event_id, created_at) "
    "SELECT m.session_id, m.sender, 'agent', ?1, ?1, m.type, m.payload, m.priority, "
    "'pending', m.max_attempts, ?2, 'handed over from message ' || m.id, NULL, ?2 "
    f"FROM messages m WHERE m.agent = ?3 AND m.state IN {OPEN_STATES} AND m.created_at >= ?4 "
    "AND m.event_id IS NULL AND (m.session_id = ?5 OR m.session_id IS NULL) AND NOT EXISTS "
    "(SELECT 1 FROM messages c WHERE c.agent = ?1 AND c.reason = "
    "'handed over from message ' || m.id) ORDER BY m.priority, m.id")
"""Copy the messages an agent got while its task ran and has not acknowledged to the agent
of a dependent task. Parameters: (to agent, now, from agent, since, session id)."""


def event_statements(source: str, type: str, payload: str | bytes, *, session_id: str | None,
                     now: float, priority: str = "normal") -> list[tuple[str, tuple[Any, ...]]]:
    """The two statements that record an event and fan it out to its active subscribers,
    for a writer that queues statements (the engine's) or a caller's open transaction.

    Raises:
        BusError: a bad source, type, priority or payload (nothing to write then).
    """
    where = f"event {type!r} from {source!r}"
    check_name(source, f"{where}: source")
    check_name(type, f"{where}: type")
    text, number = check_payload(payload, where), check_priority(priority, where)
    return [(RECORD_EVENT, (session_id, source, type, text, now, type, source)),
            (FAN_OUT_EVENT, (session_id, source, type, text, number, MAX_ATTEMPTS, now, now,
                             type, source))]
