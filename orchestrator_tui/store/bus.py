"""The message bus in SQL: agents and messages (events are in `store.bus_events`, the shared
context store and progress in `store.context`).

Every function takes a plain `sqlite3` connection; writes run through `transaction` (see
`store.bus_rules`, with the names, limits and checks every part of the bus shares).

Messages go pending -> delivered -> acknowledged. A delivered message that is not
acknowledged within its visibility timeout is delivered again (a receiver that crashed gets
it back); a receiver may also fail it, which makes it ready again. Past `max_attempts` it is
a dead letter with its reason, as is a message to a recipient nobody knows.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator_tui.store.bus_rules import (
    ENGINE,
    KINDS,
    MAX_ATTEMPTS,
    OPEN_STATES,
    PRIORITY_NAMES,
    VISIBILITY_S,
    BusError,
    check_name,
    check_payload,
    check_priority,
    transaction,
)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message to send: `to` is an agent, a capability or `*` (broadcast) per `kind`."""

    sender: str
    to: str
    type: str
    payload: str | bytes
    priority: str = "normal"
    kind: str = "agent"
    session_id: str | None = None


@dataclass(frozen=True, slots=True)
class Message:
    """One stored message, as a receiver or a viewer sees it."""

    id: int
    session_id: str | None
    sender: str
    recipient_kind: str
    recipient: str
    agent: str | None
    type: str
    payload: str
    priority: str
    state: str
    attempts: int
    reason: str | None
    created_at: float

    def to_dict(self) -> dict[str, Any]:
        """The message as JSON-able data, its payload decoded."""
        return {"id": self.id, "session": self.session_id, "from": self.sender,
                "to": self.recipient, "to_kind": self.recipient_kind, "agent": self.agent,
                "type": self.type, "payload": json.loads(self.payload),
                "priority": self.priority, "state": self.state, "attempts": self.attempts,
                "reason": self.reason, "created_at": self.created_at}


_COLUMNS = ("id, session_id, sender, recipient_kind, recipient, agent, type, payload, "
            "priority, state, attempts, reason, created_at")


def _message(row: Sequence[Any]) -> Message:
    values = list(row)
    values[8] = PRIORITY_NAMES.get(values[8], str(values[8]))
    return Message(*values)


# -- agents and subscriptions ------------------------------------------------------------


def register(conn: sqlite3.Connection, name: str, capabilities: Iterable[str] = (),
             events: Iterable[str] = (), session_id: str | None = None) -> None:
    """Register (or update) an agent: active, its capabilities and the events it wants."""
    check_name(name, "agent")
    caps = sorted({check_name(c, f"capability of agent {name}") for c in capabilities})
    wanted = sorted({e if e == "*" else check_name(e, f"event of agent {name}")
                     for e in events})
    now = time.time()

    def body(db: sqlite3.Connection) -> None:
        db.execute("INSERT INTO bus_agents (name, session_id, capabilities, active, "
                   "registered_at, seen_at) VALUES (?, ?, ?, 1, ?, ?) ON CONFLICT(name) DO "
                   "UPDATE SET session_id = excluded.session_id, capabilities = "
                   "excluded.capabilities, active = 1, seen_at = excluded.seen_at",
                   (name, session_id, json.dumps(caps), now, now))
        db.execute("DELETE FROM bus_subscriptions WHERE agent = ?", (name,))
        db.executemany("INSERT INTO bus_subscriptions (event, agent) VALUES (?, ?)",
                       [(event, name) for event in wanted])
    transaction(conn, body)


def deactivate(conn: sqlite3.Connection, name: str) -> bool:
    """Mark an agent inactive (no capability routing, broadcasts or events reach it)."""
    def body(db: sqlite3.Connection) -> bool:
        return db.execute("UPDATE bus_agents SET active = 0 WHERE name = ?",
                          (name,)).rowcount > 0
    return transaction(conn, body)


def _known(db: sqlite3.Connection, name: str) -> bool:
    if name == ENGINE:
        return True
    if db.execute("SELECT 1 FROM bus_agents WHERE name = ?", (name,)).fetchone():
        return True
    return db.execute("SELECT 1 FROM tasks WHERE agent = ? LIMIT 1", (name,)).fetchone() \
        is not None


def _success_rates(db: sqlite3.Connection) -> dict[str, float]:
    rows = db.execute("SELECT agent, sum(state = 'succeeded'), count(*) FROM tasks WHERE "
                      "agent IS NOT NULL AND state IN ('succeeded', 'failed') GROUP BY agent")
    return {str(agent): (good + 1) / (runs + 2) for agent, good, runs in rows}


def _loads(db: sqlite3.Connection) -> dict[str, int]:
    rows = db.execute(f"SELECT agent, count(*) FROM messages WHERE state IN {OPEN_STATES} "
                      "AND agent IS NOT NULL GROUP BY agent")
    return {str(agent): int(n) for agent, n in rows}


def best_agent(db: sqlite3.Connection, capability: str,
               extra_load: dict[str, int] | None = None) -> str | None:
    """The active agent with `capability` that is least loaded (fewest messages not yet
    acknowledged), then has the best recorded success rate, then comes first by name."""
    candidates = [name for name, caps in db.execute(
        "SELECT name, capabilities FROM bus_agents WHERE active = 1")
        if capability in json.loads(caps)]
    if not candidates:
        return None
    loads, rates = _loads(db), _success_rates(db)
    extra = extra_load or {}
    return str(min(candidates, key=lambda n: (loads.get(n, 0) + extra.get(n, 0),
                                              -rates.get(n, 0.5), n)))


# -- messages ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sent:
    """What became of one outgoing message: the rows it made and any dead-letter reason."""

    ids: tuple[int, ...]
    agents: tuple[str, ...]
    reason: str | None = None


_INSERT = ("INSERT INTO messages (session_id, sender, recipient_kind, recipient, agent, type, "
           "payload, priority, state, max_attempts, visible_at, reason, event_id, created_at) "
           "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")


def send_many(conn: sqlite3.Connection, outgoing: Sequence[Outgoing], *,
              max_attempts: int = MAX_ATTEMPTS) -> list[Sent]:
    """Validate every message, then store them all in one transaction (or none of them).

    Raises:
        BusError: a bad name, priority or payload, naming the message (nothing stored).
    """
    checked = [_check_outgoing(message, index, len(outgoing))
               for index, message in enumerate(outgoing)]

    def body(db: sqlite3.Connection) -> list[Sent]:
        now, results = time.time(), []
        known: dict[str, bool] = {}
        extra: dict[str, int] = {}
        for message, payload, priority in checked:
            targets, reason = _targets(db, message, known, extra)
            state = "dead_letter" if reason else "pending"
            rows = [(message.session_id, message.sender, message.kind, message.to, agent,
                     message.type, payload, priority, state, max_attempts, now, reason, None,
                     now) for agent in ([*targets] if targets else [None])]
            ids = []
            for row in rows:  # one by one for the ids; executemany gives only the last
                cursor = db.execute(_INSERT, row)
                ids.append(int(cursor.lastrowid or 0))
            results.append(Sent(tuple(ids), tuple(targets), reason))
        return results
    return transaction(conn, body)


def send(conn: sqlite3.Connection, message: Outgoing) -> Sent:
    """Send one message (see `send_many`)."""
    return send_many(conn, [message])[0]


def _check_outgoing(message: Outgoing, index: int, count: int) -> tuple[Outgoing, str, int]:
    where = (f"message {index + 1} of {count}" if count > 1 else "message") + \
        f" to {message.to!r} (type {message.type!r})"
    if message.kind not in KINDS:
        raise BusError(f"{where}: unknown recipient kind {message.kind!r}; use one of "
                       f"{', '.join(KINDS)}")
    check_name(message.sender, f"{where}: sender")
    check_name(message.type, f"{where}: type")
    if message.kind != "broadcast":
        check_name(message.to, f"{where}: recipient")
    return message, check_payload(message.payload, where), \
        check_priority(message.priority, where)


def _targets(db: sqlite3.Connection, message: Outgoing, known: dict[str, bool],
             extra: dict[str, int]) -> tuple[list[str], str | None]:
    """The agents a message goes to, or none and the reason it is a dead letter."""
    if message.kind == "broadcast":
        names = [row[0] for row in db.execute(
            "SELECT name FROM bus_agents WHERE active = 1 AND name != ? ORDER BY name",
            (message.sender,))]
        return (names, None) if names else ([], "broadcast: no other active agent")
    if message.kind == "capability":
        agent = best_agent(db, message.to, extra)
        if agent is None:
            return [], f"no active agent has the capability {message.to!r}"
        extra[agent] = extra.get(agent, 0) + 1
        return [agent], None
    if message.to not in known:
        known[message.to] = _known(db, message.to)
    if not known[message.to]:
        return [], f"unknown recipient: no agent named {message.to!r} is registered"
    return [message.to], None


def receive(conn: sqlite3.Connection, agent: str, limit: int = 1, *,
            visibility: float = VISIBILITY_S) -> list[Message]:
    """Deliver up to `limit` messages of `agent`: by priority, then in the order sent.

    Messages delivered earlier and not acknowledged within `visibility` seconds come again;
    one delivered `max_attempts` times without an acknowledgement becomes a dead letter.
    """
    check_name(agent, "receiving agent")
    if limit < 1:
        raise BusError(f"receive: the number of messages must be 1 or more, not {limit}")

    def body(db: sqlite3.Connection) -> list[Message]:
        now = time.time()
        db.execute("UPDATE bus_agents SET seen_at = ? WHERE name = ?", (now, agent))
        got: list[Message] = []
        while len(got) < limit:
            rows = db.execute(
                f"SELECT {_COLUMNS}, max_attempts FROM messages WHERE agent = ? AND state IN "
                f"{OPEN_STATES} AND visible_at <= ? ORDER BY priority, id LIMIT ?",
                (agent, now, limit - len(got))).fetchall()
            if not rows:
                break
            dead = [(f"not acknowledged after {row[10]} deliveries", row[0])
                    for row in rows if row[10] >= row[13]]
            live = [row for row in rows if row[10] < row[13]]
            db.executemany("UPDATE messages SET state = 'dead_letter', reason = ? "
                           "WHERE id = ?", dead)
            db.executemany("UPDATE messages SET state = 'delivered', attempts = attempts + 1, "
                           "delivered_at = ?, visible_at = ? WHERE id = ?",
                           [(now, now + visibility, row[0]) for row in live])
            got += [_message((*row[:9], "delivered", row[10] + 1, *row[11:13]))
                    for row in live]
            if not dead:
                break
        return got
    return transaction(conn, body)


def ack(conn: sqlite3.Connection, agent: str, ids: Sequence[int]) -> list[int]:
    """Acknowledge delivered messages of `agent`; returns the ids acknowledged now.

    Raises:
        BusError: an id that is not a message of `agent`, or was never delivered.
    """
    ids = list(dict.fromkeys(ids))

    def body(db: sqlite3.Connection) -> list[int]:
        states = _states(db, agent, ids)
        fresh = [i for i in ids if states[i] in ("delivered", "failed")]
        now = time.time()
        db.executemany("UPDATE messages SET state = 'acknowledged', acked_at = ? WHERE id = ?",
                       [(now, i) for i in fresh])
        return fresh
    return transaction(conn, body)


def fail(conn: sqlite3.Connection, agent: str, message_id: int, reason: str, *,
         retry_after: float = 0.0) -> str:
    """A receiver could not process a message: it is offered again after `retry_after`
    seconds, or becomes a dead letter once its attempts are used up. Returns the new state."""
    def body(db: sqlite3.Connection) -> str:
        state = _states(db, agent, [message_id])[message_id]
        if state != "delivered":
            raise BusError(f"message {message_id} is {state}; only a delivered message can "
                           "be failed")
        attempts, most = db.execute("SELECT attempts, max_attempts FROM messages WHERE id = ?",
                                    (message_id,)).fetchone()
        new = "dead_letter" if attempts >= most else "failed"
        text = f"failed {attempts} times, last: {reason}" if new == "dead_letter" else reason
        db.execute("UPDATE messages SET state = ?, reason = ?, visible_at = ? WHERE id = ?",
                   (new, text, time.time() + retry_after, message_id))
        return new
    return transaction(conn, body)


def _states(db: sqlite3.Connection, agent: str, ids: Sequence[int]) -> dict[int, str]:
    found: dict[int, str] = {}
    for start in range(0, len(ids), 500):
        chunk = list(ids[start:start + 500])
        marks = ",".join("?" * len(chunk))
        for message_id, owner, state in db.execute(
                f"SELECT id, agent, state FROM messages WHERE id IN ({marks})", chunk):
            if owner != agent:
                raise BusError(f"message {message_id} is addressed to {owner!r}, not to "
                               f"{agent!r}; only its recipient can acknowledge it")
            found[int(message_id)] = str(state)
    for message_id in ids:
        if message_id not in found:
            raise BusError(f"no message {message_id} (see `comm show-messages`)")
        if found[message_id] == "pending":
            raise BusError(f"message {message_id} was not delivered yet; receive it first")
    return found


def messages(conn: sqlite3.Connection, *, agent: str | None = None, type: str | None = None,
             state: str | None = None, session_id: str | None = None,
             limit: int = 100) -> list[Message]:
    """The newest messages (to or from `agent`, of `type`, in `state`, of `session_id`),
    oldest first."""
    where, params = ["1"], []
    if agent:
        where.append("(agent = ? OR sender = ? OR recipient = ?)")
        params += [agent, agent, agent]
    for column, value in (("type", type), ("state", state), ("session_id", session_id)):
        if value:
            where.append(f"{column} = ?")
            params.append(value)
    rows = conn.execute(f"SELECT {_COLUMNS} FROM messages WHERE {' AND '.join(where)} "
                        "ORDER BY id DESC LIMIT ?", (*params, limit)).fetchall()
    return [_message(row) for row in reversed(rows)]


def counts(conn: sqlite3.Connection, session_id: str | None = None) -> dict[str, int]:
    """Messages per state (of one session, or all), for the dashboard."""
    sql = "SELECT state, count(*) FROM messages"
    rows = conn.execute(sql + " WHERE session_id = ? GROUP BY state", (session_id,)) \
        if session_id else conn.execute(sql + " GROUP BY state")
    return {str(state): int(n) for state, n in rows}


def agent_status(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every registered agent: capabilities, events, activity and its messages by state."""
    per: dict[str, dict[str, int]] = {}
    for agent, state, n in conn.execute("SELECT agent, state, count(*) FROM messages "
                                        "WHERE agent IS NOT NULL GROUP BY agent, state"):
        per.setdefault(agent, {})[state] = n
    events: dict[str, list[str]] = {}
    for event, agent in conn.execute("SELECT event, agent FROM bus_subscriptions "
                                     "ORDER BY event"):
        events.setdefault(agent, []).append(event)
    return [{"agent": name, "active": bool(active), "capabilities": json.loads(caps),
             "events": events.get(name, []), "session": session, "seen_at": seen,
             "messages": per.get(name, {})}
            for name, caps, active, session, seen in conn.execute(
                "SELECT name, capabilities, active, session_id, seen_at FROM bus_agents "
                "ORDER BY name")]
