"""Workspace snapshots as tar.gz archives, for folders that are not in a git repository.

An archive lives at `.orchestrator/checkpoints/<id>.tar.gz` and holds the workspace's files,
folders and symlinks (modes kept), except the `.orchestrator/` and `.git` folders, protected
files, and symlinks that are absolute or point outside the workspace. Its input is limited in
size; over the limit nothing is written. Restoring checks every member before changing
anything, and never writes outside the workspace.
"""

from __future__ import annotations

import os
import re
import stat
import tarfile
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from orchestrator_tui.core.errors import CheckpointError
from orchestrator_tui.store.database import STATE_DIR

DEFAULT_MAX_MB = 200
ARCHIVE_FOLDER = "checkpoints"
NEVER_SAVED = (STATE_DIR, ".git")
ARCHIVE_REF = re.compile(rf"{re.escape(STATE_DIR)}/{ARCHIVE_FOLDER}/[A-Za-z0-9][A-Za-z0-9_-]*"
                         r"\.tar\.gz")
CHECKPOINT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


@dataclass(frozen=True, slots=True)
class RestoredFiles:
    """What a restore did to the files: written, removed, and left alone (unsaved, in the way)."""

    written: int
    removed: int
    kept: int


def is_ours(path: str) -> bool:
    """Whether a relative path lies in a folder no snapshot saves or restores."""
    return any(part in NEVER_SAVED for part in PurePosixPath(path).parts)


def relative_set(base: Path, paths: Collection[Path]) -> set[str]:
    """The paths lying inside `base`, relative to it (posix), the others dropped."""
    inside = set()
    for path in paths:
        try:
            inside.add(Path(path).resolve().relative_to(base).as_posix())
        except ValueError:
            continue
    return inside


def write_archive(workspace: Path, checkpoint_id: str, *, max_bytes: int,
                  protect: Collection[Path] = ()) -> tuple[str, int, int]:
    """Archive the workspace; return (path relative to it, bytes of input, files).

    Raises:
        CheckpointError: over `max_bytes` (naming the size and the setting), or unreadable;
            no partial archive is left behind.
    """
    if not CHECKPOINT_ID.fullmatch(checkpoint_id):
        raise CheckpointError(f"checkpoint id {checkpoint_id!r} cannot name an archive")
    entries, total, files = _collect(workspace, relative_set(workspace, protect))
    if total > max_bytes:
        raise CheckpointError(
            f"the workspace {workspace} holds {_mb(total)} of files, more than the "
            f"{_mb(max_bytes)} a checkpoint archives outside a git repository (setting "
            "checkpoint_max_mb); raise that setting or make the folder a git repository. "
            "No checkpoint was written.")
    folder = _state_folder(workspace) / ARCHIVE_FOLDER
    ref = f"{STATE_DIR}/{ARCHIVE_FOLDER}/{checkpoint_id}.tar.gz"
    partial = folder / f".{checkpoint_id}.partial"
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        with tarfile.open(partial, "w:gz") as tar:
            for relative in entries:
                try:
                    tar.add(workspace / relative, arcname=relative, recursive=False)
                except FileNotFoundError:
                    continue  # removed since the walk
        partial.replace(workspace / ref)
    except (OSError, tarfile.TarError) as error:
        partial.unlink(missing_ok=True)
        raise CheckpointError(f"cannot write the checkpoint archive {workspace / ref}: "
                              f"{error}") from error
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return ref, total, files


def archive_path(workspace: Path, ref: str) -> Path:
    """The archive named by a checkpoint, checked to be one of ours."""
    if not ARCHIVE_REF.fullmatch(ref):
        raise CheckpointError(f"the checkpoint's archive {ref!r} is not under "
                              f"{STATE_DIR}/{ARCHIVE_FOLDER}/")
    return workspace / ref


def archive_files(workspace: Path, ref: str) -> set[str]:
    """The files and symlinks an archive holds, relative to the workspace (checked)."""
    path = _existing(workspace, ref)
    try:
        with tarfile.open(path, "r:gz") as tar:
            return {_checked_name(path, member) for member in tar.getmembers()
                    if not member.isdir()}
    except (OSError, tarfile.TarError) as error:
        raise CheckpointError(f"cannot read the checkpoint archive {path}: {error}") from error


def restore_archive(workspace: Path, ref: str, saved: set[str], *,
                    protect: Collection[Path] = ()) -> RestoredFiles:
    """Make the workspace equal to an archive; `saved` are the files the undo point holds.

    Raises:
        CheckpointError: the archive is missing, damaged, or has a member that could land
            outside the workspace (then nothing was changed).
    """
    path = _existing(workspace, ref)
    guarded = relative_set(workspace, protect)
    try:
        with tarfile.open(path, "r:gz") as tar:
            checked = [(member, _checked_name(path, member)) for member in tar.getmembers()]
            wanted = {name for member, name in checked if not member.isdir()}
            removed = remove_saved(workspace, saved - wanted, guarded)
            written, kept, folders = 0, 0, []
            for member, name in checked:
                target = workspace / name
                if name in guarded:
                    continue
                in_the_way = os.path.lexists(target) and (
                    target.is_symlink() if member.isdir() else name not in saved)
                if in_the_way or not inside(workspace, target.parent):
                    kept += 1
                    continue
                if not member.isdir() and target.is_symlink():
                    target.unlink()
                member.name = name
                tar.extract(member, workspace, filter="data")
                if member.isdir():
                    folders.append((target, member.mode))
                elif member.isreg():
                    target.chmod(stat.S_IMODE(member.mode) & 0o777)
                written += not member.isdir()
            for folder, mode in reversed(folders):
                folder.chmod(stat.S_IMODE(mode) & 0o777 | stat.S_IRWXU)
    except (OSError, tarfile.TarError) as error:
        raise CheckpointError(f"restoring the archive {path} failed: {error}") from error
    return RestoredFiles(written=written, removed=removed, kept=kept)


def remove_saved(workspace: Path, paths: Collection[str], guarded: Collection[str]) -> int:
    """Remove these files and symlinks (never folders named in `NEVER_SAVED`, never protected
    files, never through a symlink out of the workspace), then the folders left empty."""
    removed, parents = 0, set()
    for relative in sorted(paths):
        target = workspace / relative
        if is_ours(relative) or relative in guarded or not inside(workspace, target.parent):
            continue
        if target.is_symlink() or target.is_file():
            target.unlink()
            removed += 1
            parents.add(target.parent)
    for parent in sorted(parents, key=lambda p: len(p.parts), reverse=True):
        folder = parent
        while folder != workspace and inside(workspace, folder):
            try:
                folder.rmdir()
            except OSError:
                break
            folder = folder.parent
    return removed


def inside(workspace: Path, path: Path) -> bool:
    """Whether `path`, symlinks resolved, is the workspace or lies in it."""
    real = os.path.realpath(path)
    return real == str(workspace) or real.startswith(str(workspace) + os.sep)


def _collect(workspace: Path, guarded: set[str]) -> tuple[list[str], int, int]:
    """What an archive of the workspace holds: entries (folders first), bytes, files."""
    entries: list[str] = []
    total = files = 0

    def fail(error: OSError) -> None:
        raise CheckpointError(f"cannot read {error.filename} for a checkpoint: "
                              f"{error.strerror}") from error

    for current, dirnames, filenames in os.walk(workspace, onerror=fail):
        here = Path(current)
        descend = []
        for name in sorted(dirnames):
            relative = (here / name).relative_to(workspace).as_posix()
            if is_ours(relative):
                continue
            if (here / name).is_symlink():
                filenames.append(name)
            else:
                descend.append(name)
                entries.append(relative)
        dirnames[:] = descend
        for name in sorted(filenames):
            full = here / name
            relative = full.relative_to(workspace).as_posix()
            if is_ours(relative) or relative in guarded:
                continue
            info = full.lstat()
            if stat.S_ISREG(info.st_mode) or (stat.S_ISLNK(info.st_mode)
                                              and _link_stays_inside(workspace, full)):
                entries.append(relative)
                files += 1
                total += info.st_size if stat.S_ISREG(info.st_mode) else 0
    return entries, total, files


def _link_stays_inside(workspace: Path, link: Path) -> bool:
    target = link.readlink()
    return not target.is_absolute() and inside(workspace, link) and \
        not _climbs_out(link.relative_to(workspace).as_posix(), str(target))


def _climbs_out(name: str, link_target: str) -> bool:
    """Whether a relative symlink at `name` points above the folder holding `name`'s root."""
    return os.path.normpath(str(PurePosixPath(name).parent / link_target)).startswith("..")


def _checked_name(archive: Path, member: tarfile.TarInfo) -> str:
    """The member's path if it is safe to extract into the workspace, else an error."""
    name = member.name
    parts = PurePosixPath(name).parts
    why = None
    if not parts or name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name):
        why = "its path is absolute or empty"
    elif ".." in parts:
        why = "its path climbs out with '..'"
    elif is_ours(name):
        why = f"it lies in {' or '.join(NEVER_SAVED)}"
    elif not (member.isreg() or member.isdir() or member.issym()):
        why = "only files, folders and symlinks are restored (no hard links or devices)"
    elif member.issym() and (PurePosixPath(member.linkname).is_absolute()
                             or _climbs_out(name, member.linkname)):
        why = f"its symlink points outside the workspace ({member.linkname})"
    if why:
        raise CheckpointError(f"archive {archive}: member {name!r} is refused: {why}; "
                              "nothing was changed")
    return PurePosixPath(*[part for part in parts if part != "."]).as_posix()


def _existing(workspace: Path, ref: str) -> Path:
    path = archive_path(workspace, ref)
    if not path.is_file():
        raise CheckpointError(f"the checkpoint archive {path} is missing")
    return path


def _state_folder(workspace: Path) -> Path:
    """The workspace's `.orchestrator` folder, created private with a `.gitignore` of `*`."""
    folder = workspace / STATE_DIR
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        ignore = folder / ".gitignore"
        if not ignore.exists():
            ignore.write_text("# Written by orchestrator: local state, never committed.\n*\n")
    except OSError as error:
        raise CheckpointError(f"cannot create {folder}: {error.strerror}") from error
    return folder


def _mb(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB"
