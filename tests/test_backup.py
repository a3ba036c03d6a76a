"""Backups: taken automatically and on request, checked, pruned, restored; and reset."""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator_tui.core.errors import StoreError
from orchestrator_tui.engine.session import Engine
from orchestrator_tui.store.backup import (
    auto_backup,
    choose_backup,
    find_backup,
    list_backups,
    take_backup,
)
from orchestrator_tui.store.database import DatabaseCorrupt
from orchestrator_tui.store.integrity import check_file
from tests.conftest import (
    Run,
    copy_database,
    seed_database,
)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database with one completed session of 2 tasks, written once by the real CLI."""
    return seed_database(tmp_path_factory.mktemp("seed"), 2)


@pytest.fixture
def seeded(template: Path, db_path: Path) -> Path:
    """The workspace's database: a copy of the template."""
    return copy_database(template, db_path)


def sessions(db: Path) -> int:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM sessions").fetchone()[0])


async def test_engine_start_backs_up_when_due_and_keeps_the_newest(seeded: Path) -> None:
    async with await Engine.open(seeded) as engine:
        assert engine.notes and engine.notes[0].startswith("backup written: ")
    first = list_backups(seeded)
    assert len(first) == 1
    assert stat.S_IMODE(first[0].path.stat().st_mode) == 0o600
    assert stat.S_IMODE(first[0].path.parent.stat().st_mode) == 0o700
    assert first[0].path.name.startswith("state-") and first[0].path.suffix == ".db"
    assert not list(first[0].path.parent.glob("*-wal"))
    async with await Engine.open(seeded) as engine:  # the newest is fresh: no new backup
        assert engine.notes == []
    for _ in range(3):
        await (await Engine.open(seeded, backup_every_minutes=0, keep_backups=2)).close()
    kept = list_backups(seeded)
    assert len(kept) == 2 and first[0].path not in [b.path for b in kept]
    assert kept[0].taken_at > kept[1].taken_at
    assert all(check_file(b.path).ok and sessions(b.path) == 1 for b in kept)


async def test_an_empty_database_is_not_backed_up(tmp_path: Path) -> None:
    db = tmp_path / "fresh.db"
    async with await Engine.open(db):
        pass
    assert list_backups(db) == [] and auto_backup(db) is None


def test_a_damaged_database_is_never_backed_up(seeded: Path) -> None:
    good = take_backup(seeded)
    with contextlib.closing(sqlite3.connect(seeded)) as conn, conn:
        conn.execute("UPDATE sessions SET state = 'SIDEWAYS'")
    with pytest.raises(DatabaseCorrupt, match=r"fails the check, so no backup was taken: "
                                              r"sessions in an unknown state"):
        take_backup(seeded, keep=1)
    assert [b.path for b in list_backups(seeded)] == [good.path]
    assert not list(good.path.parent.glob("*.partial"))


def test_cli_backup_list_restore(cli: Run, seeded: Path) -> None:
    for _ in range(2):
        assert cli("db", "backup").returncode == 0
    listing = json.loads(cli("db", "backups", "--json").stdout)
    assert len(listing["backups"]) == 2
    newest = listing["backups"][0]["name"]
    garbage = b"not a database, just some bytes\n" * 300
    seeded.write_bytes(garbage)
    preview = cli("db", "restore")
    assert preview.returncode == 1
    assert f"would restore {seeded} from {newest}" in preview.stdout
    assert "Run again with --yes" in preview.stdout and seeded.read_bytes() == garbage
    done = cli("db", "restore", "--yes", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["backup"]["name"] == newest
    aside = Path(result["moved"][0])
    assert aside.name.startswith("state.db.corrupt-") and aside.read_bytes() == garbage
    assert stat.S_IMODE(seeded.stat().st_mode) == 0o600
    assert sessions(seeded) == 1 and cli("db", "check").returncode == 0


def test_restore_passes_over_damaged_backups(cli: Run, seeded: Path) -> None:
    older = take_backup(seeded)
    newer = take_backup(seeded)
    newer.path.write_bytes(newer.path.read_bytes()[:5000])
    chosen, skipped = choose_backup(seeded)
    assert chosen.path == older.path and [b.path for b, _ in skipped] == [newer.path]
    named = cli("db", "restore", newer.path.name, "--yes")
    assert named.returncode == 2 and f"backup {newer.path} is damaged" in named.stderr
    out = cli("db", "restore", "--yes")
    assert out.returncode == 0, out.stderr
    assert f"skipped damaged backup {newer.path.name}" in out.stdout
    assert "state.db.replaced-" in out.stdout  # the current file was sound


def test_typed_backup_names_stay_in_the_backups_folder(seeded: Path, tmp_path: Path) -> None:
    backup = take_backup(seeded)
    assert find_backup(seeded, backup.path.name[:12]).path == backup.path
    assert find_backup(seeded, str(backup.path)).path == backup.path
    outside = tmp_path / "elsewhere" / backup.path.name
    outside.parent.mkdir()
    shutil.copyfile(backup.path, outside)
    for name in (str(outside), "../state.db", "/etc/passwd", "nothing-like-it"):
        with pytest.raises(StoreError, match="no backup named"):
            find_backup(seeded, name)


def test_restore_with_no_backup_says_reset(cli: Run, seeded: Path) -> None:
    out = cli("db", "restore", "--yes")
    assert out.returncode == 2 and "there is no backup" in out.stderr
    assert "orchestrator db reset --yes" in out.stderr


HOLD_OPEN = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1])
conn.execute("SELECT COUNT(*) FROM sessions").fetchone()
print("open", flush=True)
sys.stdin.read()
"""


def test_restore_and_reset_refuse_while_another_process_has_it_open(cli: Run,
                                                                    seeded: Path) -> None:
    take_backup(seeded)
    holder = subprocess.Popen([sys.executable, "-c", HOLD_OPEN, str(seeded)], text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        for args in (("db", "restore", "--yes"), ("db", "reset", "--yes")):
            out = cli(*args)
            assert out.returncode == 2 and f"is open in pid {holder.pid}" in out.stderr
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=10)
    assert sessions(seeded) == 1 and not list(seeded.parent.glob("state.db.*-*"))


def test_reset_asks_first_and_moves_the_file_aside(cli: Run, seeded: Path) -> None:
    before = seeded.read_bytes()
    preview = cli("db", "reset")
    assert preview.returncode == 1 and "Run again with --yes" in preview.stdout
    assert f"{seeded} would be moved aside to {seeded}.replaced-" in preview.stdout
    assert seeded.read_bytes() == before
    done = cli("db", "reset", "--yes", "--json")
    assert done.returncode == 0, done.stderr
    aside = Path(json.loads(done.stdout)["moved"][0])
    assert aside.read_bytes() == before and sessions(aside) == 1
    assert sessions(seeded) == 0 and check_file(seeded).ok
    assert "no session" in cli("state", "current").stderr
