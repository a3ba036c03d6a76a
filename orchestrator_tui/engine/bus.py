"""The message bus for asyncio code: the CLI's `comm`, `context` and `progress` commands, the
app, and `publish_event` for the engine.

`Bus` owns one plain `sqlite3` connection used from one thread of its own (as the engine's
writer does): a batch of messages is one transaction and one thread hand-off. SQLite errors
become `StoreError`s naming the file; a lock held too long is retried first (`store.bus`).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from orchestrator_tui.store import bus as sql
from orchestrator_tui.store import bus_events as sql_events
from orchestrator_tui.store import context as shared
from orchestrator_tui.store.bus import Message, Outgoing, Sent
from orchestrator_tui.store.bus_rules import ENGINE, VISIBILITY_S
from orchestrator_tui.store.context import ContextValue
from orchestrator_tui.store.database import busy_timeout_ms, connect, describe
from orchestrator_tui.store.writer import Writer

T = TypeVar("T")
POLL_FIRST_S, POLL_MOST_S = 0.02, 0.25


class Bus:
    """Send, receive and acknowledge messages, publish events, read and write the context."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bus")
        self._conn: sqlite3.Connection | None = None

    @classmethod
    async def open(cls, path: Path, *, migrate: bool = True) -> Bus:
        """Open the bus of the database at `path` (created or migrated when `migrate`)."""
        if migrate:
            await (await connect(path)).close()
        bus = cls(path)
        try:
            bus._conn = await bus._in_thread(lambda: _open_connection(path))
        except BaseException:
            bus._thread.shutdown(wait=False)
            raise
        return bus

    async def close(self) -> None:
        """Close the connection and the thread."""
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await self._in_thread(conn.close)
        self._thread.shutdown(wait=True)

    async def __aenter__(self) -> Bus:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        await self.close()

    async def _in_thread(self, fn: Callable[[], T]) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._thread, fn)
        except sqlite3.Error as error:
            raise describe(error, self.path) from error

    async def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        def call() -> T:
            assert self._conn is not None, "the bus is closed"
            return fn(self._conn, *args, **kwargs)
        return await self._in_thread(call)

    async def send(self, message: Outgoing) -> Sent:
        """Send one message; a dead letter's reason is in the answer."""
        return await self._run(sql.send, message)

    async def send_many(self, messages: Sequence[Outgoing]) -> list[Sent]:
        """Send a batch in one transaction: all of them, or none when one is invalid."""
        return await self._run(sql.send_many, list(messages))

    async def receive(self, agent: str, limit: int = 1, *, wait: float = 0.0,
                      visibility: float = VISIBILITY_S) -> list[Message]:
        """Up to `limit` messages of `agent`, waiting up to `wait` seconds for the first."""
        loop = asyncio.get_running_loop()
        deadline, pause = loop.time() + max(0.0, wait), POLL_FIRST_S
        while True:
            got = await self._run(sql.receive, agent, limit, visibility=visibility)
            if got or loop.time() >= deadline:
                return got
            await asyncio.sleep(min(pause, max(0.0, deadline - loop.time())))
            pause = min(pause * 2, POLL_MOST_S)

    async def ack(self, agent: str, ids: Sequence[int]) -> list[int]:
        """Acknowledge messages of `agent`; the ids acknowledged by this call."""
        return await self._run(sql.ack, agent, list(ids))

    async def fail(self, agent: str, message_id: int, reason: str,
                   retry_after: float = 0.0) -> str:
        """Hand a delivered message back as failed; its new state."""
        return await self._run(sql.fail, agent, message_id, reason, retry_after=retry_after)

    async def register(self, name: str, capabilities: Iterable[str] = (),
                       events: Iterable[str] = (), session_id: str | None = None) -> None:
        """Register an agent, its capabilities and the event types it listens to."""
        await self._run(sql.register, name, list(capabilities), list(events), session_id)

    async def publish(self, source: str, type: str, payload: Any, *,
                      session_id: str | None = None) -> tuple[int, int]:
        """Publish an event (payload: any JSON-able value); (event id, subscribers)."""
        return await self._run(sql_events.publish, source, type, _json(payload),
                               session_id=session_id)

    async def context_get(self, session_id: str, key: str) -> ContextValue | None:
        """The current value of a context key, or None."""
        return await self._run(shared.context_get, session_id, key)

    async def context_set(self, session_id: str, key: str, value: str | bytes, writer: str,
                          expect_version: int | None = None) -> ContextValue:
        """Write a context key (JSON text), compare-and-set with `expect_version`."""
        return await self._run(shared.context_set, session_id, key, value, writer,
                               expect_version=expect_version)

    async def context_history(self, session_id: str, key: str) -> list[ContextValue]:
        """Every version of a context key."""
        return await self._run(shared.context_history, session_id, key)

    async def context_keys(self, session_id: str) -> list[ContextValue]:
        """Every key of a session's context."""
        return await self._run(shared.context_keys, session_id)

    async def progress(self, agent: str, percent: float, note: str | None = None, *,
                       session_id: str | None = None, task_id: str | None = None) -> int:
        """Record an agent's progress and publish it as a `progress` event."""
        return await self._run(shared.record_progress, agent, percent, note,
                               session_id=session_id, task_id=task_id)

    async def messages(self, *, agent: str | None = None, type: str | None = None,
                       state: str | None = None, session_id: str | None = None,
                       limit: int = 100) -> list[Message]:
        """The newest messages, filtered."""
        return await self._run(sql.messages, agent=agent, type=type, state=state,
                               session_id=session_id, limit=limit)

    async def events(self, *, session_id: str | None = None,
                     limit: int = 100) -> list[dict[str, Any]]:
        """The newest published events."""
        return await self._run(sql_events.events, session_id=session_id, limit=limit)

    async def agent_status(self) -> list[dict[str, Any]]:
        """Every registered agent with its messages by state."""
        return await self._run(sql.agent_status)

    async def counts(self, session_id: str | None = None) -> dict[str, int]:
        """Messages per state, for the dashboard."""
        return await self._run(sql.counts, session_id)


def _json(payload: Any) -> str:
    return payload if isinstance(payload, str) else json.dumps(payload, default=str)


def _open_connection(path: Path) -> sqlite3.Connection:
    timeout_ms = busy_timeout_ms()
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                           timeout=timeout_ms / 1000)
    try:
        conn.execute(f"PRAGMA busy_timeout = {timeout_ms}")
        conn.execute("PRAGMA synchronous = NORMAL")
    except BaseException:
        conn.close()
        raise
    return conn


async def publish_event(writer: Writer, type: str, payload: Any, *,
                        session_id: str | None = None, source: str = ENGINE
                        ) -> tuple[int, int]:
    """Publish an engine event (task_completed, task_failed, state_changed, ...) inside the
    writer's next group commit; returns (event id, subscribers reached) once committed.

    Raises:
        BusError: a bad type or payload (nothing written). StoreError: the batch failed.
    """
    text = _json(payload)
    return await writer.call(lambda conn: sql_events.publish(conn, source, type, text,
                                                             session_id=session_id))
