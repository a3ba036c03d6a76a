"""The solution cache: fingerprints, hits only on identical inputs, limits, the hit rate."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
from pathlib import Path

from orchestrator_tui.engine.cache import ProblemKey, lookup, workspace_fingerprint
from orchestrator_tui.store import cache as cache_store
from orchestrator_tui.store.database import connect
from tests.conftest import Run, python_argv, write_workflow


def git(folder: Path, *argv: str) -> None:
    subprocess.run(["git", "-C", str(folder), "-c", "user.name=t", "-c", "user.email=t@t",
                    *argv], check=True, capture_output=True)


def test_files_fingerprint_sees_one_byte_and_skips_its_own_folder(workspace: Path) -> None:
    before = workspace_fingerprint(workspace)
    assert before.startswith("files:") and workspace_fingerprint(workspace) == before
    (workspace / ".orchestrator").mkdir()
    (workspace / ".orchestrator" / "state.db").write_bytes(b"anything")
    assert workspace_fingerprint(workspace) == before
    with (workspace / "app.py").open("a") as handle:
        handle.write("#")
    assert workspace_fingerprint(workspace) != before


def test_git_fingerprint_sees_changes_and_untracked_files(workspace: Path) -> None:
    git(workspace, "init", "-q")
    git(workspace, "add", "app.py")
    git(workspace, "commit", "-q", "-m", "first")
    clean = workspace_fingerprint(workspace)
    assert clean.startswith("git:")
    source = (workspace / "app.py").read_bytes()
    (workspace / "app.py").write_bytes(source.replace(b"a + b", b"a - b"))  # one byte
    changed = workspace_fingerprint(workspace)
    assert changed != clean
    (workspace / "app.py").write_bytes(source)
    assert workspace_fingerprint(workspace) == clean
    (workspace / "notes.txt").write_text("x")
    untracked = workspace_fingerprint(workspace)
    assert untracked != clean
    (workspace / "notes.txt").write_text("y")
    assert workspace_fingerprint(workspace) not in (clean, untracked)
    git(workspace, "add", "notes.txt")
    git(workspace, "commit", "-q", "-m", "second")
    assert workspace_fingerprint(workspace) not in (clean, untracked)


def test_age_and_size_limits_and_counters(tmp_path: Path) -> None:
    db = tmp_path / "state.db"

    async def scenario() -> None:
        conn = await connect(db)
        try:
            for n in range(cache_store.MAX_ENTRIES + 5):
                await cache_store.store(conn, cache_store.CacheEntry(
                    f"h{n}", "fix", f"s{n}", "done", 1000.0 + n), not_before=0.0)
            assert await cache_store.size(conn) == cache_store.MAX_ENTRIES
            assert await cache_store.find(conn, "h0", 0.0) is None  # the oldest went first
        finally:
            await conn.close()
        newest = 1000.0 + cache_store.MAX_ENTRIES + 4
        key = ProblemKey("fix", f"h{cache_store.MAX_ENTRIES + 4}")
        found = await lookup(db, key, now=newest + 86400)
        assert found is not None and found.session_id == f"s{cache_store.MAX_ENTRIES + 4}"
        assert await lookup(db, key, now=newest + 8 * 86400) is None  # older than 7 days
        assert await lookup(db, ProblemKey("fix", "other"), now=newest) is None
        conn = await connect(db)
        try:
            assert await cache_store.counters(conn) == (1, 2)
        finally:
            await conn.close()

    asyncio.run(scenario())


CACHE_ON = {"ORCHESTRATOR_NO_CACHE": ""}


def sessions(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM sessions").fetchone()[0])


def test_run_uses_the_cache_only_for_identical_inputs(cli: Run, workspace: Path,
                                                       db_path: Path) -> None:
    workflow = write_workflow(workspace, "intents:\n  tidy:\n    tasks:\n      - id: say\n"
                                         f"        command: {python_argv('print(42)')}\n")
    first = cli("run", "tidy", "--workflow", str(workflow), env=CACHE_ON)
    assert first.returncode == 0, first.stderr
    assert "Using cached solution" not in first.stdout and sessions(db_path) == 1
    (session_id,) = sqlite3.connect(db_path).execute("SELECT id FROM sessions").fetchone()
    again = cli("run", "tidy", "--workflow", str(workflow), env=CACHE_ON)
    assert again.returncode == 0, again.stderr
    assert f"Using cached solution from session {session_id} (" in again.stdout
    assert "say: succeeded - 42" in again.stdout and sessions(db_path) == 1
    as_json = json.loads(cli("run", "tidy", "--workflow", str(workflow), "--json",
                             env=CACHE_ON).stdout)
    assert as_json["cached"] is True and as_json["session"] == session_id
    forced = cli("run", "tidy", "--workflow", str(workflow), "--no-cache", env=CACHE_ON)
    assert forced.returncode == 0 and "Using cached" not in forced.stdout
    assert sessions(db_path) == 2
    with (workspace / "app.py").open("a") as handle:
        handle.write("\n")  # one byte
    changed = cli("run", "tidy", "--workflow", str(workflow), env=CACHE_ON)
    assert changed.returncode == 0 and "Using cached" not in changed.stdout
    assert sessions(db_path) == 3
    switched_off = cli("run", "tidy", "--workflow", str(workflow))  # $ORCHESTRATOR_NO_CACHE
    assert switched_off.returncode == 0 and "Using cached" not in switched_off.stdout
    assert sessions(db_path) == 4
    metrics = json.loads(cli("learn", "agent-performance", "--json").stdout)
    assert metrics and metrics[0]["runs"] == 4
    with sqlite3.connect(db_path) as conn:
        counts = dict(conn.execute("SELECT name, count FROM cache_counters").fetchall())
    assert counts == {"hits": 2, "misses": 2}
