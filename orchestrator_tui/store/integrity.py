"""Is the database sound? SQLite's `quick_check` plus the invariants this tool relies on.

The check opens the file read-only and never writes to it, so it can be run on a damaged
file, on a backup, or on a database another engine is using. On a database of 100k
transitions it takes a few tens of milliseconds, so the engine runs it at every start.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from orchestrator_tui.core.states import SessionState, TaskState
from orchestrator_tui.store.database import (
    DatabaseCorrupt,
    busy_timeout_ms,
    describe,
    require_existing,
    ways_out,
)
from orchestrator_tui.store.files import header_problem
from orchestrator_tui.store.schema import SCHEMA_VERSION

EXAMPLES = 3
"""How many offending rows a problem quotes."""


@dataclass(frozen=True, slots=True)
class Report:
    """The outcome of checking one database file."""

    path: Path
    problems: tuple[str, ...]
    version: int | None
    seconds: float

    @property
    def ok(self) -> bool:
        """Whether no problem was found."""
        return not self.problems

    def summary(self) -> str:
        """One line for people: ok, or the problems."""
        if self.ok:
            return (f"database {self.path}: ok (schema {self.version}, checked in "
                    f"{self.seconds:.3f} s)")
        return f"database {self.path}: {len(self.problems)} problem(s): " \
               + "; ".join(self.problems)

    def as_error(self) -> DatabaseCorrupt:
        """The error to raise when a damaged database must not be used."""
        return DatabaseCorrupt(f"{self.summary()}. {ways_out(self.path)}")


def _names(values: type[SessionState] | type[TaskState]) -> str:
    return ", ".join(f"'{value.value}'" for value in values)


INVARIANTS: tuple[tuple[str, str], ...] = (
    ("tasks whose session does not exist",
     "SELECT t.session_id || '/' || t.id FROM tasks t "
     "LEFT JOIN sessions s ON s.id = t.session_id WHERE s.id IS NULL"),
    ("sessions in an unknown state",
     "SELECT id || ' (' || state || ')' FROM sessions "
     f"WHERE state NOT IN ({_names(SessionState)})"),
    ("tasks in an unknown state",
     "SELECT session_id || '/' || id || ' (' || state || ')' FROM tasks "
     f"WHERE state NOT IN ({_names(TaskState)})"),
    ("tasks with more than one open attempt",
     "SELECT session_id || '/' || task_id || ' (' || COUNT(*) || ')' FROM attempts "
     "WHERE finished_at IS NULL GROUP BY session_id, task_id HAVING COUNT(*) > 1"),
    ("attempts whose task does not exist",
     "SELECT a.session_id || '/' || a.task_id || ' #' || a.attempt FROM attempts a "
     "LEFT JOIN tasks t ON t.session_id = a.session_id AND t.id = a.task_id "
     "WHERE t.id IS NULL"),
)
"""(what is wrong, a query listing the offending rows) pairs."""


def open_read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection that cannot change the file (it must exist)."""
    timeout_ms = busy_timeout_ms()
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True,
                           timeout=timeout_ms / 1000,
                           isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout = {timeout_ms}")
    return conn


def check_connection(conn: sqlite3.Connection) -> tuple[list[str], int]:
    """The problems found through `conn`, and the schema version it reports."""
    problems = []
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if not 0 <= version <= SCHEMA_VERSION:
        problems.append(f"schema version {version} is outside 0..{SCHEMA_VERSION} (a newer "
                        "orchestrator-tui wrote it)")
    results = [str(row[0]) for row in conn.execute("PRAGMA quick_check(20)")]
    if results != ["ok"]:
        lines = [line for result in results for line in result.splitlines()
                 if line and not line.startswith("***")]
        more = f"; and {len(lines) - EXAMPLES} more" if len(lines) > EXAMPLES else ""
        problems.append("SQLite quick_check: " + "; ".join(lines[:EXAMPLES]) + more)
        return problems, version  # the invariants would only read damaged pages
    if version == 0:
        return problems, version  # an empty file: nothing recorded yet
    for what, query in INVARIANTS:
        rows = [row[0] for row in conn.execute(f"{query} LIMIT {EXAMPLES + 1}")]
        if rows:
            more = ", ..." if len(rows) > EXAMPLES else ""
            problems.append(f"{what}: {', '.join(rows[:EXAMPLES])}{more}")
    return problems, version


def check_file(path: Path) -> Report:
    """Check the database file `path` without changing it.

    Raises:
        StoreError: the file cannot be read at all (missing, locked past the busy timeout).
    """
    require_existing(path)
    started = time.perf_counter()
    problem = header_problem(path)
    if problem:
        return Report(path, (f"damaged or not a database: {problem}",), None,
                      time.perf_counter() - started)
    try:
        conn = open_read_only(path)
    except sqlite3.Error as error:
        raise describe(error, path) from error
    try:
        problems, version = check_connection(conn)
    except sqlite3.DatabaseError as error:
        failure = describe(error, path)
        if not isinstance(failure, DatabaseCorrupt):
            raise failure from error
        problems, version = [f"damaged or not a database: {error}"], None
    finally:
        conn.close()
    return Report(path, tuple(problems), version, time.perf_counter() - started)
