"""Fixtures of the app tests: small workflows with fast or slow commands, a fixed resource
sampler, and helpers that poll the app's state instead of sleeping."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from textual.pilot import Pilot

from orchestrator_tui.ui.app import OrchestratorApp
from orchestrator_tui.ui.resources import ResourceSample

PY = sys.executable


def argv(code: str) -> str:
    """A YAML flow list running `code` with this interpreter (argv, no shell)."""
    return json.dumps([PY, "-c", code])


FAST_WORKFLOW = f"""
version: 1
intents:
  analyze:
    description: "Quick checks for the tests"
    examples: ["check the code quickly"]
    tasks:
      - {{id: scan, command: {argv("print('scanned 3 files')")}}}
      - {{id: review, command: {argv("print('reviewed')")}}}
      - {{id: summary, command: {argv("print('SUMMARY: all good')")}, depends_on: [scan, review]}}
  fix:
    description: "A repair that fails"
    tasks:
      - {{id: broken, command: {argv("import sys; print('boom', file=sys.stderr); sys.exit(2)")}}}
"""

SLOW_CODE = "import time; print('working on it', flush=True); time.sleep(120)"
SLOW_WORKFLOW = f"""
version: 1
intents:
  analyze:
    description: "Slow agents, to pause and abort"
    tasks:
      - {{id: slow-one, command: {argv(SLOW_CODE)}}}
      - {{id: slow-two, command: {argv(SLOW_CODE)}}}
      - {{id: after, command: {argv("print('after')")}, depends_on: [slow-one]}}
"""


class FixedSampler:
    """The same resource sample every time."""

    def sample(self) -> ResourceSample:
        return ResourceSample(cpu_percent=42.0, memory_percent=61.5, disk_bytes_per_s=1.5e6)


@pytest.fixture
def fast_workflow(tmp_path: Path) -> Path:
    path = tmp_path / "fast.yaml"
    path.write_text(FAST_WORKFLOW)
    return path


@pytest.fixture
def slow_workflow(tmp_path: Path) -> Path:
    path = tmp_path / "slow.yaml"
    path.write_text(SLOW_WORKFLOW)
    return path


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


@pytest.fixture
def make_app(workspace: Path, db: Path) -> Callable[..., OrchestratorApp]:
    """An app on the test's workspace and database, with a fixed resource sampler."""
    def make(workflow: Path | None = None, **kwargs: object) -> OrchestratorApp:
        return OrchestratorApp(workspace, db, str(workflow) if workflow else None,
                               sampler=FixedSampler(), **kwargs)  # type: ignore[arg-type]
    return make


async def until(pilot: Pilot[None], check: Callable[[], object], timeout: float = 30.0,
                what: str | Callable[[], str] = "the condition") -> None:
    """Let the app run until `check()` is true; fail after `timeout` seconds, saying what was
    awaited (`what`, or what it returns then: the state of things, to tell why)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what() if callable(what) else what}")
        await pilot.pause(0.02)


def proc_state(pid: int) -> str:
    """The one-letter state of a process (`T` when stopped), or `gone`."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def gone(pid: int) -> bool:
    """Whether the process has exited (or is only a zombie)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


def running_pids(app: OrchestratorApp) -> list[int]:
    """The pids of the live run's running agent processes."""
    execution = app.host.execution
    if execution is None:
        return []
    return [view.pid for view in execution.snapshot().running if view.pid is not None]


def text_of(app: OrchestratorApp, selector: str) -> str:
    """The plain text a widget of the current screen shows."""
    return str(app.screen.query_one(selector).render())
