"""Workspace snapshots: git commits under our own ref, tar.gz archives elsewhere; restores that
leave the user's git state, ignored files and the state folder alone, and can be undone."""

from __future__ import annotations

import io
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from orchestrator_tui.core.errors import CheckpointError
from orchestrator_tui.engine.snapshots import (
    REF_PREFIX,
    FileSnapshot,
    drop_snapshot,
    git_root,
    restore_snapshot,
    take_snapshot,
)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True,
                          check=True).stdout


def init_repo(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    git(folder, "init", "-q", "-b", "main")
    git(folder, "config", "user.name", "Test User")
    git(folder, "config", "user.email", "test@example.com")
    return folder


def files_of(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file and symlink under `folder` except .git: content (or link target) and mode."""
    found = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).as_posix()
        if relative == ".git" or relative.startswith(".git/"):
            continue
        if path.is_symlink():
            found[relative] = ("-> " + str(path.readlink()), 0)
        elif path.is_file():
            found[relative] = (path.read_bytes().decode(errors="replace"),
                               stat.S_IMODE(path.stat().st_mode))
    return found


def without(files: dict[str, tuple[str, int]], *prefixes: str) -> dict[str, tuple[str, int]]:
    return {k: v for k, v in files.items() if not k.startswith(prefixes)}


def users_git_view(repo: Path) -> dict[str, str]:
    """What a user sees of their repository apart from the work tree."""
    return {"head": git(repo, "rev-parse", "HEAD"), "branch": git(repo, "symbolic-ref", "HEAD"),
            "branches": git(repo, "for-each-ref", "refs/heads", "refs/tags"),
            "index": git(repo, "diff", "--cached"), "stash": git(repo, "stash", "list"),
            "stash_ref": git(repo, "rev-parse", "refs/stash"),
            "reflog": git(repo, "reflog", "--all"), "ls_files": git(repo, "ls-files", "-s")}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository with staged, unstaged, untracked and ignored files, a stash entry and our
    state folder."""
    repo = init_repo(tmp_path / "repo")
    (repo / ".gitignore").write_text("*.log\nbuild/\n")
    (repo / "tracked.txt").write_text("tracked v1\n")
    (repo / "keep.txt").write_text("keep v1\n")
    (repo / "sub").mkdir()
    (repo / "sub" / "deep.txt").write_text("deep v1\n")
    (repo / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (repo / "run.sh").chmod(0o755)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "first")
    (repo / "keep.txt").write_text("stashed change\n")
    git(repo, "stash", "-q")
    (repo / "tracked.txt").write_text("tracked staged\n")
    git(repo, "add", "tracked.txt")
    (repo / "tracked.txt").write_text("tracked staged then edited\n")
    (repo / "keep.txt").write_text("keep unstaged\n")
    (repo / "untracked.txt").write_text("untracked\n")
    (repo / "debug.log").write_text("ignored log\n")
    (repo / "build").mkdir()
    (repo / "build" / "out.bin").write_text("ignored build\n")
    state = repo / ".orchestrator"
    state.mkdir()
    (state / ".gitignore").write_text("*\n")
    (state / "state.db").write_text("not really a database\n")
    return repo


def test_git_snapshot_and_restore_leave_the_users_git_state_alone(repo: Path) -> None:
    before_git = users_git_view(repo)
    before = files_of(repo)
    snap = take_snapshot(repo, "cp-one")
    assert snap.kind == "git" and snap.files == 6
    assert git(repo, "rev-parse", REF_PREFIX + "cp-one").strip() == snap.ref
    in_tree = git(repo, "ls-tree", "-r", "--name-only", snap.ref).split()
    assert sorted(in_tree) == [".gitignore", "keep.txt", "run.sh", "sub/deep.txt",
                               "tracked.txt", "untracked.txt"]
    assert git(repo, "show", f"{snap.ref}:tracked.txt") == "tracked staged then edited\n"
    assert users_git_view(repo) == before_git

    (repo / "keep.txt").write_text("edited after the checkpoint\n")
    (repo / "tracked.txt").unlink()
    (repo / "sub" / "deep.txt").unlink()
    (repo / "sub").rmdir()
    (repo / "added.txt").write_text("added\n")
    (repo / "newdir").mkdir()
    (repo / "newdir" / "x.txt").write_text("x\n")
    (repo / "run.sh").chmod(0o644)
    (repo / "debug.log").write_text("ignored log, changed\n")
    changed = files_of(repo)

    undo = take_snapshot(repo, "cp-undo")
    done = restore_snapshot(repo, snap, undo)
    after = files_of(repo)
    ignored = ("debug.log", "build/", ".orchestrator/")
    assert without(after, *ignored) == without(before, *ignored)
    assert stat.S_IMODE((repo / "run.sh").stat().st_mode) & 0o111
    assert {k: v for k, v in after.items() if k.startswith(ignored)} == \
        {k: v for k, v in changed.items() if k.startswith(ignored)}
    assert not (repo / "newdir").exists()
    assert (done.removed, done.kept) == (2, 0)
    assert users_git_view(repo) == before_git
    assert "M tracked.txt" in git(repo, "status", "--short")

    redo = take_snapshot(repo, "cp-redo")
    restore_snapshot(repo, undo, redo)
    assert files_of(repo) == changed
    assert users_git_view(repo) == before_git


def test_a_repository_without_commits(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "fresh")
    (repo / ".gitignore").write_text("*.tmp\n")
    (repo / "a.txt").write_text("a\n")
    (repo / "scratch.tmp").write_text("ignored\n")
    snap = take_snapshot(repo, "cp-fresh")
    assert snap.kind == "git" and snap.files == 2
    (repo / "a.txt").write_text("a changed\n")
    (repo / "b.txt").write_text("b\n")
    restore_snapshot(repo, snap, take_snapshot(repo, "cp-fresh-undo"))
    assert files_of(repo) == {".gitignore": ("*.tmp\n", 0o644), "a.txt": ("a\n", 0o644),
                              "scratch.tmp": ("ignored\n", 0o644)}
    assert subprocess.run(["git", "rev-parse", "--verify", "-q", "HEAD"], cwd=repo,
                          check=False).returncode != 0
    assert git(repo, "ls-files") == ""


def test_a_workspace_inside_a_larger_repository_and_protected_files(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "big")
    workspace = repo / "ws"
    workspace.mkdir()
    (workspace / "w.txt").write_text("w1\n")
    (workspace / "state.db").write_text("live database\n")
    (repo / "other.txt").write_text("o1\n")
    protect = [workspace / "state.db"]
    assert git_root(workspace) == repo.resolve()
    snap = take_snapshot(workspace, "cp-ws", protect=protect)
    assert snap.files == 1
    (workspace / "w.txt").write_text("w2\n")
    (workspace / "state.db").write_text("live database, moved on\n")
    (repo / "other.txt").write_text("o2\n")
    restore_snapshot(workspace, snap, take_snapshot(workspace, "cp-ws-undo", protect=protect),
                     protect=protect)
    assert (workspace / "w.txt").read_text() == "w1\n"
    assert (workspace / "state.db").read_text() == "live database, moved on\n"
    assert (repo / "other.txt").read_text() == "o2\n"
    drop_snapshot(workspace, "cp-ws", snap)
    assert REF_PREFIX + "cp-ws\n" not in git(repo, "for-each-ref", "--format=%(refname)")


def test_git_failures_name_the_command(repo: Path) -> None:
    with pytest.raises(CheckpointError, match="git update-ref") as caught:
        take_snapshot(repo, "bad id")
    assert "failed in" in str(caught.value)
    undo = take_snapshot(repo, "cp-now")
    with pytest.raises(CheckpointError, match="missing from the repository"):
        restore_snapshot(repo, FileSnapshot("git", "0" * 40), undo)


@pytest.fixture
def plain(tmp_path: Path) -> Path:
    """A folder outside any repository, with a symlink inside and one pointing outside."""
    folder = tmp_path / "plain"
    (folder / "src").mkdir(parents=True)
    (folder / "src" / "main.py").write_text("print('v1')\n")
    (folder / "tool.sh").write_text("#!/bin/sh\n")
    (folder / "tool.sh").chmod(0o750)
    (folder / "link.py").symlink_to("src/main.py")
    (tmp_path / "secret.txt").write_text("outside\n")
    (folder / "escape").symlink_to(tmp_path / "secret.txt")
    (folder / ".orchestrator").mkdir()
    (folder / ".orchestrator" / "state.db").write_text("db\n")
    assert git_root(folder) is None
    return folder


def test_archive_snapshot_and_restore(plain: Path, tmp_path: Path) -> None:
    before = files_of(plain)
    snap = take_snapshot(plain, "cp-arch")
    assert snap.kind == "archive" and snap.ref == ".orchestrator/checkpoints/cp-arch.tar.gz"
    assert snap.files == 3 and (plain / snap.ref).is_file()
    (plain / "src" / "main.py").write_text("print('v2')\n")
    (plain / "tool.sh").unlink()
    (plain / "extra").mkdir()
    (plain / "extra" / "new.txt").write_text("new\n")
    (plain / "link.py").unlink()
    changed = files_of(plain)
    undo = take_snapshot(plain, "cp-arch-undo")
    done = restore_snapshot(plain, snap, undo)
    after = files_of(plain)
    assert without(after, ".orchestrator/") == without(before, ".orchestrator/")
    assert (plain / ".orchestrator" / "state.db").read_text() == "db\n"
    assert (tmp_path / "secret.txt").read_text() == "outside\n"
    assert not (plain / "extra").exists()
    assert done.written == 3 and done.removed == 1
    restore_snapshot(plain, undo, take_snapshot(plain, "cp-arch-redo"))
    assert without(files_of(plain), ".orchestrator/") == without(changed, ".orchestrator/")


def test_archive_size_limit_leaves_nothing_behind(plain: Path) -> None:
    (plain / "big.bin").write_bytes(b"x" * 4096)
    with pytest.raises(CheckpointError, match="checkpoint_max_mb") as caught:
        take_snapshot(plain, "cp-big", max_bytes=1024)
    assert "MB of files" in str(caught.value) and "No checkpoint was written" in str(caught.value)
    folder = plain / ".orchestrator" / "checkpoints"
    assert not folder.exists() or not any(folder.iterdir())


def _evil_archive(plain: Path, name: str, member: tarfile.TarInfo) -> str:
    ref = f".orchestrator/checkpoints/{name}.tar.gz"
    (plain / ".orchestrator" / "checkpoints").mkdir(exist_ok=True)
    with tarfile.open(plain / ref, "w:gz") as tar:
        ok = tarfile.TarInfo("fine.txt")
        ok.size = 2
        tar.addfile(ok, io.BytesIO(b"ok"))
        tar.addfile(member, io.BytesIO(b"evil") if member.isreg() else None)
    return ref


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    info.size = 4 if kind == tarfile.REGTYPE else 0
    return info


@pytest.mark.parametrize(("member", "why"), [
    (_member("../evil.txt"), "'..'"),
    (_member("/tmp/evil.txt"), "absolute"),
    (_member("up", tarfile.SYMTYPE, "../../secret.txt"), "points outside"),
    (_member("abs", tarfile.SYMTYPE, "/etc/passwd"), "points outside"),
    (_member("hard", tarfile.LNKTYPE, "fine.txt"), "no hard links"),
    (_member(".orchestrator/state.db"), "lies in"),
])
def test_a_malicious_archive_is_refused_before_anything_changes(
        plain: Path, tmp_path: Path, member: tarfile.TarInfo, why: str) -> None:
    ref = _evil_archive(plain, "cp-evil", member)
    undo = take_snapshot(plain, "cp-evil-undo")
    before = files_of(plain)
    with pytest.raises(CheckpointError, match="is refused") as caught:
        restore_snapshot(plain, FileSnapshot("archive", ref), undo)
    assert why in str(caught.value)
    assert files_of(plain) == before
    assert not (tmp_path / "evil.txt").exists()


def test_an_archive_outside_our_folder_is_refused(plain: Path) -> None:
    undo = take_snapshot(plain, "cp-x")
    with pytest.raises(CheckpointError, match="is not under"):
        restore_snapshot(plain, FileSnapshot("archive", "../elsewhere.tar.gz"), undo)
