"""Opening the database: where it lives, its pragmas, its permissions, and migrations.

Every failure becomes a `StoreError` subclass whose message names the file and a way out:
busy (`DatabaseBusy`), damaged (`DatabaseCorrupt`), full (`DatabaseFull`), not writable
(`DatabaseReadOnly`) or written by a newer version (`DatabaseNewer`).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import aiosqlite

from orchestrator_tui.core.errors import StoreError
from orchestrator_tui.store import crashpoints
from orchestrator_tui.store.files import backup_files, command_line, header_problem, open_by
from orchestrator_tui.store.schema import MIGRATIONS, SCHEMA_VERSION

STATE_DIR = ".orchestrator"
DB_NAME = "state.db"
BUSY_TIMEOUT_MS = 15_000
BUSY_TIMEOUT_ENV = "ORCHESTRATOR_BUSY_TIMEOUT"
"""Seconds to wait for another process's lock before giving up (default 15)."""
NEARLY_FULL_BYTES = 1 << 20


class DatabaseBusy(StoreError):
    """Another process kept the database locked for longer than the busy timeout."""


class DatabaseCorrupt(StoreError):
    """The file is damaged or not a database; the message says how to restore or reset."""


class DatabaseFull(StoreError):
    """The database could not grow (disk full or size cap); what was committed is kept."""


class DatabaseReadOnly(StoreError):
    """The file or its folder cannot be written."""


class DatabaseNewer(StoreError):
    """The file was written by a newer version of this tool; it was left untouched."""


def busy_timeout_ms(environ: Mapping[str, str] | None = None) -> int:
    """How long to wait for a lock: `$ORCHESTRATOR_BUSY_TIMEOUT` seconds, else 15 s."""
    environ = os.environ if environ is None else environ
    raw = environ.get(BUSY_TIMEOUT_ENV, "").strip()
    if not raw:
        return BUSY_TIMEOUT_MS
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < 86_400:
        raise StoreError(f"{BUSY_TIMEOUT_ENV} must be a number of seconds from 0 to 86400, "
                         f"not {raw!r}")
    return int(seconds * 1000)


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
        if path.exists():
            raise DatabaseReadOnly(_permission_message(path, str(error.strerror))) from error
        raise DatabaseReadOnly(
            f"cannot create the database {path}: {error.strerror}; its folder {folder} must "
            "be writable (fix its permissions, or choose another file with --db FILE)"
        ) from error


def require_existing(path: Path) -> None:
    """Refuse to create a database where only reading was meant."""
    if not path.exists():
        raise StoreError(f"no database at {path}; run a workflow first or pass --db FILE")


def refuse_damaged(path: Path) -> None:
    """Raise `DatabaseCorrupt` if the file's header or length shows damage, without opening it
    with SQLite (so the failed open cannot change it)."""
    problem = header_problem(path)
    if problem:
        raise DatabaseCorrupt(f"database {path} is damaged or not a database: {problem}; the "
                              f"file was not changed. {ways_out(path)}")


def ways_out(path: Path) -> str:
    """What a user can do about a damaged database, naming the backup that would be used."""
    backups = backup_files(path)
    reset = "`orchestrator db reset --yes` starts an empty database"
    if not backups:
        return (f"No backup of it exists, so `orchestrator db restore` has nothing to put "
                f"back; {reset} (the file is moved aside, never deleted).")
    newest, when = backups[0]
    return (f"Ways out: `orchestrator db restore --yes` puts back the newest good backup "
            f"({len(backups)} kept, newest {newest.name} from {when:%Y-%m-%d %H:%M} UTC, "
            f"{_age(when)}), or {reset}; both move this file aside, never delete it.")


def _age(when: datetime) -> str:
    minutes = max(0, int((datetime.now(UTC) - when).total_seconds() // 60))
    if minutes < 120:
        return f"{minutes} min ago"
    return f"{minutes // 60} h ago" if minutes < 2880 else f"{minutes // 1440} days ago"


TEXT_CODES = (("locked", "SQLITE_BUSY"), ("busy", "SQLITE_BUSY"),
              ("not a database", "SQLITE_NOTADB"), ("malformed", "SQLITE_CORRUPT"),
              ("disk is full", "SQLITE_FULL"), ("readonly", "SQLITE_READONLY"),
              ("unable to open", "SQLITE_CANTOPEN"), ("disk I/O error", "SQLITE_IOERR"))
"""Codes guessed from the message, for errors that carry no SQLite error name."""


def error_code(error: BaseException) -> str:
    """The SQLite error name (`SQLITE_BUSY`, ...) of an error, from its message if need be."""
    code = getattr(error, "sqlite_errorname", None)
    if code:
        return str(code)
    text = str(error)
    return next((code for words, code in TEXT_CODES if words in text), "")


def describe(error: BaseException, path: Path) -> StoreError:
    """Turn an sqlite3 error into a user-facing message that names the file and a way out."""
    text, code = str(error), error_code(error)
    if code.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return DatabaseBusy(_busy_message(path))
    if code.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
        return DatabaseCorrupt(f"database {path} is damaged or not a database ({text}). "
                               f"{ways_out(path)}")
    if code.startswith("SQLITE_FULL") or (code.startswith("SQLITE_IOERR")
                                          and _nearly_full(path)):
        return DatabaseFull(f"disk full: the database {path} could not grow; free space and "
                            "run `orchestrator resume` (everything recorded before is kept)")
    if code.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM")):
        return DatabaseReadOnly(_permission_message(path, text))
    if code.startswith("SQLITE_IOERR"):
        return StoreError(f"database {path}: {text}; check the disk it is on, then retry "
                          "(what was committed before is kept)")
    return StoreError(f"database {path}: {text}")


def _nearly_full(path: Path) -> bool:
    """Whether the file system of `path` has under 1 MiB free (an I/O error is then ENOSPC)."""
    try:
        return shutil.disk_usage(path.parent).free < NEARLY_FULL_BYTES
    except OSError:
        return False


def _busy_message(path: Path) -> str:
    holders = [f"pid {pid}" + (f" ({line})" if (line := command_line(pid)) else "")
               for pid in open_by(path)[:3]]
    seconds = busy_timeout_ms() / 1000
    open_in = f" (open in {', '.join(holders)})" if holders else ""
    return (f"database {path} is busy: another orchestrator process holds it locked{open_in} "
            f"for longer than the {seconds:g} s this one waits; let it finish or stop it, then "
            f"retry ({BUSY_TIMEOUT_ENV}=SECONDS waits longer)")


def _permission_message(path: Path, text: str) -> str:
    folder = path.parent
    file_locked = path.exists() and not os.access(path, os.W_OK)
    folder_locked = not os.access(folder, os.W_OK)
    if file_locked and folder_locked:
        return (f"database {path} and its folder {folder} are read-only ({text}); SQLite "
                "writes both (the file, and its write-ahead log beside it): make them writable "
                "or choose another file with --db FILE")
    if file_locked:
        return (f"database {path} is read-only ({text}); make it writable (chmod u+w {path}) "
                "or choose another file with --db FILE")
    if folder_locked:
        return (f"database {path} cannot be written: its folder {folder} is not writable, and "
                f"SQLite keeps its write-ahead log beside the file ({text}); make the folder "
                "writable or choose another file with --db FILE")
    return (f"database {path} cannot be opened for writing ({text}); check the permissions of "
            "the file and its folder")


async def connect(path: Path, *, create: bool = True) -> aiosqlite.Connection:
    """Open the database in WAL mode with a busy timeout, migrated to this code's schema.

    Raises:
        StoreError: the file is missing (when not `create`); `DatabaseCorrupt`,
            `DatabaseBusy`, `DatabaseReadOnly`, or `DatabaseNewer` (the file left untouched).
    """
    if create:
        prepare_location(path)
    else:
        require_existing(path)
    refuse_damaged(path)
    timeout_ms = busy_timeout_ms()
    try:
        conn = await aiosqlite.connect(path, isolation_level=None, timeout=timeout_ms / 1000)
    except sqlite3.Error as error:
        raise describe(error, path) from error
    try:
        await conn.execute(f"PRAGMA busy_timeout = {timeout_ms}")
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
        raise DatabaseNewer(
            f"database {path} has schema version {version}, newer than this orchestrator "
            f"understands ({SCHEMA_VERSION}); the file was not changed. Upgrade orchestrator-tui "
            "(`pip install --upgrade orchestrator-tui`) to use it, or choose another file "
            "with --db FILE.")


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
        crashpoints.reached("migration")
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
