"""The engine's one writer: many small changes, one transaction per batch (group commit).

Callers queue statements with `add` and await `commit()` when they need what they queued to
be durable (or take the future of `committed()` and go on). At the end of the event loop's
turn, everything queued so far goes as one batch to the writer's own thread, which runs it
inside a single `BEGIN IMMEDIATE` transaction (consecutive rows of one statement go through
one `executemany`) and commits; then every caller whose changes were in that batch wakes.
While a batch is in the thread, what is queued waits and goes as the next one. A burst of
changes from many tasks therefore costs one transaction and one thread hand-off, not one per
statement.

The writer's connection is a plain `sqlite3` connection owned by that thread: aiosqlite
would hand each statement to its thread separately (about 100 microseconds each here), and
a batch is several statements. Readers keep using aiosqlite connections of their own, but
for `peek`: a quick read on the loop's thread, for what the engine polls often.

A small batch of plain statements is written on the event loop's own thread instead, on a
second connection that never waits for a lock: handing it to the thread and back costs two
thread switches and the contention for Python's interpreter lock, more than the write
itself. If another process holds the lock, the batch goes to the thread, which waits up to
the busy timeout; so do large batches and `call`s. That connection does not checkpoint the
write-ahead log on its commits (a checkpoint syncs the disk): the thread does it, on its own
connection, every `CHECKPOINT_EVERY` such batches.

`call` runs a synchronous read-then-write function inside the batch's transaction, under a
savepoint, so a failing call rolls back only its own changes.

A batch that cannot be written (disk full, lock held past the busy timeout, damaged file) is
rolled back whole and every caller waiting on it gets the `StoreError` that names the file;
what earlier batches committed stays. `$ORCHESTRATOR_MAX_PAGES` (or `max_pages`) caps the
file's size in pages, which lets the tests make the disk "full" at a chosen point.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from orchestrator_tui.core.errors import StoreError
from orchestrator_tui.store import crashpoints
from orchestrator_tui.store.database import busy_timeout_ms, describe

T = TypeVar("T")
Params = Sequence[Any]
Call = Callable[[sqlite3.Connection], Any]
Op = tuple[str, list[Params]] | tuple[Call, "asyncio.Future[Any]"]
"""A statement with the rows it runs for (consecutive rows of one statement share an op,
which runs as one `executemany`), or a `call` with its future."""
MAX_PAGES_ENV = "ORCHESTRATOR_MAX_PAGES"
INLINE_OPS = 500
"""Most statements of a batch written on the event loop's thread (a few milliseconds)."""
CHECKPOINT_EVERY = 100
"""Batches written on the loop's thread between two checkpoints of the log by the thread."""
_CHECKPOINT = "checkpoint"
"""What the loop puts on the thread's queue to have the log checkpointed."""


def max_pages_from_env() -> int | None:
    """The page cap of `$ORCHESTRATOR_MAX_PAGES` (a whole number), or None when unset."""
    raw = os.environ.get(MAX_PAGES_ENV, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise StoreError(f"{MAX_PAGES_ENV} must be a whole number of pages, not {raw!r}")
    return int(raw)


class Writer:
    """Serialises every write of the engine through one connection, in group commits."""

    def __init__(self, path: Path, *, max_pages: int | None = None) -> None:
        self._path = path
        self._max_pages = max_pages if max_pages is not None else max_pages_from_env()
        self._ops: list[Op] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._afters: list[tuple[Callable[[], Any], asyncio.Future[Any]]] = []
        self._in_thread = False
        """Whether something queued for the next batch must run in the writer's thread."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: queue.SimpleQueue[_Batch | str | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._sending = False
        self._in_flight = False
        """Whether a batch is with the writer's thread: what is queued meanwhile waits for
        it, and goes as the next batch (one transaction for everything that piled up)."""
        self._conn: sqlite3.Connection | None = None
        self._inline_conn: sqlite3.Connection | None = None
        """The connection of batches written on the loop's thread (it never waits)."""
        self._since_checkpoint = 0
        self.batches = 0
        """Transactions committed so far (for benchmarks and tests)."""

    @property
    def path(self) -> Path:
        """The database file this writer writes."""
        return self._path

    async def copy_to(self, target: Path) -> None:
        """Copy the database as committed to `target`, from the writer's own connection
        (which still reads a database file deleted while in use)."""
        def copy() -> None:
            assert self._conn is not None
            with contextlib.closing(sqlite3.connect(target)) as dest:
                self._conn.backup(dest)
            target.chmod(0o600)
        await self.commit_then(copy, in_thread=True)  # a long copy must not stop the loop

    async def start(self) -> None:
        """Open the writer's connection in the writer's own thread, which then takes the
        batches of the running loop."""
        self._loop = asyncio.get_running_loop()
        opened: asyncio.Future[None] = self._loop.create_future()
        self._thread = threading.Thread(target=self._serve, args=(opened,), name="db-writer",
                                        daemon=True)
        self._thread.start()
        await opened

    def _open(self) -> None:
        self._conn = self._connect(busy_timeout_ms())
        self._inline_conn = self._connect(0, "PRAGMA wal_autocheckpoint = 0")

    def _connect(self, timeout_ms: int, *pragmas: str) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False,
                                   timeout=timeout_ms / 1000)
        except sqlite3.Error as error:
            raise describe(error, self._path) from error
        try:
            conn.execute(f"PRAGMA busy_timeout = {timeout_ms}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            if self._max_pages is not None:
                conn.execute(f"PRAGMA max_page_count = {self._max_pages}")
            for pragma in pragmas:
                conn.execute(pragma)
        except sqlite3.Error as error:
            conn.close()
            raise describe(error, self._path) from error
        return conn

    def add(self, sql: str, params: Params = ()) -> None:
        """Queue one statement for the next batch; it is durable after a later `commit()`."""
        self.add_rows(sql, (params,))

    def add_rows(self, sql: str, rows: Sequence[Params]) -> None:
        """Queue one statement for each of `rows`, in order (the engine queues a few such
        blocks per batch, of many rows each)."""
        if not rows:
            return
        ops = self._ops
        if ops and ops[-1][0] == sql:  # the same statement again: one executemany
            ops[-1][1].extend(rows)
        else:
            ops.append((sql, list(rows)))

    def peek(self, sql: str, params: Params = ()) -> list[Any] | None:
        """Run a short read now, on the loop's thread, through the connection of inline
        batches: no hand-off to a thread, for what the engine asks many times a second
        (control requests). None when that connection is closed or the database is busy.

        Raises:
            StoreError: the database cannot be read (damaged, gone, ...).
        """
        conn = self._inline_conn
        if conn is None:
            return None
        try:
            return conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError as error:
            if error.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                return None
            raise describe(error, self._path) from error
        except sqlite3.Error as error:
            raise describe(error, self._path) from error

    async def commit(self) -> None:
        """Wait until every statement queued before this call is committed.

        Raises:
            StoreError: the batch could not be written (disk full, damaged file, ...).
        """
        await self.committed()

    def committed(self) -> asyncio.Future[None]:
        """A future done once every statement queued so far is committed (or failed with the
        batch's `StoreError`): `commit` for callers that go on meanwhile."""
        waiter: asyncio.Future[None] = self._running_loop().create_future()
        self._waiters.append(waiter)
        self._send_soon()
        return waiter

    async def commit_then(self, fn: Callable[[], T], *, in_thread: bool = False) -> T:
        """Commit what is queued, then run `fn()` right after that commit, in the thread that
        wrote it (the writer's, or the loop's for a small batch; `in_thread`: the writer's
        always), and return its result.

        For work that must not start before its record is durable (starting a process after
        its `running` row): it starts at the earliest safe moment, without a round trip
        through the event loop. `fn` runs only if the commit succeeded.
        """
        return await self.then(fn, in_thread=in_thread)

    def then(self, fn: Callable[[], T], *, in_thread: bool = False) -> asyncio.Future[T]:
        """`commit_then` for callers that go on meanwhile: the future of `fn()`'s result."""
        result: asyncio.Future[T] = self._running_loop().create_future()
        self._afters.append((fn, result))
        self._in_thread = self._in_thread or in_thread
        self._send_soon()
        return result

    async def call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(conn)` in the writer's thread inside the next batch; return its result."""
        result: asyncio.Future[T] = self._running_loop().create_future()
        self._ops.append((fn, result))
        self._send_soon()
        return await result

    async def close(self) -> None:
        """Commit what is queued, stop the writer's thread and close the connection.

        The connection is closed even when that last commit fails; its error is raised then.
        """
        try:
            if self._thread is not None:
                await self.commit()
        finally:
            if self._thread is not None:
                thread, self._thread = self._thread, None
                self._queue.put(None)
                await asyncio.to_thread(thread.join)

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        if self._thread is None:
            raise StoreError(f"the writer of {self._path} is not running")
        return asyncio.get_running_loop()

    def _send_soon(self) -> None:
        """Hand what is queued to the writer's thread once this turn of the loop is over,
        so that everything queued during the turn shares one transaction."""
        if not self._sending:
            self._sending = True
            asyncio.get_running_loop().call_soon(self._send)

    def _send(self) -> None:
        self._sending = False
        if not self._in_flight and (self._ops or self._waiters or self._afters):
            batch = _Batch(self._ops, self._waiters, self._afters, self._in_thread)
            self._ops, self._waiters, self._afters = [], [], []
            self._in_thread = False
            if self._write_here(batch):
                return
            self._in_flight = True
            self._queue.put(batch)

    def _write_here(self, batch: _Batch) -> bool:
        """Write a small batch of plain statements now, on the loop's thread, unless the
        lock is taken; say whether it was written (or failed for good)."""
        conn = self._inline_conn
        if conn is None or batch.in_thread or _statements(batch.ops) > INLINE_OPS:
            return False
        try:
            outcomes = self._write(conn, batch.ops, batch.afters)
        except _Busy:
            return False
        except Exception as error:
            self._fail(batch, describe(error, self._path)
                       if isinstance(error, sqlite3.Error) else error)
            return True
        self._deliver(batch, outcomes)
        self._since_checkpoint += 1
        if self._since_checkpoint >= CHECKPOINT_EVERY and not self._in_flight:
            # Writes wait for it (the log starts over only once every frame is copied);
            # the loop does not.
            self._since_checkpoint = 0
            self._in_flight = True
            self._queue.put(_CHECKPOINT)
        return True

    def _serve(self, opened: asyncio.Future[None]) -> None:
        """The writer's thread: open the connection, then write batch after batch, each
        answered on the loop, until told to stop (or the loop is gone); then close the
        connection."""
        loop = self._loop
        assert loop is not None

        def answer(callback: Callable[..., None], *args: Any) -> bool:
            try:
                loop.call_soon_threadsafe(callback, *args)
            except RuntimeError:  # the loop was closed without closing the writer
                return False
            return True

        try:
            self._open()
        except BaseException as error:
            self._thread = None
            answer(_settle, opened, error)
            return
        try:
            if not answer(_settle, opened, None):
                return
            while (batch := self._queue.get()) is not None:
                if isinstance(batch, str):
                    self._checkpoint()
                    if not answer(self._checkpointed):
                        return
                    continue
                assert self._conn is not None
                try:
                    outcomes = self._write(self._conn, batch.ops, batch.afters)
                except Exception as error:  # the batch is lost: tell everyone who waits
                    failure = describe(error, self._path) \
                        if isinstance(error, sqlite3.Error) else error
                    if not answer(self._fail, batch, failure):
                        return
                    continue
                if not answer(self._deliver, batch, outcomes):
                    return
        finally:
            for conn in (self._inline_conn, self._conn):
                if conn is not None:
                    conn.close()
            self._inline_conn = self._conn = None

    def _checkpointed(self) -> None:
        self._in_flight = False
        self._send()

    def _checkpoint(self) -> None:
        """Copy the log's frames into the database file, without waiting for anyone (a
        failure loses nothing: the log grows until the next one)."""
        assert self._conn is not None
        with contextlib.suppress(sqlite3.Error):
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def _deliver(self, batch: _Batch, outcomes: list[tuple[asyncio.Future[Any], Any]]) -> None:
        self._in_flight = False
        self._send()
        if batch.ops:
            self.batches += 1
        for future, value in outcomes:
            if future.done():
                continue
            if isinstance(value, BaseException):
                future.set_exception(value)
            else:
                future.set_result(value)
        for waiter in batch.waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _fail(self, batch: _Batch, failure: BaseException) -> None:
        self._in_flight = False
        self._send()
        pending = [op[1] for op in batch.ops if not isinstance(op[0], str)]
        for future in [*pending, *batch.waiters, *(f for _, f in batch.afters)]:
            if not future.done():
                future.set_exception(failure)

    def _transaction(self, conn: sqlite3.Connection,
                     ops: list[Op]) -> list[tuple[asyncio.Future[Any], Any]]:
        """Run `ops` in one `BEGIN IMMEDIATE` transaction and commit it."""
        outcomes: list[tuple[asyncio.Future[Any], Any]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            if conn is self._inline_conn and error.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY:
                raise _Busy from error
            raise
        try:
            for head in ops:
                if isinstance(head[0], str):
                    conn.executemany(head[0], head[1])
                    continue
                fn, future = head
                conn.execute("SAVEPOINT call")
                try:
                    value = fn(conn)
                except Exception as error:
                    conn.execute("ROLLBACK TO call")
                    conn.execute("RELEASE call")
                    outcomes.append((future, describe(error, self._path)
                                     if isinstance(error, sqlite3.Error) else error))
                    continue
                conn.execute("RELEASE call")
                outcomes.append((future, value))
            crashpoints.reached("commit")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return outcomes

    def _write(self, conn: sqlite3.Connection, ops: list[Op],
               afters: list[tuple[Callable[[], Any], asyncio.Future[Any]]],
               ) -> list[tuple[asyncio.Future[Any], Any]]:
        """Run a batch in one transaction on `conn`, then the work that waited for it;
        return the results, to be delivered on the event loop."""
        outcomes = self._transaction(conn, ops) if ops else []
        for after, future in afters:
            try:
                outcomes.append((future, after()))
            except Exception as error:
                outcomes.append((future, error))
        return outcomes


def _statements(ops: list[Op]) -> float:
    """How many statements `ops` runs (one per row); infinite when any op is a `call`,
    which only the writer's thread runs."""
    count = 0
    for op in ops:
        if not isinstance(op[0], str):
            return float("inf")
        count += len(op[1])
    return count


class _Busy(Exception):
    """Another connection holds the write lock (for a batch that must not wait for it)."""


@dataclass(slots=True)
class _Batch:
    """What one turn of the loop queued: statements and calls, commit waiters, afters."""

    ops: list[Op]
    waiters: list[asyncio.Future[None]]
    afters: list[tuple[Callable[[], Any], asyncio.Future[Any]]]
    in_thread: bool = False
    """Whether it must be written by the writer's thread (an after must run there)."""


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)
