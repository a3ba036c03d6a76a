"""Backups of the database, and the two ways back from a bad one: restore and reset.

A backup is SQLite's online backup of the live file (consistent even while an engine
writes) into `<db folder>/backups/<stem>-<UTC time>.db`, mode 0600, checked before it is
kept; only the newest `keep` are kept. Restoring or resetting never deletes the current
file: it is moved aside with its write-ahead log, as `state.db.corrupt-<UTC time>` when it
fails the check and `state.db.replaced-<UTC time>` when it passes.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import platformdirs

from orchestrator_tui.core.errors import StoreError
from orchestrator_tui.store.database import (
    DatabaseCorrupt,
    describe,
    refuse_damaged,
    require_existing,
    ways_out,
)
from orchestrator_tui.store.files import (
    aside_path,
    backup_files,
    backup_folder,
    backup_path,
    command_line,
    companions,
    open_by,
    utc_stamp,
)
from orchestrator_tui.store.integrity import check_file, open_read_only

DEFAULT_EVERY_MINUTES = 30.0
"""An engine start backs the database up when the newest backup is older than this."""
DEFAULT_KEEP = 5
"""How many backups are kept; older ones are deleted when a new one is taken."""


@dataclass(frozen=True, slots=True)
class Backup:
    """One backup file and when it was taken."""

    path: Path
    taken_at: datetime
    size: int


@dataclass(frozen=True, slots=True)
class Replaced:
    """What a restore or reset did: the backup used (if any), where the old files went,
    and the damaged backups passed over with the reason."""

    backup: Backup | None
    moved: tuple[Path, ...]
    skipped: tuple[tuple[Backup, str], ...] = ()


def list_backups(db_path: Path) -> list[Backup]:
    """The backups of `db_path`, newest first."""
    found = []
    for path, when in backup_files(db_path):
        try:
            found.append(Backup(path, when, path.stat().st_size))
        except OSError:
            continue
    return found


def take_backup(db_path: Path, *, keep: int = DEFAULT_KEEP) -> Backup:
    """Back the database up now, check the copy, and keep only the newest `keep` backups.

    Raises:
        DatabaseCorrupt: the database fails the check (no backup is kept of it, so a
            damaged copy never pushes a good one out).
        StoreError: the database is busy, or the backup cannot be written.
    """
    require_existing(db_path)
    refuse_damaged(db_path)
    folder = backup_folder(db_path)
    when = datetime.now(UTC)
    target = backup_path(db_path, when)
    partial = target.with_name(target.name + ".partial")
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        os.close(os.open(partial, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600))
    except OSError as error:
        raise StoreError(f"cannot write backups into {folder}: {error.strerror}; make the "
                         "folder writable") from error
    try:
        _copy(db_path, partial, target)
        report = check_file(partial)
        if not report.ok:
            raise DatabaseCorrupt(f"database {db_path} fails the check, so no backup was "
                                  f"taken: {'; '.join(report.problems)}. {ways_out(db_path)}")
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    prune(db_path, keep)
    return Backup(target, when, target.stat().st_size)


def _copy(db_path: Path, partial: Path, target: Path) -> None:
    """SQLite's online backup of `db_path` into `partial`, as a self-contained file."""
    try:
        source = open_read_only(db_path)
    except sqlite3.Error as error:
        raise describe(error, db_path) from error
    try:
        copy = sqlite3.connect(partial, isolation_level=None)
        try:
            source.backup(copy)
            copy.execute("PRAGMA journal_mode = DELETE")  # no -wal file beside a backup
        finally:
            copy.close()
    except sqlite3.Error as error:
        failure = describe(error, db_path)
        if isinstance(failure, DatabaseCorrupt):
            raise failure from error
        raise StoreError(f"backup of {db_path} into {target} failed: {error}; "
                         "free space or fix permissions of the backups folder") from error
    finally:
        source.close()


def prune(db_path: Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` backups of `db_path`; return what was deleted."""
    removed = []
    for old in list_backups(db_path)[max(keep, 1):]:
        old.path.unlink(missing_ok=True)
        removed.append(old.path)
    return removed


def auto_backup(db_path: Path, *, every_minutes: float = DEFAULT_EVERY_MINUTES,
                keep: int = DEFAULT_KEEP) -> Backup | None:
    """Back up if the newest backup is older than `every_minutes` (or there is none) and the
    database records at least one session; return the new backup, if one was taken."""
    backups = list_backups(db_path)
    if backups and datetime.now(UTC) - backups[0].taken_at < timedelta(minutes=every_minutes):
        return None
    if not _has_sessions(db_path):
        return None
    return take_backup(db_path, keep=keep)


def _has_sessions(db_path: Path) -> bool:
    conn = open_read_only(db_path)
    try:
        return bool(conn.execute("SELECT EXISTS (SELECT 1 FROM sessions)").fetchone()[0])
    except sqlite3.OperationalError:
        return False  # no sessions table yet
    finally:
        conn.close()


def find_backup(db_path: Path, name: str) -> Backup:
    """The backup named `name` (its file name, a unique prefix of it, or its path).

    Only files in the backups folder are accepted, so a typed name cannot point elsewhere.

    Raises:
        StoreError: no backup, or more than one, matches.
    """
    backups = list_backups(db_path)
    wanted = Path(name).name
    exact = [b for b in backups if b.path.name == wanted]
    matches = exact or [b for b in backups if b.path.name.startswith(wanted)]
    if os.sep in name and matches and Path(name).resolve() != matches[0].path.resolve():
        matches = []
    if len(matches) == 1:
        return matches[0]
    folder = backup_folder(db_path)
    if not matches:
        known = ", ".join(b.path.name for b in backups[:5]) or "none"
        raise StoreError(f"no backup named {name!r} in {folder} (backups: {known})")
    raise StoreError(f"{name!r} matches {len(matches)} backups in {folder}; give more of "
                     "the name")


def choose_backup(db_path: Path, name: str | None = None,
                  ) -> tuple[Backup, list[tuple[Backup, str]]]:
    """The backup to restore: `name`, else the newest that passes the check; and the damaged
    ones passed over.

    Raises:
        StoreError: the named backup is damaged, or no good backup exists.
    """
    if name is not None:
        chosen = find_backup(db_path, name)
        report = check_file(chosen.path)
        if not report.ok:
            raise DatabaseCorrupt(f"backup {chosen.path} is damaged: "
                                  + "; ".join(report.problems)
                                  + "; choose another (`orchestrator db backups` lists them)")
        return chosen, []
    skipped: list[tuple[Backup, str]] = []
    for candidate in list_backups(db_path):
        report = check_file(candidate.path)
        if report.ok:
            return candidate, skipped
        skipped.append((candidate, "; ".join(report.problems)))
    found = f"all {len(skipped)} backups are damaged" if skipped else "there is no backup"
    raise StoreError(f"cannot restore {db_path}: {found} in {backup_folder(db_path)}; "
                     "`orchestrator db reset --yes` moves the file aside and starts empty")


def refuse_if_open(db_path: Path) -> None:
    """Raise `StoreError` if a process (this one included) has the database open."""
    pids = open_by(db_path, include_self=True)
    if pids:
        who = ", ".join(f"pid {pid}" + (" (this process)" if pid == os.getpid() else
                                        f" ({command_line(pid)})") for pid in pids[:3])
        raise StoreError(f"database {db_path} is open in {who}; stop that process first "
                         "(`orchestrator abort` ends a running session), then retry")


def damaged(db_path: Path) -> bool:
    """Whether the database file exists and fails the check."""
    return db_path.exists() and not check_file(db_path).ok


def move_aside(db_path: Path, label: str) -> list[Path]:
    """Rename the database and its companions to `<name>.<label>-<UTC time>[-wal|-shm]`.

    The companions go first, so a crash half-way never leaves a log beside the wrong file.
    """
    target = aside_path(db_path, label)
    moved = []
    for companion in companions(db_path):
        suffix = companion.name[len(db_path.name):]
        moved.append(companion.replace(f"{target}{suffix}"))
    if db_path.exists():
        moved.insert(0, db_path.replace(target))
    return moved


def restore(db_path: Path, name: str | None = None) -> Replaced:
    """Put back a good backup (`name`, else the newest good one); the current file and its
    companions are moved aside first, never deleted.

    Raises:
        StoreError: the database is open in a process, or no good backup exists.
    """
    refuse_if_open(db_path)
    backup, skipped = choose_backup(db_path, name)
    label = aside_label(db_path)
    staging = db_path.with_name(db_path.name + ".restoring")
    try:
        os.close(os.open(staging, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600))
        shutil.copyfile(backup.path, staging)
        with staging.open("rb+") as handle:
            os.fsync(handle.fileno())
        moved = move_aside(db_path, label)
        staging.replace(db_path)
    except OSError as error:
        staging.unlink(missing_ok=True)
        raise StoreError(f"cannot restore {db_path} from {backup.path}: {error.strerror}; "
                         "check free space and the folder's permissions") from error
    return Replaced(backup, tuple(moved), tuple(skipped))


def reset(db_path: Path) -> Replaced:
    """Move the database and its companions aside so the next open starts an empty one.

    Raises:
        StoreError: the database is open in a process, or cannot be moved.
    """
    refuse_if_open(db_path)
    label = aside_label(db_path)
    try:
        return Replaced(None, tuple(move_aside(db_path, label)))
    except OSError as error:
        raise StoreError(f"cannot move {db_path} aside: {error.strerror}; check the "
                         "folder's permissions") from error


def aside_label(db_path: Path) -> str:
    """`corrupt` if the database fails the check (or cannot be read), else `replaced`."""
    try:
        return "corrupt" if damaged(db_path) else "replaced"
    except StoreError:
        return "corrupt"


def rescue_path(session_id: str) -> Path:
    """Where a database deleted while in use is saved: the user's state folder."""
    folder = Path(platformdirs.user_state_dir("orchestrator")) / "rescued"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return folder / f"state-{session_id}-{utc_stamp()}.db"
