"""The database: location, permissions, migrations, group commit and clear errors."""

from __future__ import annotations

import asyncio
import sqlite3
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from orchestrator_tui.core.errors import StoreError
from orchestrator_tui.store.database import connect, resolve_db_path
from orchestrator_tui.store.schema import SCHEMA_VERSION
from orchestrator_tui.store.writer import CHECKPOINT_EVERY, INLINE_OPS, Writer


def test_path_precedence(tmp_path: Path) -> None:
    assert resolve_db_path(tmp_path, None, {}) == tmp_path / ".orchestrator" / "state.db"
    assert resolve_db_path(tmp_path, None, {"ORCHESTRATOR_DB": str(tmp_path / "e.db")}) \
        == tmp_path / "e.db"
    assert resolve_db_path(tmp_path, tmp_path / "f.db",
                           {"ORCHESTRATOR_DB": str(tmp_path / "e.db")}) == tmp_path / "f.db"


async def test_new_database_is_private_and_ignored_by_git(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    path = resolve_db_path(tmp_path, None, {})
    conn = await connect(path)
    await conn.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"],
                            cwd=tmp_path, capture_output=True, text=True, check=True)
    assert status.stdout == ""
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert raw.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)


async def test_older_database_upgrades_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as raw:
        raw.execute("CREATE TABLE unrelated (x)")
        raw.execute("INSERT INTO unrelated VALUES (42)")
    conn = await connect(path)
    await conn.close()
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        assert raw.execute("SELECT x FROM unrelated").fetchall() == [(42,)]
        assert raw.execute("SELECT count(*) FROM sessions").fetchone() == (0,)


async def test_newer_database_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    with sqlite3.connect(path) as raw:
        raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    before = path.read_bytes()
    with pytest.raises(StoreError, match="newer than this orchestrator understands"):
        await connect(path)
    assert path.read_bytes() == before


async def test_garbage_file_gets_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(StoreError, match=r"garbage\.db.*(not a database|damaged)"):
        await connect(path)
    assert path.read_bytes() == b"this is not a database at all" * 100


async def test_group_commit_shares_transactions(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    await (await connect(path)).close()
    writer = Writer(path)
    await writer.start()

    async def one(i: int) -> None:
        writer.add("INSERT INTO settings (key, value) VALUES (?, ?)", (f"k{i}", str(i)))
        await writer.commit()

    await asyncio.gather(*(one(i) for i in range(200)))
    assert writer.batches < 20
    await writer.close()
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT count(*) FROM settings").fetchone() == (200,)


async def test_a_failing_call_rolls_back_only_itself(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    await (await connect(path)).close()
    writer = Writer(path)
    await writer.start()

    def bad(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO settings (key, value) VALUES ('bad', 'x')")
        raise ValueError("refused")

    def good(conn: sqlite3.Connection) -> int:
        conn.execute("INSERT INTO settings (key, value) VALUES ('good', 'y')")
        return 7

    writer.add("INSERT INTO settings (key, value) VALUES ('plain', 'z')")
    results = await asyncio.gather(writer.call(bad), writer.call(good), return_exceptions=True)
    assert isinstance(results[0], ValueError) and results[1] == 7
    await writer.close()
    with sqlite3.connect(path) as raw:
        keys = sorted(k for (k,) in raw.execute("SELECT key FROM settings"))
    assert keys == ["good", "plain"]


async def test_small_batches_are_written_on_the_loop_and_locked_ones_wait_in_the_thread(
        tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    await (await connect(path)).close()
    writer = Writer(path)
    await writer.start()
    loop_thread = threading.get_ident()
    writer.add("INSERT INTO settings (key, value) VALUES ('small', 'x')")
    assert await writer.commit_then(threading.get_ident) == loop_thread
    assert await writer.commit_then(threading.get_ident, in_thread=True) != loop_thread
    for i in range(INLINE_OPS + 1):
        writer.add("INSERT INTO settings (key, value) VALUES (?, 'x')", (f"big-{i}",))
    assert await writer.commit_then(threading.get_ident) != loop_thread

    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process's transaction holds the lock
    writer.add("INSERT INTO settings (key, value) VALUES ('waited', 'x')")
    committed = asyncio.ensure_future(writer.commit_then(threading.get_ident))
    await asyncio.sleep(0.2)  # the loop runs on meanwhile
    assert not committed.done()
    holder.execute("COMMIT")
    holder.close()
    assert await committed != loop_thread
    await writer.close()
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT count(*) FROM settings").fetchone() == (INLINE_OPS + 3,)


async def test_a_block_of_rows_keeps_its_place_and_counts_each_row(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    await (await connect(path)).close()
    writer = Writer(path)
    await writer.start()
    loop_thread = threading.get_ident()
    insert = "INSERT INTO settings (key, value) VALUES (?, ?)"
    writer.add(insert, ("first", "1"))
    writer.add_rows(insert, [(f"row-{i}", str(i)) for i in range(3)])
    writer.add_rows(insert, [])  # nothing to queue
    writer.add("UPDATE settings SET value = 'after' WHERE key = 'row-2'")
    assert await writer.commit_then(threading.get_ident) == loop_thread
    # A block counts row by row against what the loop's thread writes itself.
    writer.add_rows(insert, [(f"big-{i}", "x") for i in range(INLINE_OPS + 1)])
    assert await writer.commit_then(threading.get_ident) != loop_thread
    await writer.close()
    with sqlite3.connect(path) as raw:
        rows = dict(raw.execute("SELECT key, value FROM settings WHERE key NOT LIKE 'big-%'"))
        assert raw.execute("SELECT count(*) FROM settings").fetchone() == (INLINE_OPS + 5,)
    assert rows == {"first": "1", "row-0": "0", "row-1": "1", "row-2": "after"}


async def test_peek_reads_on_the_loop_and_says_none_when_it_cannot(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    await (await connect(path)).close()
    writer = Writer(path)
    assert writer.peek("SELECT 1") is None  # not started
    await writer.start()
    writer.add("INSERT INTO settings (key, value) VALUES ('k', 'v')")
    await writer.commit()
    with sqlite3.connect(path) as other:  # another process's change is seen at once
        other.execute("INSERT INTO settings (key, value) VALUES ('other', 'w')")
    assert writer.peek("SELECT key FROM settings ORDER BY key") == [("k",), ("other",)]
    with pytest.raises(StoreError, match="no such table"):
        writer.peek("SELECT * FROM no_such_table")
    await writer.close()
    assert writer.peek("SELECT 1") is None


async def test_the_log_is_checkpointed_while_small_batches_are_written(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    await (await connect(path)).close()
    page = 4096
    writer = Writer(path)
    await writer.start()
    batches = 6 * CHECKPOINT_EVERY
    for i in range(batches):
        writer.add("INSERT INTO settings (key, value) VALUES (?, ?)", (f"k{i}", "x" * page))
        await writer.commit()
    wal_bytes = path.with_name(path.name + "-wal").stat().st_size
    await writer.close()
    # Each batch adds two pages or more to the log; checkpoints let it start over.
    assert wal_bytes < batches * page
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT count(*) FROM settings").fetchone() == (batches,)


async def test_a_full_disk_is_reported_and_keeps_what_was_recorded(tmp_path: Path) -> None:
    path = tmp_path / "small.db"
    await (await connect(path)).close()
    writer = Writer(path)
    await writer.start()
    writer.add("INSERT INTO settings (key, value) VALUES ('kept', 'yes')")
    await writer.commit()
    page_count = await writer.call(lambda c: c.execute("PRAGMA page_count").fetchone()[0])
    await writer.close()
    writer = Writer(path, max_pages=page_count + 1)  # the disk fills up from here
    await writer.start()
    writer.add("INSERT INTO settings (key, value) VALUES ('big', ?)", ("x" * 1_000_000,))
    with pytest.raises(StoreError, match="full"):
        await writer.commit()
    await writer.close()
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT key FROM settings").fetchall() == [("kept",)]


async def test_version_1_database_keeps_its_rows_when_upgraded(tmp_path: Path) -> None:
    from orchestrator_tui.store.schema import MIGRATIONS

    path = tmp_path / "v1.db"
    with sqlite3.connect(path) as raw:
        raw.executescript(MIGRATIONS[0])
        raw.execute("INSERT INTO attempts (session_id, task_id, attempt, boot_id, started_at) "
                    "VALUES ('s', 't', 1, 'b', 1.0)")
        raw.execute("PRAGMA user_version = 1")
    conn = await connect(path)
    await conn.close()
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        assert raw.execute("SELECT task_id, tokens_in, cost_usd, input_bytes FROM attempts"
                           ).fetchall() == [("t", None, None, None)]
        assert raw.execute("SELECT count(*) FROM checkpoints").fetchone() == (0,)


def test_a_loop_that_ends_without_closing_the_writer_leaves_no_traceback(
        tmp_path: Path) -> None:
    """The writer's thread may still hold a batch when the loop is gone: it stops quietly."""
    code = (
        "import asyncio, time\n"
        "from pathlib import Path\n"
        "from orchestrator_tui.store.writer import Writer\n"
        "async def main():\n"
        f"    writer = Writer(Path({str(tmp_path / 'x.db')!r}))\n"
        "    await writer.start()\n"
        "    writer.then(lambda: time.sleep(0.5))  # still in the thread when the loop ends\n"
        "asyncio.run(main())\n"
        "time.sleep(1)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
