"""A workspace that disappears mid-run (deleted, unmounted): the session pauses with a clear
reason instead of failing its tasks, refuses to resume while the folder is missing, and
carries on when it is back. Nothing recorded is lost."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from orchestrator_tui.core.models import IntentSpec, TaskSpec
from orchestrator_tui.core.plan import Plan
from orchestrator_tui.core.states import SessionState, TaskState
from orchestrator_tui.engine.events import Control
from orchestrator_tui.engine.session import Engine, SessionRequest


async def until(check, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_a_vanished_workspace_pauses_the_session_until_it_is_back(tmp_path: Path) -> None:
    workspace, moved = tmp_path / "repo", tmp_path / "elsewhere"
    workspace.mkdir()
    sleep = (sys.executable, "-c", "import time; time.sleep(0.3)")
    tasks = (TaskSpec(id="a", command=sleep), TaskSpec(id="b", command=sleep, depends_on=("a",)),
             TaskSpec(id="c", command=sleep, depends_on=("b",)))
    async with await Engine.open(tmp_path / "state.db") as engine:
        execution = await engine.start(SessionRequest(
            plan=Plan(IntentSpec(name="chain", tasks=tasks)), workspace=workspace,
            workflow="chain", parallel_limit=1))
        run = asyncio.create_task(engine.run(execution))
        await until(lambda: execution.states["a"] == TaskState.RUNNING)
        workspace.rename(moved)
        await until(lambda: execution.session_state == SessionState.PAUSED)
        assert execution.states["a"] == TaskState.SUCCEEDED  # nothing recorded is lost
        assert execution.states["b"] == TaskState.READY
        assert "is gone (deleted or unmounted): bring it back" in execution.log[-1]
        execution.request(Control("resume", reason="test"))
        await asyncio.sleep(0.3)
        assert execution.session_state == SessionState.PAUSED
        moved.rename(workspace)
        execution.request(Control("resume", reason="test"))
        assert await run == SessionState.COMPLETED
    assert set(execution.states.values()) == {TaskState.SUCCEEDED}


async def test_a_database_deleted_with_its_workspace_is_saved_elsewhere(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil
    import sqlite3

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    workspace = tmp_path / "repo"
    workspace.mkdir()
    sleep = (sys.executable, "-c", "import time; time.sleep(0.3)")
    tasks = (TaskSpec(id="a", command=sleep), TaskSpec(id="b", command=sleep, depends_on=("a",)))
    async with await Engine.open(workspace / ".orchestrator" / "state.db") as engine:
        execution = await engine.start(SessionRequest(
            plan=Plan(IntentSpec(name="chain", tasks=tasks)), workspace=workspace,
            workflow="chain", parallel_limit=1))
        run = asyncio.create_task(engine.run(execution))
        await until(lambda: execution.states["a"] == TaskState.RUNNING)
        shutil.rmtree(workspace)
        await until(lambda: any("everything recorded is saved in" in line
                                for line in execution.log))
        [rescued] = (tmp_path / "state" / "orchestrator" / "rescued").glob("*.db")
        with sqlite3.connect(rescued) as conn:
            assert conn.execute("SELECT state FROM tasks WHERE id = 'a'").fetchone() == \
                ("succeeded",)
        execution.request(Control("abort", reason="test"))
        assert await run == SessionState.ABORTED
