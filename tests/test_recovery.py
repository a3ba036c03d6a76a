"""After the engine is killed (SIGKILL), `orchestrator resume` carries the session on: nothing
lost, no completed task run again, leftover agent processes stopped, and tasks that are not
idempotent wait for the user's decision."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
from pathlib import Path

import psutil

from tests.conftest import CLI, Run, write_workflow
from tests.test_cli import wait_for


def ledger_workflow(folder: Path, ledger: Path, count: int, *, seconds: float = 0.4,
                    idempotent: bool = True) -> Path:
    """`count` chained pairs of tasks that append their attempt to `ledger`, then sleep."""
    code = (f"import os, time; open({str(ledger)!r}, 'a').write("
            "os.environ['ORCHESTRATOR_ATTEMPT'] + '\\n'); "
            f"time.sleep({seconds})")
    lines = ["intents:", "  ledger:", "    tasks:"]
    for i in range(count):
        lines += [f"      - id: t{i}", f"        command: {json.dumps(['{python}', '-c', code])}"]
        if i % 2:
            lines.append(f"        depends_on: [t{i - 1}]")
        if not idempotent:
            lines.append("        idempotent: false")
    return write_workflow(folder, "\n".join(lines) + "\n")


def rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


def succeeded(db: Path) -> int:
    """Tasks recorded as succeeded so far (0 while the database is being made)."""
    try:
        return int(rows(db, "SELECT count(*) FROM tasks WHERE state = 'succeeded'")[0][0])
    except sqlite3.Error:
        return 0


def kill_engine_when(runner: subprocess.Popen[str], condition) -> list[int]:  # type: ignore[no-untyped-def]
    """SIGKILL the engine once `condition()` holds; return the agent pids left running."""
    wait_for(lambda: condition() or runner.poll() is not None, timeout=60)
    assert runner.poll() is None, f"the engine ended early with exit code {runner.returncode}"
    assert condition(), "the engine made no progress in a minute"
    children = [p.pid for p in psutil.Process(runner.pid).children(recursive=True)]
    runner.send_signal(signal.SIGKILL)
    runner.wait(10)
    return [pid for pid in children if psutil.pid_exists(pid)]


def test_resume_after_kill_runs_each_task_to_completion_once(
        cli: Run, workspace: Path, db_path: Path) -> None:
    ledger = workspace / "ledger.txt"
    flow = ledger_workflow(workspace, ledger, 6, seconds=1.5)
    runner = subprocess.Popen([*CLI, "run", "ledger", "--workflow", str(flow), "--parallel",
                               "2"], cwd=workspace, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, text=True)
    leftovers = kill_engine_when(runner, lambda: succeeded(db_path) >= 2)
    assert leftovers, "agent processes outlive a killed engine"
    done_before = {t for (t,) in rows(db_path, "SELECT id FROM tasks WHERE state = "
                                               "'succeeded'")}
    out = cli("resume", "--json")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["state"] == "COMPLETED"
    [note] = [line for line in summary["log"] if line.startswith("recovered session")]
    assert "leftover agent process(es) stopped" in note
    assert not [pid for pid in leftovers if psutil.pid_exists(pid)
                and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    assert rows(db_path, "SELECT DISTINCT state FROM tasks") == [("succeeded",)]
    attempts = [line.split("/")[1] for line in ledger.read_text().split()]
    for task in done_before:
        assert attempts.count(task) == 1, f"{task} succeeded before the kill and ran again"
    history = [r[0] for r in rows(db_path, "SELECT to_state FROM transitions WHERE task_id "
                                           "IS NULL ORDER BY id")]
    assert history[-3:] == ["RECOVERING", "EXECUTING", "COMPLETED"]


def test_a_task_that_is_not_idempotent_waits_for_a_decision(
        cli: Run, workspace: Path, db_path: Path) -> None:
    ledger = workspace / "ledger.txt"
    flow = ledger_workflow(workspace, ledger, 1, seconds=30, idempotent=False)
    runner = subprocess.Popen([*CLI, "run", "ledger", "--workflow", str(flow)],
                              cwd=workspace, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, text=True)
    kill_engine_when(runner, ledger.exists)
    decided = cli("task", "skip", "t0")
    assert "skip recorded" in decided.stdout, decided.stderr
    out = cli("resume", "--json")
    assert out.returncode == 0, out.stderr
    assert [line.split("/")[1] for line in ledger.read_text().split()] == ["t0"]
    assert rows(db_path, "SELECT state FROM tasks") == [("skipped",)]
    reasons = [r[0] for r in rows(db_path, "SELECT reason FROM transitions WHERE task_id = "
                                           "'t0' ORDER BY id")]
    assert any("not idempotent" in r for r in reasons) and reasons[-1] == \
        "skip decided by the user"


def test_resume_of_a_finished_session_says_so(cli: Run, workspace: Path) -> None:
    flow = ledger_workflow(workspace, workspace / "l.txt", 1, seconds=0)
    assert cli("run", "ledger", "--workflow", str(flow)).returncode == 0
    session = json.loads(cli("state", "current", "--json").stdout)["session"]
    out = cli("resume", session)
    assert out.returncode == 2 and "nothing to carry on" in out.stderr
