"""Checkpoints of real sessions: state and files restored with legal, recorded transitions;
rollback to the checkpoint of the failed phase; refusals while an engine runs the session;
the `checkpoint` commands from the CLI and the command bar."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator_tui import commands
from orchestrator_tui.core.errors import CheckpointError, IllegalTransition, OrchestratorError
from orchestrator_tui.core.models import IntentSpec, TaskSpec
from orchestrator_tui.core.plan import Plan
from orchestrator_tui.core.states import SessionState, TaskState, check_session, check_task
from orchestrator_tui.engine.checkpoints import (
    create_checkpoint,
    list_checkpoints,
    restore_checkpoint,
    rollback,
)
from orchestrator_tui.engine.runners.python import TaskContext
from orchestrator_tui.engine.session import Engine, SessionRequest
from orchestrator_tui.engine.settings import check, save_setting
from tests.conftest import CLI, Run, python_argv, write_workflow
from tests.test_cli import running_pids, wait_for

HERE = "tests.test_checkpoints"


async def write_note(context: TaskContext) -> str:
    """A python task writing one file of the workspace."""
    (context.workspace / context.args["file"]).write_text(context.args["text"])
    return f"wrote {context.args['file']}"


async def phase_boundary(context: TaskContext) -> str:
    """What the engine will do between phases: take a checkpoint marked `phase ...`."""
    row = await create_checkpoint(Path(context.args["db"]), context.workspace,
                                  context.session_id, context.args["phase"],
                                  f"phase {context.args['phase']} begins")
    return row.id


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True,
                          check=True).stdout


def make_repo(folder: Path) -> Path:
    git(folder, "init", "-q")
    git(folder, "config", "user.name", "Test User")
    git(folder, "config", "user.email", "test@example.com")
    git(folder, "add", "-A")
    git(folder, "commit", "-q", "-m", "start")
    return folder


def replay_history(db: Path, session_id: str) -> dict[str | None, str]:
    """Check every recorded change starts where the last ended and is legal; return states."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT task_id, from_state, to_state, reason FROM transitions "
                            "WHERE session_id = ? ORDER BY id", (session_id,)).fetchall()
        stored = dict(conn.execute("SELECT id, state FROM tasks WHERE session_id = ?",
                                   (session_id,)).fetchall())
        stored[None] = conn.execute("SELECT state FROM sessions WHERE id = ?",
                                    (session_id,)).fetchone()[0]
    states: dict[str | None, str] = {task: "pending" for task in stored if task}
    for task, old, new, reason in rows:
        restore = "checkpoint" in reason
        assert states.get(task) == old, (task, old, new)
        if task is None and old is not None:
            check_session("s", SessionState(old), SessionState(new), restore=restore)
        elif task is not None:
            check_task(task, TaskState(old), TaskState(new), restore=restore)
        states[task] = new
    assert states == stored
    return states


def test_restore_transitions_exist_only_for_restores() -> None:
    with pytest.raises(IllegalTransition):
        check_session("s", SessionState.COMPLETED, SessionState.RECOVERING)
    with pytest.raises(IllegalTransition):
        check_task("t", TaskState.SUCCEEDED, TaskState.PENDING)
    for state in SessionState:
        if state != SessionState.RECOVERING:
            check_session("s", state, SessionState.RECOVERING, restore=True)
    check_session("s", SessionState.RECOVERING, SessionState.PAUSED, restore=True)
    for task_state in TaskState:
        if task_state != TaskState.PENDING:
            check_task("t", task_state, TaskState.PENDING, restore=True)
    with pytest.raises(IllegalTransition):
        check_task("t", TaskState.FAILED, TaskState.RUNNING, restore=True)
    assert check("checkpoint_max_mb", " 50 ") == "50"
    with pytest.raises(OrchestratorError, match="checkpoint_max_mb must be"):
        check("checkpoint_max_mb", "0")


async def test_rollback_restores_the_checkpoint_of_the_failed_phase(workspace: Path,
                                                                    db_path: Path) -> None:
    make_repo(workspace)
    tasks = (
        TaskSpec(id="one", python=f"{HERE}:write_note", phase="one",
                 args={"file": "one.txt", "text": "phase one\n"}),
        TaskSpec(id="two-a", python=f"{HERE}:write_note", phase="two", depends_on=("one",),
                 args={"file": "two.txt", "text": "phase two\n"}),
        TaskSpec(id="two-b", python="tests.helpers:explode", phase="two",
                 depends_on=("one",)),
        TaskSpec(id="three", python=f"{HERE}:write_note", depends_on=("two-a", "two-b"),
                 args={"file": "three.txt", "text": "never\n"}),
    )
    async with await Engine.open(db_path) as engine:
        execution = await engine.start(SessionRequest(
            plan=Plan(IntentSpec(name="phased", tasks=tasks)), workspace=workspace,
            workflow="phased", parallel_limit=2))
        assert await engine.run(execution) == SessionState.FAILED  # checkpoints of its own
    sid = execution.session_id
    await create_checkpoint(db_path, workspace, sid, "after", "created by the user")
    await create_checkpoint(db_path, workspace, sid, "late", "phase late, after the failure")
    rows = await list_checkpoints(db_path, sid)
    assert [(row.name, row.reason) for row in rows[:2]] == [
        ("phase-one", "phase one begins"), ("phase-two", "phase two begins")]
    assert [row.name for row in rows[2:]] == ["after", "late"]
    assert (workspace / "two.txt").exists()

    result = await rollback(db_path, workspace, sid[:8])
    assert result.checkpoint == rows[1].id
    assert (workspace / "one.txt").read_text() == "phase one\n"
    assert not (workspace / "two.txt").exists()
    states = replay_history(db_path, sid)
    assert states[None] == "PAUSED"
    assert states["one"] == "succeeded"
    assert {states[t] for t in ("two-a", "two-b", "three")} == {"pending"}
    assert result.tasks_reset == 3 and result.tasks_succeeded == 1
    undo = next(row for row in await list_checkpoints(db_path, sid) if row.id == result.undo)
    assert undo.undo_of == rows[1].id

    again = await restore_checkpoint(db_path, workspace, rows[0].id)
    assert not (workspace / "one.txt").exists()
    assert replay_history(db_path, sid)["one"] == "pending"
    await restore_checkpoint(db_path, workspace, again.undo)
    assert (workspace / "one.txt").exists() and not (workspace / "two.txt").exists()
    assert replay_history(db_path, sid)["one"] == "succeeded"
    with pytest.raises(CheckpointError, match="no failed task"):
        await rollback(db_path, workspace, sid)


async def test_size_limit_setting_and_workspace_checks(workspace: Path, db_path: Path,
                                                       tmp_path: Path) -> None:
    await save_setting(db_path, "checkpoint_max_mb", "1")
    (workspace / "big.bin").write_bytes(b"\0" * (1024 * 1024 + 1))
    with pytest.raises(CheckpointError, match=r"more than the 1\.0 MB .*checkpoint_max_mb"):
        await create_checkpoint(db_path, workspace, None, "too big", "created by the user")
    assert await list_checkpoints(db_path) == []
    assert not any((workspace / ".orchestrator" / "checkpoints").glob("*"))
    (workspace / "big.bin").unlink()
    row = await create_checkpoint(db_path, workspace, None, "small", "created by the user")
    assert row.kind == "archive" and row.session_id is None
    other = tmp_path / "elsewhere"
    other.mkdir()
    with pytest.raises(CheckpointError, match="holds the files of"):
        await restore_checkpoint(db_path, other, row.id)
    with pytest.raises(CheckpointError, match="needs a name"):
        await create_checkpoint(db_path, workspace, None, "  ", "created by the user")


def test_cli_round_trip_and_command_bar(cli: Run, workspace: Path, db_path: Path) -> None:
    make_repo(workspace)
    write = python_argv("import pathlib; pathlib.Path('made.txt').write_text('made')")
    write_workflow(workspace, f"intents:\n  make:\n    tasks:\n      - id: make\n"
                              f"        command: {write}\n", name="wf.yaml")
    git(workspace, "add", "wf.yaml")
    git(workspace, "commit", "-q", "-m", "workflow")
    assert cli("run", "make", "--workflow", "wf.yaml").returncode == 0
    out = cli("checkpoint", "create", "first", "--json")
    assert out.returncode == 0, out.stderr
    made = json.loads(out.stdout)
    assert made["kind"] == "git" and made["session"] is not None

    (workspace / "app.py").write_text("broken\n")
    (workspace / "made.txt").unlink()
    (workspace / "junk.txt").write_text("junk\n")
    listed = json.loads(cli("checkpoint", "list", "--json").stdout)["checkpoints"]
    assert [c["id"] for c in listed] == [made["id"]]

    out = cli("checkpoint", "restore", made["id"][:6], "--json")
    assert out.returncode == 0, out.stderr
    restored = json.loads(out.stdout)
    assert restored["session_state"] == "PAUSED" and restored["files_removed"] == 1
    assert "a + b" in (workspace / "app.py").read_text()
    assert (workspace / "made.txt").read_text() == "made"
    assert not (workspace / "junk.txt").exists()
    history = json.loads(cli("state", "history", "--tasks", "--json").stdout)["transitions"]
    moves = [(row["from"], row["to"]) for row in history if row["what"] == "session"]
    assert moves[-2:] == [("COMPLETED", "RECOVERING"), ("RECOVERING", "PAUSED")]
    assert made["id"] in history[-1]["reason"]

    text = cli("checkpoint", "restore", restored["undo"])
    assert text.returncode == 0 and "undo: orchestrator checkpoint restore" in text.stdout
    assert (workspace / "app.py").read_text() == "broken\n"
    assert (workspace / "junk.txt").exists() and not (workspace / "made.txt").exists()
    out = cli("checkpoint", "restore", made["id"], "--no-files", "--json")
    assert json.loads(out.stdout)["files_restored"] is False
    assert (workspace / "app.py").read_text() == "broken\n"

    bad = cli("checkpoint", "restore", "cp-nope")
    assert bad.returncode == 2 and "no checkpoint 'cp-nope'" in bad.stderr
    assert "Traceback" not in bad.stderr
    bad = cli("checkpoint", "rollback")
    assert bad.returncode == 2 and "no failed task" in bad.stderr

    context = commands.CommandContext(db_path=db_path, workspace=workspace)
    answer = asyncio.run(commands.execute(commands.parse_slash("/checkpoint list"), context))
    assert answer.ok and made["id"] in answer.text and len(answer.data["checkpoints"]) == 4


def test_restore_is_refused_while_the_engine_runs_the_session(cli: Run, workspace: Path,
                                                              db_path: Path) -> None:
    slow = python_argv("import time; time.sleep(60)")
    wf = write_workflow(workspace, f"intents:\n  slow:\n    tasks:\n      - id: s\n"
                                   f"        command: {slow}\n")
    runner = subprocess.Popen([*CLI, "run", "slow", "--workflow", str(wf)], cwd=workspace,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: db_path.exists() and len(running_pids(db_path)) == 1)
        made = cli("checkpoint", "create", "mid-run", "--json")
        assert made.returncode == 0, made.stderr
        cp = json.loads(made.stdout)["id"]
        out = cli("checkpoint", "restore", cp)
        assert out.returncode == 2
        assert "engine" in out.stderr and "pausing is not enough" in out.stderr
        assert cli("pause").returncode == 0
        out = cli("checkpoint", "restore", cp)
        assert out.returncode == 2 and "PAUSED" in out.stderr
        assert "not supported yet" in out.stderr
        assert cli("abort").returncode == 0
        assert runner.wait(timeout=30) == 3
    finally:
        if runner.poll() is None:
            runner.kill()
    out = cli("checkpoint", "restore", cp, "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["session_state"] == "PAUSED"
    history = json.loads(cli("state", "history", "--json").stdout)["transitions"]
    assert [(r["from"], r["to"]) for r in history][-2:] == [("ABORTED", "RECOVERING"),
                                                           ("RECOVERING", "PAUSED")]


async def test_a_pause_takes_a_checkpoint_unless_turned_off(workspace: Path,
                                                           db_path: Path) -> None:
    from orchestrator_tui.engine.events import Control

    make_repo(workspace)
    sleep = (sys.executable, "-c", "import time; time.sleep(30)")
    plan = Plan(IntentSpec(name="slow", tasks=(TaskSpec(id="s", command=sleep),)))
    for setting, expected in (("on", ["on pause"]), ("off", [])):
        await save_setting(db_path, "auto_checkpoints", setting)
        async with await Engine.open(db_path) as engine:
            execution = await engine.start(SessionRequest(plan=plan, workspace=workspace,
                                                          workflow="slow"))
            run = asyncio.create_task(engine.run(execution))
            while execution.states["s"] != TaskState.RUNNING:
                await asyncio.sleep(0.02)
            execution.request(Control("pause", reason="test"))
            if expected:
                while not any(line.startswith(("checkpoint", "no checkpoint"))
                              for line in execution.log):
                    await asyncio.sleep(0.02)
            else:
                await asyncio.sleep(0.5)
            execution.request(Control("abort", reason="test"))
            assert await run == SessionState.ABORTED
        rows = await list_checkpoints(db_path, execution.session_id)
        assert [row.reason for row in rows] == expected
