"""The solution cache: a completed session's summary under the hash of its problem (intent,
plan and workspace), with size and age limits and hit and miss counters."""

from __future__ import annotations

from dataclasses import dataclass

import aiosqlite

MAX_ENTRIES = 200
"""The most cached solutions kept; the oldest go first."""


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """One cached solution."""

    problem_hash: str
    intent: str
    session_id: str
    summary: str
    created_at: float


async def find(conn: aiosqlite.Connection, problem_hash: str,
               not_before: float) -> CacheEntry | None:
    """The entry stored under `problem_hash` at or after `not_before`, or None."""
    async with conn.execute(
        "SELECT problem_hash, intent, session_id, summary, created_at FROM solution_cache "
        "WHERE problem_hash = ? AND created_at >= ?", (problem_hash, not_before)) as cursor:
        row = await cursor.fetchone()
    return CacheEntry(*row) if row else None


async def count(conn: aiosqlite.Connection, name: str) -> None:
    """Add one to the counter `name` ("hits" or "misses") in its own transaction."""
    await conn.execute("BEGIN IMMEDIATE")
    try:
        await conn.execute("INSERT INTO cache_counters (name, count) VALUES (?, 1) "
                           "ON CONFLICT(name) DO UPDATE SET count = count + 1", (name,))
    except BaseException:
        await conn.execute("ROLLBACK")
        raise
    await conn.execute("COMMIT")


async def store(conn: aiosqlite.Connection, entry: CacheEntry, not_before: float) -> None:
    """Store `entry` (replacing one of the same hash), then drop entries older than
    `not_before` and all but the newest `MAX_ENTRIES`."""
    await conn.execute("BEGIN IMMEDIATE")
    try:
        await conn.execute(
            "INSERT INTO solution_cache (problem_hash, intent, session_id, summary, created_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT(problem_hash) DO UPDATE SET "
            "intent = excluded.intent, session_id = excluded.session_id, "
            "summary = excluded.summary, created_at = excluded.created_at",
            (entry.problem_hash, entry.intent, entry.session_id, entry.summary,
             entry.created_at))
        await conn.execute("DELETE FROM solution_cache WHERE created_at < ?", (not_before,))
        await conn.execute(
            "DELETE FROM solution_cache WHERE problem_hash NOT IN (SELECT problem_hash FROM "
            "solution_cache ORDER BY created_at DESC LIMIT ?)", (MAX_ENTRIES,))
    except BaseException:
        await conn.execute("ROLLBACK")
        raise
    await conn.execute("COMMIT")


async def counters(conn: aiosqlite.Connection) -> tuple[int, int]:
    """(hits, misses) recorded so far."""
    async with conn.execute("SELECT name, count FROM cache_counters") as cursor:
        values = {str(name): int(n) for name, n in await cursor.fetchall()}
    return values.get("hits", 0), values.get("misses", 0)


async def size(conn: aiosqlite.Connection) -> int:
    """How many solutions are cached."""
    async with conn.execute("SELECT count(*) FROM solution_cache") as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0
