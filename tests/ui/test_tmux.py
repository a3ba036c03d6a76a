"""The app in a real terminal: tmux at 120x40 runs the installed `orchestrator` command (and
`python -m orchestrator_tui.ui`, the same app), and the pane is polled for what it shows.

Menu → `1` starts ANALYZE of a slow workflow → the dashboard shows EXECUTING → `p` stops the
agent processes (state T) → `r` continues them → `a` `y` aborts (no process left) → `q` quits
and the shell prompt comes back."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .conftest import SLOW_WORKFLOW, gone, proc_state

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

PROMPT = "READY$ "
INSTALLED = Path(sys.executable).parent / "orchestrator"


class Pane:
    """A detached tmux session with a plain shell, driven by keys and read by capture."""

    def __init__(self, cwd: Path) -> None:
        self.name = f"orch-{uuid.uuid4().hex[:8]}"
        subprocess.run(["tmux", "new-session", "-d", "-s", self.name, "-x", "120", "-y", "40",
                        "-c", str(cwd), "env", f"PS1={PROMPT}", "bash", "--norc",
                        "--noprofile"], check=True)

    def keys(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True)

    def type_line(self, text: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, "-l", text], check=True)
        self.keys("Enter")

    def text(self) -> str:
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", self.name], check=True,
                              capture_output=True, text=True).stdout

    def wait(self, check: Callable[[str], bool], what: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            shown = self.text()
            if check(shown):
                return shown
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; the pane shows:\n{shown}")
            time.sleep(0.05)

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], check=False,
                       capture_output=True)


@pytest.fixture
def pane(workspace: Path) -> Iterator[Pane]:
    opened = Pane(workspace)
    try:
        yield opened
    finally:
        opened.close()


def open_pids(db: Path) -> list[int]:
    """Pids of agent attempts that have not finished, as the engine recorded them."""
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        return [int(pid) for (pid,) in conn.execute(
            "SELECT pid FROM attempts WHERE finished_at IS NULL AND pid IS NOT NULL")]


def wait_for(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


LAUNCHERS = {
    "installed": [str(INSTALLED)],
    "module": [sys.executable, "-m", "orchestrator_tui.ui"],
}


@pytest.mark.parametrize("launcher", sorted(LAUNCHERS))
def test_menu_run_pause_resume_abort_quit(pane: Pane, launcher: str, workspace: Path,
                                          tmp_path: Path) -> None:
    workflow = tmp_path / "slow.yaml"
    workflow.write_text(SLOW_WORKFLOW)
    db = tmp_path / "state.db"
    command = [*LAUNCHERS[launcher], "--workspace", str(workspace), "--db", str(db),
               "--workflow", str(workflow)]
    pane.wait(lambda shown: PROMPT.strip() in shown, "the shell prompt")
    pane.type_line(subprocess.list2cmdline(command))
    shown = pane.wait(lambda s: "STANDARD OPERATIONS" in s, "the menu")
    assert "1. 🔍 ANALYZE" in shown
    pane.keys("1")
    pane.wait(lambda s: "State: ▶ EXECUTING" in s, "EXECUTING on the dashboard")
    wait_for(lambda: len(open_pids(db)) == 2, "two agent processes")
    pids = open_pids(db)
    pane.keys("p")
    pane.wait(lambda s: "State: ‖ PAUSED" in s, "PAUSED on the dashboard")
    wait_for(lambda: all(proc_state(pid) == "T" for pid in pids), "stopped processes")
    pane.keys("r")
    pane.wait(lambda s: "State: ▶ EXECUTING" in s, "EXECUTING again")
    wait_for(lambda: all(proc_state(pid) in "SR" for pid in pids), "continued processes")
    pane.keys("a")
    pane.wait(lambda s: "Abort session" in s, "the abort question")
    pane.keys("y")
    pane.wait(lambda s: "State: ■ ABORTED" in s, "ABORTED on the dashboard")
    wait_for(lambda: all(gone(pid) for pid in pids), "no agent process left")
    pane.keys("q")
    final = pane.wait(lambda s: "ORCHESTRATOR" not in s and s.rstrip().endswith(PROMPT.strip()),
                      "the shell prompt after quitting")
    assert "Traceback" not in final
