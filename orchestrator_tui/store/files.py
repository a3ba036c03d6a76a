"""The database's files on disk: companions, backups, set-aside copies, header, holders.

Nothing here opens the file with SQLite, so nothing here can change it.
"""

from __future__ import annotations

import os
import re
import struct
from datetime import UTC, datetime
from pathlib import Path

COMPANIONS = ("-wal", "-shm", "-journal")
"""Files SQLite keeps beside a database; they belong to it and move with it."""
BACKUP_FOLDER = "backups"
STAMP = "%Y%m%dT%H%M%S.%fZ"
HEADER = b"SQLite format 3\x00"
HEADER_SIZE = 100
WAL_HEADER_SIZE = 32


def utc_stamp(when: datetime | None = None) -> str:
    """A UTC time for file names: sortable, no characters a shell or a folder dislikes."""
    return (when or datetime.now(UTC)).astimezone(UTC).strftime(STAMP)


def parse_stamp(text: str) -> datetime | None:
    """The time of a `utc_stamp`, or None if `text` is not one."""
    try:
        return datetime.strptime(text, STAMP).replace(tzinfo=UTC)
    except ValueError:
        return None


def companions(path: Path) -> list[Path]:
    """The database's companion files that exist now (write-ahead log, shared memory)."""
    return [Path(f"{path}{suffix}") for suffix in COMPANIONS if Path(f"{path}{suffix}").exists()]


def backup_folder(path: Path) -> Path:
    """Where the backups of the database `path` are kept: `<its folder>/backups`."""
    return path.parent / BACKUP_FOLDER


def backup_path(path: Path, when: datetime | None = None) -> Path:
    """The file a backup of `path` taken at `when` goes to: `backups/<stem>-<UTC time>.db`."""
    return backup_folder(path) / f"{path.stem}-{utc_stamp(when)}.db"


def backup_files(path: Path) -> list[tuple[Path, datetime]]:
    """The backups of `path` with their times, newest first."""
    folder = backup_folder(path)
    pattern = re.compile(rf"{re.escape(path.stem)}-(\d{{8}}T\d{{6}}\.\d{{6}}Z)\.db")
    found = []
    try:
        names = [entry.name for entry in folder.iterdir()]
    except OSError:
        return []
    for name in names:
        match = pattern.fullmatch(name)
        when = parse_stamp(match.group(1)) if match else None
        if when is not None:
            found.append((folder / name, when))
    return sorted(found, key=lambda item: item[1], reverse=True)


def aside_path(path: Path, label: str, when: datetime | None = None) -> Path:
    """Where `path` is moved when it is set aside: `state.db.<label>-<UTC time>`."""
    return path.with_name(f"{path.name}.{label}-{utc_stamp(when)}")


def header_problem(path: Path) -> str | None:
    """What is wrong with the file's SQLite header or length, or None if nothing is.

    An empty file is a new database. The header's page count is trusted only when its
    change counter matches its version-valid-for number, as SQLite itself does, and when no
    write-ahead log holds frames: a checkpoint cut short (by a full disk) may have written
    page 1 before the file could grow, and the log still holds the rest.
    """
    if held_here(path) is not False:
        # Closing a descriptor of a file drops every POSIX lock this process holds on it,
        # SQLite's included: with a connection open here, a raw read could let another
        # process checkpoint and delete the write-ahead log under it. SQLite checked the
        # file when that connection opened.
        return None
    try:
        size = path.stat().st_size
        if size == 0:
            return None
        with path.open("rb") as handle:
            header = handle.read(HEADER_SIZE)
    except FileNotFoundError:
        return None
    except OSError as error:
        return f"cannot read it: {error.strerror}"
    if len(header) < HEADER_SIZE:
        return f"it is truncated: {size} bytes, shorter than a database header"
    if not header.startswith(HEADER):
        return "it does not start with the SQLite header (not a database file)"
    page_size = struct.unpack(">H", header[16:18])[0]
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or page_size & (page_size - 1):
        return f"its header gives an impossible page size ({page_size})"
    counter, pages, valid_for = (struct.unpack(">I", header[at:at + 4])[0]
                                 for at in (24, 28, 92))
    if pages and counter == valid_for and size < pages * page_size and not _log_has_frames(path):
        return (f"it is truncated: {size} bytes, but its header says {pages} pages of "
                f"{page_size} bytes ({pages * page_size} bytes)")
    return None


def held_here(path: Path) -> bool | None:
    """Whether this process has `path` (or its log) open; None where it cannot tell."""
    try:
        targets = {str(path.resolve()), f"{path.resolve()}-wal"}
        entries = list(Path("/proc/self/fd").iterdir())
    except OSError:
        return None
    for entry in entries:
        try:
            if str(entry.readlink()) in targets:
                return True
        except OSError:
            continue
    return False


def _log_has_frames(path: Path) -> bool:
    try:
        return Path(f"{path}-wal").stat().st_size > WAL_HEADER_SIZE
    except OSError:
        return False


def open_by(path: Path, *, include_self: bool = False) -> list[int]:
    """Pids of processes that have the database (or its log) open, where visible.

    Reads `/proc/<pid>/fd`; processes of other users and systems without `/proc` are not
    seen, so an empty answer is a hint, not a proof.
    """
    targets = {str(path), f"{path}-wal"}
    found = []
    try:
        pids = [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]
    except OSError:
        return []
    for pid in pids:
        if pid == os.getpid() and not include_self:
            continue
        try:
            if any(str(fd.readlink()) in targets for fd in Path(f"/proc/{pid}/fd").iterdir()):
                found.append(pid)
        except OSError:
            continue
    return found


def command_line(pid: int) -> str:
    """A process's command line, shortened, for messages; empty if it cannot be read."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    text = " ".join(" ".join(part.decode(errors="replace") for part in raw.split(b"\0")).split())
    return text if len(text) <= 80 else text[:77] + "..."
