"""Isolated agents: their own worktree and branch, committed when done, never merged."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from orchestrator_tui.engine.isolation import IsolationError, Worktrees, slug


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True,
                          check=True).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    folder = tmp_path / "repo"
    folder.mkdir()
    git(folder, "init", "-q", "-b", "main")
    git(folder, "config", "user.name", "Someone")
    git(folder, "config", "user.email", "someone@example.com")
    (folder / "app.py").write_text("print('hi')\n")
    git(folder, "add", "app.py")
    git(folder, "commit", "-q", "-m", "first")
    return folder


def test_an_isolated_task_leaves_a_branch_and_the_users_tree_alone(repo: Path) -> None:
    (repo / "app.py").write_text("print('uncommitted')\n")
    git(repo, "add", "app.py")
    (repo / "notes.txt").write_text("untracked\n")
    before = (git(repo, "status", "--porcelain"), git(repo, "diff", "--cached"),
              git(repo, "rev-parse", "HEAD"))
    trees = Worktrees(repo, "s1")
    folder = trees.prepare("review")
    assert folder.is_relative_to(repo / ".orchestrator")
    assert (folder / "app.py").read_text() == "print('hi')\n"  # starts from HEAD
    (folder / "fix.py").write_text("x = 1\n")
    commit = trees.finish("review")
    assert commit and not folder.exists()
    [branch] = trees.branches()
    assert (branch.name, branch.task, branch.commits, branch.files) == (
        "orchestrator/s1/review", "review", 1, ("fix.py",))
    assert (git(repo, "status", "--porcelain"), git(repo, "diff", "--cached"),
            git(repo, "rev-parse", "HEAD")) == before
    assert git(repo, "branch", "--show-current").strip() == "main"
    assert not (repo / "fix.py").exists()  # nothing merged


def test_a_retry_reuses_the_branch_and_no_change_makes_no_commit(repo: Path) -> None:
    trees = Worktrees(repo, "s2")
    (trees.prepare("t") / "a.txt").write_text("1\n")
    first = trees.finish("t")
    assert (trees.prepare("t") / "a.txt").read_text() == "1\n"
    assert trees.finish("t") is None
    assert git(repo, "rev-parse", "orchestrator/s2/t").strip() == first


def test_names_become_safe_components(repo: Path) -> None:
    trees = Worktrees(repo, "../s 3")
    assert trees.path("../../etc/passwd").is_relative_to(repo / ".orchestrator" / "worktrees")
    assert slug("a/b c..d") == "a-b-c-d"
    assert trees.branch("x;rm -rf /") == "orchestrator/s-3/x-rm--rf"


def test_outside_a_repository_the_error_says_what_is_needed(tmp_path: Path) -> None:
    with pytest.raises(IsolationError, match="needs a git repository with at least one commit"):
        Worktrees(tmp_path, "s").prepare("t")


def test_orchestrator_run_isolates_an_agent_and_lists_its_branch(repo: Path) -> None:
    import json
    import os
    import sys

    agents = repo / ".claude" / "agents"
    agents.mkdir(parents=True)
    code = "import pathlib, sys; pathlib.Path(sys.argv[1], 'fixed.txt').write_text('done')"
    (agents / "fixer.md").write_text(
        "---\nname: fixer\ndescription: writes a fix\nisolation: worktree\n"
        f"command: {json.dumps([sys.executable, '-c', code, '{workspace}'])}\n---\nFix it.\n")
    (repo / "flow.yaml").write_text("intents:\n  fix:\n    tasks:\n      - id: fix\n"
                                    "        agent: fixer\n")
    env = {k: v for k, v in os.environ.items() if k != "ORCHESTRATOR_DB"}
    run = [sys.executable, "-m", "orchestrator_tui", "run", "fix", "--workflow", "flow.yaml"]
    out = subprocess.run([*run, "--json"], cwd=repo, capture_output=True, text=True,
                         env=env, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    [branch] = summary["branches"]
    assert branch["files"] == ["fixed.txt"] and branch["name"].endswith("/fix")
    assert "[branch orchestrator/" in summary["tasks"][0]["result"]
    assert not (repo / "fixed.txt").exists()
    assert git(repo, "show", f"{branch['name']}:fixed.txt") == "done"
    assert git(repo, "status", "--porcelain") == "?? .claude/\n?? flow.yaml\n"
    text = subprocess.run(run, cwd=repo, capture_output=True, text=True, env=env,
                          timeout=120, check=False).stdout
    assert "Branches left by isolated agents" in text
    assert "/fix: 1 commit(s); fixed.txt" in text  # the second session's own branch
