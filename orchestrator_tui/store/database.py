"""Opening the database: where it lives, its pragmas, its permissions, and migrations."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Mapping
from pathlib import Path

import aiosqlite

from orchestrator_tui.core.errors import StoreError
from orchestrator_tui.store.schema import MIGRATIONS, SCHEMA_VERSION

STATE_DIR = ".orchestrator"
DB_NAME = "state.db"
BUSY_TIMEOUT_MS = 15_000


def resolve_db_path(
    workspace: Path, db: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Path:
    """The database file: `--db`, else `$ORCHESTRATOR_DB`, else `.orchestrator/state.db`."""
    environ = os.environ if environ is None else environ
    chosen = db or environ.get("ORCHESTRATOR_DB")
    if chosen:
        return Path(chosen).expanduser().resolve()
    return (workspace / STATE_DIR / DB_NAME).resolve()


def prepare_location(path: Path) -> None:
    """Create the folder and an empty database file readable only by the user.

    A folder named `.orchestrator` gets a `.gitignore` of `*`, so nothing in it ever shows in
    the user's `git status`.
    """
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        if folder.name == STATE_DIR:
            ignore = folder / ".gitignore"
            if not ignore.exists():
                ignore.write_text("# Written by orchestrator: local state, never committed.\n*\n")
        if not path.exists():
            os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
    except OSError as error:
        raise StoreError(f"cannot create the database {path}: {error.strerror}") from error


def require_existing(path: Path) -> None:
    """Refuse to create a database where only reading was meant."""
    if not path.exists():
        raise StoreError(f"no database at {path}; run a workflow first or pass --db FILE")


def describe(error: sqlite3.Error, path: Path) -> StoreError:
    """Turn an sqlite3 error into a user-facing message that names the file and a way out."""
    text = str(error)
    if "locked" in text or "busy" in text:
        hint = "another process holds it locked; wait for it or stop it, then retry"
    elif "not a database" in text or "malformed" in text:
        hint = "the file is damaged; move it aside to start afresh (nothing else is touched)"
    elif "full" in text:
        hint = "the disk is full; free space and retry (what was recorded is kept)"
    elif "readonly" in text or "unable to open" in text:
        hint = "check the file's permissions and that its folder exists"
    else:
        hint = "see the message above"
    return StoreError(f"database {path}: {text}; {hint}")


async def connect(path: Path, *, create: bool = True) -> aiosqlite.Connection:
    """Open the database in WAL mode with a busy timeout, migrated to this code's schema.

    Raises:
        StoreError: the file is missing (when not `create`), damaged, locked past the
            timeout, or written by a newer version (which is then left untouched).
    """
    if create:
        prepare_location(path)
    else:
        require_existing(path)
    try:
        conn = await aiosqlite.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    except sqlite3.Error as error:
        raise describe(error, path) from error
    try:
        await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        await refuse_newer(conn, path)  # before anything (even WAL mode) changes the file
        await conn.execute("PRAGMA journal_mode = WAL")
        await conn.execute("PRAGMA synchronous = NORMAL")
        await migrate(conn, path)
    except BaseException as error:
        await conn.close()
        if isinstance(error, sqlite3.Error):
            raise describe(error, path) from error
        raise
    return conn


async def schema_version(conn: aiosqlite.Connection) -> int:
    """The schema version recorded in the file."""
    async with conn.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def refuse_newer(conn: aiosqlite.Connection, path: Path) -> None:
    """Raise `StoreError` if the file was written by a newer version of this tool."""
    version = await schema_version(conn)
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"database {path} has schema version {version}, newer than this orchestrator "
            f"understands ({SCHEMA_VERSION}); upgrade orchestrator-tui, or use another --db. "
            "The file was not changed.")


async def migrate(conn: aiosqlite.Connection, path: Path) -> None:
    """Bring an older schema up to date in place; refuse a newer one without writing."""
    if await schema_version(conn) == SCHEMA_VERSION:
        return
    await conn.execute("BEGIN IMMEDIATE")
    try:
        await refuse_newer(conn, path)
        version = await schema_version(conn)
        for number in range(version, SCHEMA_VERSION):
            for statement in split_statements(MIGRATIONS[number]):
                await conn.execute(statement)
            await conn.execute(f"PRAGMA user_version = {number + 1}")
        await conn.execute("COMMIT")
    except BaseException:
        await conn.execute("ROLLBACK")
        raise


def split_statements(script: str) -> list[str]:
    """Split a migration script into complete SQL statements."""
    statements, buffer = [], ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        statements.append(buffer.strip())
    return statements
