"""The database under bad conditions: locked, damaged, newer, full, read-only.

Each case runs the real CLI on a real file and checks three things: the message names the
file and a way out, no traceback reaches the user, and nothing already recorded is lost.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator_tui.core.errors import StoreError
from orchestrator_tui.engine.session import Engine
from orchestrator_tui.store.backup import take_backup
from orchestrator_tui.store.database import (
    DatabaseCorrupt,
    DatabaseFull,
    busy_timeout_ms,
    connect,
)
from orchestrator_tui.store.integrity import check_file
from orchestrator_tui.store.schema import SCHEMA_VERSION
from orchestrator_tui.store.writer import Writer
from tests.conftest import (
    Run,
    copy_database,
    many_tasks,
    seed_database,
)

FAST_BUSY = {"ORCHESTRATOR_BUSY_TIMEOUT": "0.3"}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database with one completed session of 3 tasks, written once by the real CLI."""
    return seed_database(tmp_path_factory.mktemp("seed"), 3)


@pytest.fixture
def seeded(template: Path, db_path: Path) -> Path:
    """The workspace's database: a copy of the template."""
    return copy_database(template, db_path)


def rows(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return conn.execute(sql, params).fetchall()


def page_count(db: Path) -> int:
    return int(rows(db, "PRAGMA page_count")[0][0])


def assert_clean_failure(out: subprocess.CompletedProcess[str], *phrases: str) -> None:
    """Exit 2, one `orchestrator: ...` message containing every phrase, no traceback."""
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert "Traceback" not in out.stderr and "internal error" not in out.stderr, out.stderr
    assert "orchestrator: " in out.stderr
    for phrase in phrases:
        assert phrase in out.stderr, (phrase, out.stderr)


# ----- locked ---------------------------------------------------------------------------

HOLD = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
if sys.argv[2] == "exclusive":
    conn.execute("PRAGMA locking_mode = EXCLUSIVE")
conn.execute("BEGIN EXCLUSIVE")
conn.execute("INSERT INTO settings (key, value) VALUES ('held', 'yes')")
print("locked", flush=True)
sys.stdin.read()
"""


@contextlib.contextmanager
def holding(db: Path, mode: str) -> Iterator[subprocess.Popen[str]]:
    """A second process holding `BEGIN EXCLUSIVE` on `db` until the block ends."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(db), mode], text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        yield holder
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=10)


def test_locked_database_says_busy_and_who_holds_it(cli: Run, seeded: Path,
                                                    workspace: Path) -> None:
    workflow = many_tasks(workspace, 2)
    with holding(seeded, "normal") as holder:
        out = cli("run", "many", "--workflow", str(workflow), env=FAST_BUSY)
        assert_clean_failure(out, f"database {seeded} is busy",
                             "another orchestrator process holds it locked",
                             f"pid {holder.pid}", "ORCHESTRATOR_BUSY_TIMEOUT")
        # In WAL mode readers are not blocked by a writer's lock.
        assert cli("state", "current", env=FAST_BUSY).returncode == 0
    with holding(seeded, "exclusive"):
        out = cli("state", "current", env=FAST_BUSY)
        assert_clean_failure(out, f"database {seeded} is busy")
    after = cli("state", "current", "--json")
    assert after.returncode == 0, after.stderr
    assert '"succeeded": 3' in after.stdout
    assert rows(seeded, "SELECT COUNT(*) FROM sessions") == [(1,)]
    assert rows(seeded, "SELECT * FROM settings WHERE key = 'held'") == []


def test_busy_timeout_comes_from_the_environment() -> None:
    assert busy_timeout_ms({}) == 15_000
    assert busy_timeout_ms({"ORCHESTRATOR_BUSY_TIMEOUT": "0.25"}) == 250
    with pytest.raises(StoreError, match="ORCHESTRATOR_BUSY_TIMEOUT must be a number"):
        busy_timeout_ms({"ORCHESTRATOR_BUSY_TIMEOUT": "soon"})


# ----- damaged --------------------------------------------------------------------------

def damage(db: Path, kind: str) -> bytes:
    """Replace `db` by a damaged version of itself and return the damaged bytes."""
    good = db.read_bytes()
    bad = {"random bytes": random.Random(7).randbytes(30_000),
           "shorter than a header": good[:60],
           "cut in the middle": good[:len(good) // 2]}[kind]
    db.write_bytes(bad)
    return bad


@pytest.mark.parametrize("kind", ["random bytes", "shorter than a header", "cut in the middle"])
def test_damaged_file_is_named_with_ways_out_and_left_alone(cli: Run, seeded: Path,
                                                            workspace: Path, kind: str) -> None:
    with_backup = kind == "cut in the middle"
    if with_backup:
        take_backup(seeded)
    bad = damage(seeded, kind)
    workflow = many_tasks(workspace, 2)
    backup_note = "puts back the newest good backup (1 kept" if with_backup \
        else "No backup of it exists"
    for args in (("state", "current"), ("run", "many", "--workflow", str(workflow))):
        out = cli(*args)
        assert_clean_failure(out, f"database {seeded} is damaged or not a database",
                             "orchestrator db reset --yes", backup_note)
        assert "orchestrator db restore" in out.stderr
        assert seeded.read_bytes() == bad
    check = cli("db", "check")
    assert check.returncode == 1 and "damaged or not a database" in check.stdout
    assert seeded.read_bytes() == bad
    if with_backup:
        assert cli("db", "restore", "--yes").returncode == 0
        aside = [path for path in seeded.parent.glob("state.db.corrupt-*")
                 if not path.name.endswith(("-wal", "-shm"))]
        assert [path.read_bytes() for path in aside] == [bad]
        assert '"succeeded": 3' in cli("state", "current", "--json").stdout


async def test_damaged_pages_behind_a_good_header_are_caught(cli: Run, seeded: Path) -> None:
    data = bytearray(seeded.read_bytes())
    data[4096:] = random.Random(3).randbytes(len(data) - 4096)
    seeded.write_bytes(bytes(data))
    report = check_file(seeded)
    assert not report.ok
    assert "quick_check" in report.problems[0] or "malformed" in report.problems[0]
    with pytest.raises(DatabaseCorrupt, match="orchestrator db reset --yes"):
        await Engine.open(seeded)
    out = cli("state", "current")
    assert_clean_failure(out, f"database {seeded} is damaged or not a database")


async def test_broken_invariants_stop_the_engine(seeded: Path) -> None:
    with contextlib.closing(sqlite3.connect(seeded)) as conn, conn:
        conn.execute("INSERT INTO tasks (session_id, id, kind, state, updated_at) "
                     "VALUES ('sess-gone', 'orphan', 'command', 'pending', 0)")
        conn.execute("UPDATE tasks SET state = 'levitating' WHERE id = 't0'")
        session = conn.execute("SELECT id FROM sessions").fetchone()[0]
        for attempt in (7, 8):
            conn.execute("INSERT INTO attempts (session_id, task_id, attempt, boot_id, "
                         "started_at) VALUES (?, 't1', ?, 'b', 0)", (session, attempt))
        conn.execute("INSERT INTO attempts (session_id, task_id, attempt, boot_id, started_at,"
                     " finished_at) VALUES (?, 'nobody', 1, 'b', 0, 1)", (session,))
    report = check_file(seeded)
    text = " ".join(report.problems)
    for problem in ("tasks whose session does not exist: sess-gone/orphan",
                    "tasks in an unknown state", "levitating",
                    "tasks with more than one open attempt", "/t1 (2)",
                    "attempts whose task does not exist"):
        assert problem in text
    before = seeded.read_bytes()
    with pytest.raises(DatabaseCorrupt, match="tasks in an unknown state"):
        await Engine.open(seeded)
    assert seeded.read_bytes() == before
    assert rows(seeded, "SELECT COUNT(*) FROM engines") == [(1,)]


# ----- newer ----------------------------------------------------------------------------

def test_newer_database_is_refused_untouched_with_the_way_out(cli: Run, seeded: Path,
                                                              workspace: Path) -> None:
    with contextlib.closing(sqlite3.connect(seeded)) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    before = seeded.read_bytes()
    workflow = many_tasks(workspace, 1)
    for args in (("state", "current"), ("run", "many", "--workflow", str(workflow))):
        assert_clean_failure(cli(*args), f"database {seeded} has schema version",
                             "newer than this orchestrator understands",
                             "pip install --upgrade orchestrator-tui", "was not changed")
    assert seeded.read_bytes() == before
    check = cli("db", "check")
    assert check.returncode == 1 and "a newer orchestrator-tui wrote it" in check.stdout


# ----- full -----------------------------------------------------------------------------

async def test_writer_hitting_the_cap_keeps_every_committed_batch(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    await (await connect(path)).close()
    writer = Writer(path, max_pages=page_count(path) + 4)
    await writer.start()
    committed = 0
    with pytest.raises(DatabaseFull, match=f"disk full: the database {path} could not grow"):
        for batch in range(500):
            for row in range(4):
                writer.add("INSERT INTO settings (key, value) VALUES (?, ?)",
                           (f"k{batch}-{row}", "x" * 300))
            await writer.commit()
            committed += 1
    await writer.close()
    assert committed > 0
    assert rows(path, "SELECT COUNT(*) FROM settings") == [(committed * 4,)]
    assert check_file(path).ok


def test_disk_full_mid_session_ends_it_cleanly(cli: Run, seeded: Path,
                                               workspace: Path) -> None:
    workflow = many_tasks(workspace, 120)
    before = page_count(seeded)
    first = cli("run", "many", "--workflow", str(workflow), "--parallel", "8")
    assert first.returncode == 0, first.stderr
    grown = page_count(seeded) - before
    cap = page_count(seeded) + grown // 2
    out = cli("run", "many", "--workflow", str(workflow), "--parallel", "8",
              env={"ORCHESTRATOR_MAX_PAGES": str(cap)})
    assert_clean_failure(out, f"disk full: the database {seeded} could not grow; free space "
                              "and run `orchestrator resume`")
    assert check_file(seeded).ok
    assert page_count(seeded) <= cap
    sessions = rows(seeded, "SELECT id, state FROM sessions ORDER BY created_at")
    assert len(sessions) == 3 and sessions[1][1] == "COMPLETED"
    assert rows(seeded, "SELECT COUNT(*) FROM tasks WHERE session_id = ? AND state = "
                        "'succeeded'", (sessions[1][0],)) == [(120,)]
    assert_rows_match_history(seeded, str(sessions[2][0]))


def assert_rows_match_history(db: Path, session_id: str) -> None:
    """Each task's state is the target of its last recorded transition: no half batch."""
    tasks = dict(rows(db, "SELECT id, state FROM tasks WHERE session_id = ?", (session_id,)))
    last = dict(rows(db, "SELECT task_id, to_state FROM transitions WHERE id IN (SELECT "
                         "MAX(id) FROM transitions WHERE session_id = ? AND task_id IS NOT "
                         "NULL GROUP BY task_id)", (session_id,)))
    assert tasks, "the session's tasks were recorded"
    for task, state in tasks.items():
        assert last.get(task, "pending") == state, task


@contextlib.contextmanager
def small_file_system(where: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs mounted at `where` (needs root; the test is skipped otherwise)."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a small file system needs root")
    where.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(where)],
                      capture_output=True, check=False).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_real_full_file_system(cli: Run, tmp_path: Path, workspace: Path) -> None:
    with small_file_system(tmp_path / "small") as small:
        db = small / "state.db"
        assert cli("--db", str(db), "run", "many", "--workflow",
                   str(many_tasks(workspace, 3))).returncode == 0
        filler = small / "filler"
        filler.write_bytes(b"\0" * (shutil.disk_usage(small).free - 200 * 1024))
        out = cli("--db", str(db), "run", "many", "--workflow", str(many_tasks(workspace, 200)))
        assert_clean_failure(out, f"disk full: the database {db} could not grow")
        filler.unlink()
        assert check_file(db).ok
        assert rows(db, "SELECT COUNT(*) FROM tasks WHERE state = 'succeeded'")[0][0] >= 3


# ----- read-only ------------------------------------------------------------------------

@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """Make a file or folder unwritable: a read-only bind mount as root, else chmod."""
    if os.geteuid() != 0:
        mode = path.stat().st_mode
        path.chmod(mode & ~0o222)
        try:
            yield
        finally:
            path.chmod(mode)
        return
    if subprocess.run(["mount", "--bind", str(path), str(path)], capture_output=True,
                      check=False).returncode:
        pytest.skip("cannot bind-mount here")
    try:
        if subprocess.run(["mount", "-o", "remount,bind,ro", str(path)], capture_output=True,
                          check=False).returncode:
            pytest.skip("cannot remount read-only here")
        yield
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_read_only_file_refuses_to_run_but_still_reads(cli: Run, seeded: Path,
                                                       workspace: Path) -> None:
    workflow = many_tasks(workspace, 1)
    with read_only(seeded):
        assert_clean_failure(cli("run", "many", "--workflow", str(workflow)),
                             f"database {seeded}", "read-only", "--db FILE")
        assert cli("state", "current").returncode == 0
    assert rows(seeded, "SELECT COUNT(*) FROM sessions") == [(1,)]


def test_unwritable_folder_is_named(cli: Run, seeded: Path, workspace: Path,
                                    tmp_path: Path) -> None:
    workflow = many_tasks(workspace, 1)
    folder = seeded.parent
    with read_only(folder):
        out = cli("run", "many", "--workflow", str(workflow))
        assert_clean_failure(out, f"database {seeded}", str(folder))
        assert "read-only" in out.stderr or "not writable" in out.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    with read_only(empty):
        out = cli("--db", str(empty / "new.db"), "run", "many", "--workflow", str(workflow))
        assert_clean_failure(out, f"cannot create the database {empty / 'new.db'}",
                             f"its folder {empty} must be writable")
    assert rows(seeded, "SELECT COUNT(*) FROM sessions") == [(1,)]


def test_checking_a_database_in_use_here_keeps_sqlites_locks(tmp_path: Path) -> None:
    """A raw read of the header, closed again, would drop this process's POSIX locks: then
    another process closing its connection deletes the write-ahead log under our writer."""
    from orchestrator_tui.store.files import header_problem, held_here

    db = tmp_path / "busy.db"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE t (x)")
    conn.execute("INSERT INTO t VALUES (1)")
    assert held_here(db) and not held_here(tmp_path / "other.db")
    assert header_problem(db) is None
    subprocess.run([sys.executable, "-c", "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]);"
                    " c.execute('SELECT * FROM t').fetchall(); c.close()", str(db)], check=True)
    assert Path(f"{db}-wal").exists(), "another process took the log of a live connection"
    conn.execute("INSERT INTO t VALUES (2)")
    with contextlib.closing(sqlite3.connect(db)) as fresh:
        assert fresh.execute("SELECT count(*) FROM t").fetchone() == (2,)
    conn.close()
