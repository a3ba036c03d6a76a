"""The app's own read connections to the database, opened when the file exists: one for the
recorded sessions, and the message bus's (`engine.bus.Bus`, for the bus's read queries)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiosqlite

from orchestrator_tui.engine.bus import Bus
from orchestrator_tui.store.database import connect


def _exists(path: Path) -> bool:
    return path.exists()


class Reader:
    """One aiosqlite connection for the app's reads; None until the database exists."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self._conn: aiosqlite.Connection | None = None
        self._bus: Bus | None = None
        self._opening = asyncio.Lock()

    async def get(self) -> aiosqlite.Connection | None:
        """The connection, opened on first use; None while there is no database file."""
        async with self._opening:
            if self._conn is None:
                if not _exists(self.db_path):
                    return None
                self._conn = await connect(self.db_path, create=False)
        return self._conn

    async def bus(self) -> Bus | None:
        """The message bus, opened on first use (after the database has been opened and
        migrated by `get`); None while there is no database file."""
        if await self.get() is None:
            return None
        async with self._opening:
            if self._bus is None:
                self._bus = await Bus.open(self.db_path, migrate=False)
        return self._bus

    async def close(self) -> None:
        """Close the connections that are open."""
        if self._bus is not None:
            bus, self._bus = self._bus, None
            await bus.close()
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await conn.close()
