"""The engine killed (SIGKILL) at each named crash point, then `orchestrator resume`: the
session completes, every task succeeds exactly once in the database, nothing committed as
succeeded runs again, no agent process is left, and the recorded transitions replay legally.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from collections.abc import Iterable
from pathlib import Path

import pytest

from bench.recovery import session_processes
from orchestrator_tui.core.states import SessionState, TaskState, check_session, check_task
from orchestrator_tui.store.schema import MIGRATIONS, SCHEMA_VERSION
from tests.conftest import CLI, Run
from tests.test_recovery import ledger_workflow, rows

CRASH_ENV = "ORCHESTRATOR_CRASH_AT"


def run_until_killed(workspace: Path, flow: Path, point: str, parallel: int = 2) -> None:
    """`orchestrator run` that must die by SIGKILL at `point`."""
    env = {**os.environ, CRASH_ENV: point}
    env.pop("ORCHESTRATOR_DB", None)
    out = subprocess.run([*CLI, "run", "ledger", "--workflow", str(flow), "--parallel",
                          str(parallel)], cwd=workspace, env=env, capture_output=True,
                         text=True, timeout=120, check=False)
    assert out.returncode == -9, f"the engine did not die at {point}: {out.stderr}"


def ledger_tasks(ledger: Path) -> list[str]:
    """The tasks of the attempts that wrote into the ledger, in order."""
    if not ledger.exists():
        return []
    return [line.split("/")[1] for line in ledger.read_text().split()]


def succeeded_tasks(db: Path) -> set[str]:
    return {str(t) for (t,) in rows(db, "SELECT id FROM tasks WHERE state = 'succeeded'")}


def replay(db: Path) -> None:
    """Every recorded transition follows the one before it and is legal."""
    last: dict[str | None, str] = {}
    for task_id, old, new in rows(db, "SELECT task_id, from_state, to_state FROM transitions "
                                      "ORDER BY id"):
        key = None if task_id is None else str(task_id)
        if old is not None:
            assert last.get(key, old) == old, f"{key}: {old} -> {new} after {last.get(key)}"
            if key is None:
                check_session("session", SessionState(old), SessionState(new))
            else:
                check_task(key, TaskState(old), TaskState(new))
        last[key] = str(new)


def assert_completed_once(db: Path, tasks: Iterable[str]) -> None:
    """The session completed and every task has exactly one succeeded attempt."""
    assert rows(db, "SELECT state FROM sessions") == [("COMPLETED",)]
    states = dict(rows(db, "SELECT id, state FROM tasks"))
    assert states == dict.fromkeys(tasks, "succeeded")
    wins = dict(rows(db, "SELECT task_id, count(*) FROM attempts WHERE outcome = 'succeeded' "
                         "GROUP BY task_id"))
    assert wins == dict.fromkeys(tasks, 1)


@pytest.mark.parametrize("point", ["claimed:2", "started:2", "completing:3", "commit:8"])
def test_resume_after_a_crash_point_completes_each_task_once(
        cli: Run, workspace: Path, db_path: Path, point: str) -> None:
    ledger = workspace / "ledger.txt"
    flow = ledger_workflow(workspace, ledger, 6, seconds=0.2)
    run_until_killed(workspace, flow, point)
    done_before = succeeded_tasks(db_path)
    seen_before = len(ledger_tasks(ledger))
    [(session_id, state)] = rows(db_path, "SELECT id, state FROM sessions")
    assert state == "EXECUTING" and len(done_before) < 6, "the crash came too late"
    out = cli("resume", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["state"] == "COMPLETED"
    assert_completed_once(db_path, [f"t{i}" for i in range(6)])
    again = set(ledger_tasks(ledger)[seen_before:]) & done_before
    assert not again, f"{sorted(again)} succeeded before the crash and ran again"
    assert not session_processes(str(session_id))
    replay(db_path)


def test_a_crash_inside_a_migration_leaves_the_old_schema_to_upgrade(
        cli: Run, workspace: Path, db_path: Path) -> None:
    db_path.parent.mkdir(mode=0o700)
    with sqlite3.connect(db_path) as raw:
        raw.executescript(MIGRATIONS[0])
        raw.execute("INSERT INTO attempts (session_id, task_id, attempt, boot_id, started_at) "
                    "VALUES ('s', 't', 1, 'b', 1.0)")
        raw.execute("INSERT INTO settings (key, value) VALUES ('parallel_limit', '3')")
        raw.execute("PRAGMA user_version = 1")
    crashed = cli("checkpoint", "list", env={CRASH_ENV: "migration"})
    assert crashed.returncode == -9, crashed.stderr
    assert rows(db_path, "PRAGMA user_version") == [(1,)]
    out = cli("checkpoint", "list")
    assert out.returncode == 0, out.stderr
    assert rows(db_path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert rows(db_path, "SELECT session_id, task_id, attempt FROM attempts") == [("s", "t", 1)]
    assert rows(db_path, "SELECT value FROM settings WHERE key = 'parallel_limit'") == [("3",)]
    assert rows(db_path, "PRAGMA integrity_check") == [("ok",)]


def test_a_crash_while_checkpointing_records_nothing(
        cli: Run, workspace: Path, db_path: Path) -> None:
    flow = ledger_workflow(workspace, workspace / "ledger.txt", 2, seconds=0)
    assert cli("run", "ledger", "--workflow", str(flow)).returncode == 0
    crashed = cli("checkpoint", "create", "first", env={CRASH_ENV: "checkpoint"})
    assert crashed.returncode == -9, crashed.stderr
    assert rows(db_path, "SELECT count(*) FROM checkpoints") == [(0,)]
    out = cli("checkpoint", "create", "second")
    assert out.returncode == 0, out.stderr
    assert rows(db_path, "SELECT name FROM checkpoints") == [("second",)]
    listed = cli("checkpoint", "list", "--json")
    assert listed.returncode == 0, listed.stderr
