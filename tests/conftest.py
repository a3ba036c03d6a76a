"""Shared fixtures: a workspace folder, its database path, and a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "orchestrator_tui"]


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
