"""Shared fixtures: a workspace folder, its database path, and a CLI runner."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "orchestrator_tui"]
os.environ.setdefault("ORCHESTRATOR_NO_CACHE", "1")  # tests rerun identical inputs on purpose


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """An empty folder to work in, with a small Python project."""
    folder = tmp_path / "repo"
    folder.mkdir()
    (folder / "app.py").write_text('"""A tiny app."""\n\n\ndef add(a, b):\n    return a + b\n')
    return folder


@pytest.fixture
def db_path(workspace: Path) -> Path:
    """The default database of `workspace`."""
    return workspace / ".orchestrator" / "state.db"


Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cli(workspace: Path) -> Run:
    """Run `orchestrator ARGS` in the workspace and return the finished process."""
    def run(*args: str, timeout: float = 120, env: dict[str, str] | None = None,
            cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        merged = {**os.environ, **(env or {})}
        merged.pop("ORCHESTRATOR_DB", None)
        return subprocess.run([*CLI, *args], cwd=cwd or workspace, capture_output=True,
                              text=True, timeout=timeout, env=merged, check=False)
    return run


def write_workflow(folder: Path, text: str, name: str = "workflow.yaml") -> Path:
    """Write a workflow file into `folder` and return its path."""
    path = folder / name
    path.write_text(text)
    return path


def python_argv(code: str) -> str:
    """A YAML flow list running `code` with this interpreter (no shell)."""
    escaped = code.replace("\\", "\\\\").replace('"', '\\"')
    return f'["{sys.executable}", "-c", "{escaped}"]'


def many_tasks(folder: Path, count: int, name: str = "many.yaml") -> Path:
    """A workflow whose intent `many` runs `count` tiny independent commands."""
    tasks = "\n".join(f"      - id: t{i}\n        command: {python_argv('print(7 * 60)')}"
                      for i in range(count))
    return write_workflow(folder, f"intents:\n  many:\n    tasks:\n{tasks}\n", name)


def seed_database(folder: Path, tasks: int) -> Path:
    """`folder/state.db` holding one completed session of `tasks` commands, run by the CLI."""
    workflow = many_tasks(folder, tasks)
    db = folder / "state.db"
    out = subprocess.run([*CLI, "--db", str(db), "run", "many", "--workflow", str(workflow)],
                         cwd=folder, capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    return db


def copy_database(template: Path, db_path: Path) -> Path:
    """Copy a seeded database to `db_path` (the workspace's default place)."""
    db_path.parent.mkdir(mode=0o700)
    shutil.copyfile(template, db_path)
    return db_path
