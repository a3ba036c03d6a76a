"""The solution cache: the problem hash (intent, plan, workspace fingerprint), lookups that
count hits and misses, and storing a completed session's summary under its hash."""

from __future__ import annotations

import asyncio
import hashlib
import os
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import aiosqlite

from orchestrator_tui.core.errors import OrchestratorError
from orchestrator_tui.core.plan import Plan
from orchestrator_tui.store import cache as cache_store
from orchestrator_tui.store import queries, records
from orchestrator_tui.store.database import connect, describe

DEFAULT_MAX_AGE_DAYS = 7
MAX_FILES = 20_000
"""Files a fingerprint outside git looks at; more only change it through their count."""
MAX_HASHED_BYTES = 16 * 1024 * 1024
"""Untracked files larger than this are fingerprinted by size and time, not content."""
SKIPPED = (".orchestrator", ".git")
SUMMARY_LINES = 40
OFF_VARIABLE = "ORCHESTRATOR_NO_CACHE"
"""Set to a non-empty value, `orchestrator run` never offers a cached solution."""


def wanted(no_cache_option: bool) -> bool:
    """Whether `orchestrator run` should look the cache up (`--no-cache` and
    `$ORCHESTRATOR_NO_CACHE` turn it off)."""
    return not no_cache_option and not os.environ.get(OFF_VARIABLE)


@dataclass(frozen=True, slots=True)
class ProblemKey:
    """The problem hash of one run and what it was made of."""

    intent: str
    digest: str


def workspace_fingerprint(workspace: Path) -> str:
    """A hash of the workspace's content: in git, HEAD plus the uncommitted changes and the
    untracked files' names and contents; elsewhere, relative paths, sizes and modification
    times of up to `MAX_FILES` files (`.orchestrator/` and `.git/` skipped)."""
    inside = _git(workspace, "rev-parse", "--is-inside-work-tree")
    if inside is not None and inside.strip() == b"true":
        return "git:" + _git_fingerprint(workspace)
    return "files:" + _files_fingerprint(workspace)


def _git(workspace: Path, *argv: str) -> bytes | None:
    try:
        done = subprocess.run(["git", "-C", str(workspace), *argv], capture_output=True,
                              check=False, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def _git_fingerprint(workspace: Path) -> str:
    digest = hashlib.sha256()
    head = _git(workspace, "rev-parse", "--verify", "-q", "HEAD")
    digest.update(b"head:" + (head or b"none") + b"\0")
    diff = _git(workspace, "diff", "--binary", "HEAD") if head else \
        _git(workspace, "diff", "--binary", "--cached")
    digest.update(b"diff:" + (diff or b"") + b"\0")
    untracked = _git(workspace, "ls-files", "--others", "--exclude-standard", "-z") or b""
    for name in sorted(part for part in untracked.split(b"\0") if part):
        digest.update(b"untracked:" + name + b"\0")
        digest.update(_file_digest(workspace / os.fsdecode(name)).encode() + b"\0")
    return digest.hexdigest()


def _file_digest(path: Path) -> str:
    try:
        info = path.lstat()
        if not path.is_file() or path.is_symlink():
            return f"other:{info.st_size}:{info.st_mtime_ns}"
        if info.st_size > MAX_HASHED_BYTES:
            return f"big:{info.st_size}:{info.st_mtime_ns}"
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return "unreadable"


def _files_fingerprint(workspace: Path) -> str:
    digest = hashlib.sha256()
    seen = 0
    for folder, dirs, files in os.walk(workspace):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED)
        for name in sorted(files):
            path = Path(folder, name)
            try:
                info = path.lstat()
            except OSError:
                continue
            relative = path.relative_to(workspace).as_posix()
            digest.update(f"{relative}\0{info.st_size}\0{info.st_mtime_ns}\0".encode(
                "utf-8", "surrogateescape"))
            seen += 1
            if seen >= MAX_FILES:
                return digest.hexdigest() + f":{seen}+"
    return digest.hexdigest()


async def problem_key(plan: Plan, workspace: Path) -> ProblemKey:
    """The problem hash of running `plan` in `workspace` now."""
    plan_digest = records.plan_hash(records.to_json(plan.to_dict()))
    fingerprint = await asyncio.to_thread(workspace_fingerprint, workspace)
    whole = hashlib.sha256(f"{plan.intent.name}\0{plan_digest}\0{fingerprint}".encode())
    return ProblemKey(plan.intent.name, whole.hexdigest())


async def max_age_seconds(conn: aiosqlite.Connection) -> float:
    """The `cache_max_age_days` setting in seconds."""
    stored = await queries.setting(conn, "cache_max_age_days")
    days = int(stored) if stored and stored.isdigit() else DEFAULT_MAX_AGE_DAYS
    return days * 86400.0


async def lookup(db_path: Path, key: ProblemKey,
                 now: float | None = None) -> cache_store.CacheEntry | None:
    """The cached solution of `key` within the age limit, counting a hit or a miss; None
    as well when the database cannot be used (the run that follows reports why)."""
    now = time.time() if now is None else now
    try:
        conn = await connect(db_path)
    except (OrchestratorError, sqlite3.Error):
        return None
    try:
        entry = await cache_store.find(conn, key.digest, now - await max_age_seconds(conn))
        await cache_store.count(conn, "hits" if entry else "misses")
        return entry
    except sqlite3.Error:
        return None
    finally:
        await conn.close()


async def remember(db_path: Path, key: ProblemKey, session_id: str,
                   now: float | None = None) -> str:
    """Store the summary of the completed session `session_id` under `key`; return it.

    Raises:
        StoreError: the database cannot be written (named, with a way out).
    """
    now = time.time() if now is None else now
    conn = await connect(db_path)
    try:
        summary = await session_summary(conn, session_id)
        entry = cache_store.CacheEntry(key.digest, key.intent, session_id, summary, now)
        await cache_store.store(conn, entry, now - await max_age_seconds(conn))
        return summary
    except sqlite3.Error as error:
        raise describe(error, db_path) from error
    finally:
        await conn.close()


async def session_summary(conn: aiosqlite.Connection, session_id: str) -> str:
    """One line per task of the session: its state and result (or error)."""
    tasks = await queries.session_tasks(conn, session_id)
    lines = []
    for task in tasks[:SUMMARY_LINES]:
        said = " ".join((task.result or task.error or "").split())[:200]
        lines.append(f"{task.id}: {task.state}" + (f" - {said}" if said else ""))
    if len(tasks) > SUMMARY_LINES:
        lines.append(f"... and {len(tasks) - SUMMARY_LINES} more tasks")
    return "\n".join(lines) or "(no tasks)"
