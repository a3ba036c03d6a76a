"""Which agents are archived: kept in the database's `settings` table, not in agent files.

Each archived agent is one row, key `agent-archived:NAME`, value the UTC time (ISO 8601) it
was archived. Activating an agent deletes its row.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from orchestrator_tui.store.database import connect

ARCHIVED_PREFIX = "agent-archived:"


async def archived_agents(db_path: Path) -> dict[str, str]:
    """Archived agent names, each with the time it was archived."""
    conn = await connect(db_path)
    try:
        async with conn.execute("SELECT key, value FROM settings WHERE substr(key, 1, ?) = ?",
                                (len(ARCHIVED_PREFIX), ARCHIVED_PREFIX)) as cursor:
            rows = await cursor.fetchall()
    finally:
        await conn.close()
    return {str(key)[len(ARCHIVED_PREFIX):]: str(value) for key, value in rows}


async def set_archived(db_path: Path, name: str, archived: bool) -> str | None:
    """Archive (or activate) `name`; the archive time now in force (None once active).

    An agent archived already keeps its first time; activating an active one changes nothing.
    """
    key = ARCHIVED_PREFIX + name
    conn = await connect(db_path)
    try:
        await conn.execute("BEGIN IMMEDIATE")
        try:
            async with conn.execute("SELECT value FROM settings WHERE key = ?",
                                    (key,)) as cursor:
                row = await cursor.fetchone()
            since = str(row[0]) if row else None
            if archived and since is None:
                since = datetime.now(UTC).isoformat(timespec="seconds")
                await conn.execute("INSERT INTO settings (key, value) VALUES (?, ?)",
                                   (key, since))
            elif not archived and since is not None:
                await conn.execute("DELETE FROM settings WHERE key = ?", (key,))
                since = None
            await conn.execute("COMMIT")
        except BaseException:
            await conn.execute("ROLLBACK")
            raise
    finally:
        await conn.close()
    return since
