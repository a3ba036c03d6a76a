"""Snapshots of a workspace's files for checkpoints, and restoring them.

In a git work tree a snapshot is a commit of the whole work tree as it is (tracked changes and
untracked files that .gitignore does not exclude), built in a temporary index and kept under
`refs/orchestrator/checkpoints/<id>`: the user's HEAD, branches, index, stash and reflogs are
never touched. Elsewhere it is a tar.gz archive under `.orchestrator/checkpoints/`
(see `engine/archives.py`).

A restore needs the snapshot of what is there now (the undo point), taken by the caller just
before: only files saved in it are ever removed or overwritten, so ignored files, the
`.orchestrator/` folder, `.git` and protected files (the database) are left alone. Restores act
on the workspace folder only, even when the repository around it is larger.

Everything here is synchronous and safe to run in a worker thread.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

from orchestrator_tui.core.errors import CheckpointError
from orchestrator_tui.engine import archives
from orchestrator_tui.engine.archives import DEFAULT_MAX_MB, RestoredFiles, is_ours

REF_PREFIX = "refs/orchestrator/checkpoints/"
SIGNATURE = {"GIT_AUTHOR_NAME": "orchestrator", "GIT_AUTHOR_EMAIL": "orchestrator@localhost",
             "GIT_COMMITTER_NAME": "orchestrator", "GIT_COMMITTER_EMAIL": "orchestrator@localhost"}
INHERITED_GIT_VARIABLES = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_PREFIX",
                           "GIT_OBJECT_DIRECTORY", "GIT_NAMESPACE")
GITLINK = "160000"

__all__ = ["DEFAULT_MAX_MB", "FileSnapshot", "RestoredFiles", "drop_snapshot", "git_root",
           "restore_snapshot", "take_snapshot"]


@dataclass(frozen=True, slots=True)
class FileSnapshot:
    """Where a snapshot is: kind "git" (ref = commit id) or "archive" (ref = the archive's path
    relative to the workspace); with the bytes and number of workspace files it holds."""

    kind: str
    ref: str
    size_bytes: int = 0
    files: int = 0


def take_snapshot(workspace: Path, checkpoint_id: str, *, message: str = "",
                  max_bytes: int = DEFAULT_MAX_MB * 1024 * 1024,
                  protect: Collection[Path] = ()) -> FileSnapshot:
    """Snapshot the workspace's files now: a git commit in a work tree, else an archive.

    `protect` names files never saved nor restored (the live database and its journals).

    Raises:
        CheckpointError: git failed (naming the command and its message), the archive would
            be over `max_bytes`, or the workspace cannot be read.
    """
    workspace = workspace.resolve()
    root = git_root(workspace)
    if root is None:
        ref, size, files = archives.write_archive(workspace, checkpoint_id, max_bytes=max_bytes,
                                                  protect=protect)
        return FileSnapshot("archive", ref, size, files)
    commit = _git_commit(root, checkpoint_id, message or f"orchestrator checkpoint "
                                                         f"{checkpoint_id}", protect)
    entries = _tree(root, commit, _prefix(root, workspace))
    return FileSnapshot("git", commit, sum(size for _mode, _sha, size in entries.values()),
                        len(entries))


def restore_snapshot(workspace: Path, target: FileSnapshot, undo: FileSnapshot, *,
                     protect: Collection[Path] = ()) -> RestoredFiles:
    """Make the workspace's files equal to `target`; `undo` is the snapshot just taken of them.

    Files saved in `undo` but absent from `target` are removed; files of `target` are written
    unless something unsaved (an ignored file) is in the way, which is then left as it is and
    counted in `kept`.

    Raises:
        CheckpointError: the snapshot is missing or damaged, or git failed.
    """
    workspace = workspace.resolve()
    if target.kind == "archive":
        return archives.restore_archive(workspace, target.ref, _saved(workspace, undo),
                                        protect=protect)
    if target.kind != "git":
        raise CheckpointError(f"unknown snapshot kind {target.kind!r}")
    root = git_root(workspace)
    if root is None:
        raise CheckpointError(f"the checkpoint holds a git commit, but {workspace} is no longer "
                              "in a git repository")
    _require_commit(root, target.ref)
    prefix = _prefix(root, workspace)
    wanted = {_strip(path, prefix): entry for path, entry in _tree(root, target.ref, prefix)
              .items() if entry[0] != GITLINK}
    saved = _saved(workspace, undo)
    previous = _tree(root, undo.ref, prefix) if undo.kind == "git" else {}
    guarded = archives.relative_set(workspace, protect)
    removed = archives.remove_saved(workspace, saved - set(wanted), guarded)
    write, kept = [], 0
    for path, entry in sorted(wanted.items()):
        if is_ours(path) or path in guarded:
            continue
        if path not in saved and os.path.lexists(workspace / path):
            kept += 1  # an ignored file is in the way: never overwrite what was not saved
        elif previous.get(_join(prefix, path)) != entry or not os.path.lexists(workspace / path):
            write.append(_join(prefix, path))
    if write:
        with tempfile.TemporaryDirectory(prefix="orchestrator-index-") as folder:
            env = _git_env(index=Path(folder) / "index")
            _git(["read-tree", target.ref], root, env=env)
            _git(["checkout-index", "-f", "-z", "--stdin"], root, env=env,
                 stdin="\0".join(write).encode())
    return RestoredFiles(written=len(write), removed=removed, kept=kept)


def drop_snapshot(workspace: Path, checkpoint_id: str, snapshot: FileSnapshot) -> None:
    """Delete a snapshot (its ref or its archive); a missing one is not an error."""
    workspace = workspace.resolve()
    if snapshot.kind == "archive":
        archives.archive_path(workspace, snapshot.ref).unlink(missing_ok=True)
        return
    root = git_root(workspace)
    if root is not None:
        _git(["update-ref", "-d", REF_PREFIX + checkpoint_id], root)


def git_root(workspace: Path) -> Path | None:
    """The top of the git work tree holding `workspace`, or None outside one (or without git).

    Raises:
        CheckpointError: git refuses the repository (for example one owned by another user).
    """
    try:
        done = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=workspace,
                              env=_git_env(), capture_output=True, check=False)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise CheckpointError(f"cannot run git in {workspace}: {error.strerror}") from error
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip()
        if "not a git repository" in message:
            return None
        raise CheckpointError(f"`git rev-parse --show-toplevel` failed in {workspace}: "
                              f"{message}")
    return Path(os.fsdecode(done.stdout.rstrip(b"\n"))).resolve()


# ----- git -----------------------------------------------------------------------------------


def _git_commit(root: Path, checkpoint_id: str, message: str,
                protect: Collection[Path]) -> str:
    """Commit the work tree as it is, from a temporary index, under our own ref."""
    head = _head(root)
    guarded = sorted(archives.relative_set(root, protect))
    with tempfile.TemporaryDirectory(prefix="orchestrator-index-") as folder:
        env = _git_env(index=Path(folder) / "index")
        if head:
            _git(["read-tree", head], root, env=env)
        _git(["add", "-A"], root, env=env)
        if guarded:
            _git(["rm", "--cached", "-q", "--ignore-unmatch", "--", *guarded], root, env=env)
        tree = _git(["write-tree"], root, env=env).decode().strip()
    parents = ["-p", head] if head else []
    commit = _git(["commit-tree", tree, *parents, "-m", message], root,
                  env=_git_env(signature=True)).decode().strip()
    _git(["update-ref", REF_PREFIX + checkpoint_id, commit], root)
    return commit


def _head(root: Path) -> str | None:
    """The commit HEAD points at, or None in a repository with no commits yet."""
    done = subprocess.run(["git", "rev-parse", "--verify", "-q", "HEAD^{commit}"], cwd=root,
                          env=_git_env(), capture_output=True, check=False)
    if done.returncode != 0:
        return None
    return done.stdout.decode().strip() or None


def _require_commit(root: Path, ref: str) -> None:
    if not (len(ref) in (40, 64) and all(ch in "0123456789abcdef" for ch in ref)):
        raise CheckpointError(f"the checkpoint's snapshot {ref!r} is not a commit id")
    done = subprocess.run(["git", "cat-file", "-e", f"{ref}^{{commit}}"], cwd=root,
                          env=_git_env(), capture_output=True, check=False)
    if done.returncode != 0:
        raise CheckpointError(f"commit {ref} of the checkpoint is missing from the repository "
                              f"at {root} (was the ref {REF_PREFIX}... deleted?)")


def _tree(root: Path, commit: str, prefix: str) -> dict[str, tuple[str, str, int]]:
    """Every file of a commit under `prefix`: path (from the root) -> (mode, object, size)."""
    spec = ["--", prefix] if prefix else []
    out = _git(["ls-tree", "-r", "-l", "-z", "--full-tree", commit, *spec], root)
    entries = {}
    for record in out.split(b"\0"):
        if not record:
            continue
        meta, _, name = record.partition(b"\t")
        mode, _kind, sha, size = meta.decode().split()
        entries[os.fsdecode(name)] = (mode, sha, int(size) if size.isdigit() else 0)
    return entries


def _saved(workspace: Path, undo: FileSnapshot) -> set[str]:
    """The workspace-relative paths a snapshot holds."""
    if undo.kind == "archive":
        return archives.archive_files(workspace, undo.ref)
    root = git_root(workspace)
    if root is None:
        raise CheckpointError(f"{workspace} is not in a git repository")
    prefix = _prefix(root, workspace)
    return {_strip(path, prefix) for path, entry in _tree(root, undo.ref, prefix).items()
            if entry[0] != GITLINK}


def _prefix(root: Path, workspace: Path) -> str:
    relative = workspace.relative_to(root).as_posix()
    return "" if relative == "." else relative


def _strip(path: str, prefix: str) -> str:
    return path[len(prefix) + 1:] if prefix else path


def _join(prefix: str, path: str) -> str:
    return f"{prefix}/{path}" if prefix else path


def _git_env(*, index: Path | None = None, signature: bool = False) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if key not in INHERITED_GIT_VARIABLES}
    env["GIT_TERMINAL_PROMPT"] = "0"
    env["GIT_LITERAL_PATHSPECS"] = "1"  # file names, never patterns
    if index is not None:
        env["GIT_INDEX_FILE"] = str(index)
    if signature:
        env.update(SIGNATURE)
    return env


def _git(args: list[str], cwd: Path, *, env: Mapping[str, str] | None = None,
         stdin: bytes | None = None) -> bytes:
    """Run one git command; raise `CheckpointError` naming it and its message if it fails."""
    try:
        done = subprocess.run(["git", *args], cwd=cwd, env=dict(env or _git_env()), input=stdin,
                              capture_output=True, check=True)
    except FileNotFoundError as error:
        raise CheckpointError("git is not installed, but the workspace is a git "
                              "repository") from error
    except subprocess.CalledProcessError as error:
        message = error.stderr.decode(errors="replace").strip() or "no message"
        raise CheckpointError(f"`git {' '.join(args[:3])}` failed in {cwd} (exit "
                              f"{error.returncode}): {message}") from error
    return done.stdout
