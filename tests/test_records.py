"""The lean statements of the common rows write exactly what the full statements write."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator_tui.store import records
from orchestrator_tui.store.database import connect

ENDED_TASK = ("failed", 2, 1, "half done", "exit code 1", 10.0, 12.0, 12.0)
"""A task row that already holds an outcome (state, attempts, exit code, result, error,
started, finished, updated)."""
ENDED_ATTEMPT = (7, 1.5, 12.0, "failed", 1, "out", "err", 6, 40)
"""An attempt row that has ended (pid, process start, finished, outcome, exit code, stdout,
stderr, output bytes, input bytes)."""


@pytest.fixture
async def db(tmp_path: Path) -> Path:
    path = tmp_path / "state.db"
    await (await connect(path)).close()  # the current schema
    return path


@pytest.fixture
def pair(db: Path) -> Iterator[tuple[sqlite3.Connection, sqlite3.Connection]]:
    """Two copies of a database holding one session, its task `t` and attempt 2 of it, all
    with values in every column."""
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO sessions (id, intent, workflow, workspace, state, plan, "
                     "parallel_limit, created_at, updated_at) "
                     "VALUES ('s', 'i', 'w', '/', 'EXECUTING', '{}', 4, 0, 0)")
        conn.execute(records.INSERT_TASK, ("s", "t", "command", None, "pending", 1, 0.0))
        conn.execute(records.UPDATE_TASK, (*ENDED_TASK, "s", "t"))
        conn.execute(records.UPSERT_ATTEMPT, ("s", "t", 2, "boot", *ENDED_ATTEMPT[:2], 10.0,
                                              *ENDED_ATTEMPT[2:8], 30.0, 3, ENDED_ATTEMPT[8]))
    copies = []
    for name in ("a.db", "b.db"):
        copy = sqlite3.connect(db.with_name(name))
        with sqlite3.connect(db) as source:
            source.backup(copy)
        copies.append(copy)
    yield copies[0], copies[1]
    for copy in copies:
        copy.close()


def table(conn: sqlite3.Connection, name: str) -> list[tuple[object, ...]]:
    return conn.execute(f"SELECT * FROM {name} ORDER BY 1, 2").fetchall()


def test_a_task_not_started_is_written_alike(
        pair: tuple[sqlite3.Connection, sqlite3.Connection]) -> None:
    lean, full = pair
    lean.execute(records.UPDATE_FRESH_TASK, ("ready", 2, 13.0, "s", "t"))
    full.execute(records.UPDATE_TASK, ("ready", 2, None, None, None, None, None, 13.0, "s", "t"))
    assert table(lean, "tasks") == table(full, "tasks")
    assert table(lean, "tasks")[0][4:] == ("ready", 2, 1, None, None, None, None, None, 13.0)


def test_a_running_task_is_written_alike(
        pair: tuple[sqlite3.Connection, sqlite3.Connection]) -> None:
    lean, full = pair
    lean.execute(records.UPDATE_STARTED_TASK, ("running", 3, 13.0, 13.0, "s", "t"))
    full.execute(records.UPDATE_TASK, ("running", 3, None, None, None, 13.0, None, 13.0, "s",
                                       "t"))
    assert table(lean, "tasks") == table(full, "tasks")


@pytest.mark.parametrize("attempt", [3, 2], ids=["new row", "row of that number exists"])
def test_a_new_attempt_is_written_alike(
        pair: tuple[sqlite3.Connection, sqlite3.Connection], attempt: int) -> None:
    lean, full = pair
    lean.execute(records.INSERT_ATTEMPT, ("s", "t", attempt, "boot2", 13.0, None, None, None))
    full.execute(records.UPSERT_ATTEMPT, ("s", "t", attempt, "boot2", None, None, 13.0, None,
                                          None, None, None, None, None, None, None, None))
    assert table(lean, "attempts") == table(full, "attempts")
    assert len(table(lean, "attempts")) == (1 if attempt == 2 else 2)
