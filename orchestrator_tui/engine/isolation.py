"""Isolation of an agent in its own git worktree and branch (`isolation: worktree`).

Each isolated task works in `.orchestrator/worktrees/SESSION/TASK`, a worktree on the branch
`orchestrator/SESSION/TASK` started from the repository's HEAD. When the task ends, what it
changed is committed on that branch and the worktree folder is removed; the branch stays
for the user to review and merge. Nothing is ever merged here.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from orchestrator_tui.core.errors import OrchestratorError

BRANCH_PREFIX = "orchestrator"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_IDENTITY = {
    "GIT_AUTHOR_NAME": "orchestrator", "GIT_AUTHOR_EMAIL": "orchestrator@localhost",
    "GIT_COMMITTER_NAME": "orchestrator", "GIT_COMMITTER_EMAIL": "orchestrator@localhost",
}


class IsolationError(OrchestratorError):
    """A worktree could not be made, committed or listed; the message names the git command."""


@dataclass(frozen=True, slots=True)
class Branch:
    """A branch an isolated task left behind."""

    name: str
    task: str
    commits: int
    """Commits on the branch that its starting point does not have."""
    files: tuple[str, ...]
    """Files the branch changes against its starting point."""


def git(repo: Path, *args: str, check: bool = True) -> str:
    """Run one git command (argv, no shell) in `repo` and return its output."""
    env = {**os.environ, **_IDENTITY, "GIT_TERMINAL_PROMPT": "0"}
    try:
        done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True,
                              env=env, check=False, timeout=120)
    except FileNotFoundError as error:
        raise IsolationError("isolation: worktree needs git, which is not installed") from error
    if check and done.returncode != 0:
        raise IsolationError(f"git {' '.join(args[:3])} failed in {repo}: "
                             f"{done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


def repository_root(workspace: Path) -> Path:
    """The top folder of the git work tree holding `workspace`.

    Raises:
        IsolationError: the workspace is not inside a git repository with a commit.
    """
    try:
        top = git(workspace, "rev-parse", "--show-toplevel").strip()
        git(workspace, "rev-parse", "--verify", "HEAD")
    except IsolationError as error:
        raise IsolationError(f"isolation: worktree needs a git repository with at least one "
                             f"commit; {workspace} is not one") from error
    return Path(top)


def slug(text: str) -> str:
    """`text` as one safe path and ref component."""
    cleaned = _UNSAFE.sub("-", text).strip(".-") or "task"
    return cleaned.replace("..", "-")[:80]


class Worktrees:
    """The worktrees and branches of one session's isolated tasks."""

    def __init__(self, workspace: Path, session_id: str) -> None:
        self.workspace = workspace
        self.session_id = session_id
        self._root: Path | None = None

    @property
    def root(self) -> Path:
        """The repository's top folder (found once)."""
        if self._root is None:
            self._root = repository_root(self.workspace)
        return self._root

    def branch(self, task_id: str) -> str:
        """The branch of `task_id`."""
        return f"{BRANCH_PREFIX}/{slug(self.session_id)}/{slug(task_id)}"

    def path(self, task_id: str) -> Path:
        """Where the worktree of `task_id` is (whether or not it exists yet)."""
        return self.root / ".orchestrator" / "worktrees" / slug(self.session_id) / slug(task_id)

    def prepare(self, task_id: str) -> Path:
        """Make (or reuse, on a retry) the worktree of `task_id`; return its folder."""
        path, branch = self.path(task_id), self.branch(task_id)
        if (path / ".git").exists():
            return path
        git(self.root, "worktree", "prune")
        path.parent.mkdir(parents=True, exist_ok=True)
        ignore = self.root / ".orchestrator" / ".gitignore"
        if not ignore.exists():  # keep the worktrees out of the user's `git status`
            ignore.write_text("# Written by orchestrator: local state, never committed.\n*\n")
        exists = git(self.root, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}",
                     check=False).strip()
        if exists:
            git(self.root, "worktree", "add", str(path), branch)
        else:
            git(self.root, "worktree", "add", "-b", branch, str(path), "HEAD")
        return path

    def finish(self, task_id: str, *, keep_folder: bool = False) -> str | None:
        """Commit what the task changed on its branch, remove its folder, and return the new
        commit (None when it changed nothing)."""
        path = self.path(task_id)
        if not (path / ".git").exists():
            return None
        git(path, "add", "-A")
        commit = None
        staged = subprocess.run(["git", "diff", "--cached", "--quiet"], cwd=path,
                                capture_output=True, check=False)
        if staged.returncode == 1:
            git(path, "commit", "--no-verify", "-q", "-m",
                f"orchestrator: task {task_id} of session {self.session_id}")
            commit = git(path, "rev-parse", "HEAD").strip()
        if not keep_folder:
            git(self.root, "worktree", "remove", "--force", str(path))
        return commit

    def branches(self) -> list[Branch]:
        """The branches this session's isolated tasks left, with what each changes."""
        prefix = f"refs/heads/{BRANCH_PREFIX}/{slug(self.session_id)}/"
        names = git(self.root, "for-each-ref", "--format=%(refname)", prefix).split()
        found = []
        for ref in names:
            name = ref.removeprefix("refs/heads/")
            base = git(self.root, "merge-base", "HEAD", ref, check=False).strip()
            if not base:
                continue
            commits = int(git(self.root, "rev-list", "--count", f"{base}..{ref}").strip() or 0)
            files = tuple(git(self.root, "diff", "--name-only", base, ref).split())
            found.append(Branch(name=name, task=name.rsplit("/", 1)[-1], commits=commits,
                                files=files))
        return found
