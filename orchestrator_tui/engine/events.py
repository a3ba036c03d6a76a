"""What flows into an execution (events) and out of it (snapshots, journal entries)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from orchestrator_tui.core.errors import StoreError
from orchestrator_tui.core.remaining import Remaining
from orchestrator_tui.core.timeouts import Timeout
from orchestrator_tui.engine.runners.base import Handle, Outcome


@dataclass(frozen=True, slots=True)
class Completion:
    """An attempt ended."""

    task_id: str
    attempt: int
    outcome: Outcome


@dataclass(frozen=True, slots=True)
class Control:
    """A request to the running session: pause, resume, abort or set-limit."""

    action: str
    argument: str | None = None
    control_id: int | None = None
    reason: str = "requested by the user"


@dataclass(frozen=True, slots=True)
class Fatal:
    """The database refused a write: the run cannot go on safely."""

    error: StoreError


@dataclass(frozen=True, slots=True)
class RetryDue:
    """A failed task's backoff has passed."""

    task_id: str


@dataclass(frozen=True, slots=True)
class Wake:
    """Rows changed outside the loop: flush them."""


WAKE = Wake()
Event = Completion | Control | RetryDue | Fatal | Wake


@dataclass(slots=True)
class Attempt:
    """A task being executed now, and the attempt row it writes."""

    number: int
    started_at: float
    handle: Handle | None = None
    paused: bool = False
    pid: int | None = None
    process_start: float | None = None
    finished_at: float | None = None
    outcome: Outcome | None = None
    verdict: str | None = None
    runner: str | None = None
    """The agent CLI running it, once it has reported its session; None for commands."""
    agent_session: str | None = None
    timeout: Timeout | None = None
    """The time limit it runs under (the workflow's, or one learned from history)."""
    input_bytes: int | None = None
    """The size of what it was given, where known (an agent's prompt)."""
    queued: bool = False
    """Whether its row has gone to the writer (later changes then update that row)."""

    @property
    def only_started(self) -> bool:
        """Whether nothing is known of it yet but its start (no pid, no end)."""
        return self.outcome is None and self.pid is None and self.process_start is None \
            and self.finished_at is None and self.verdict is None


@dataclass(slots=True)
class TaskRow:
    """The stored columns of a task besides its state, kept to write them in one statement."""

    attempts: int = 0
    exit_code: int | None = None
    result: str | None = None
    error: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    updated_at: float = 0.0

    @property
    def ended(self) -> bool:
        """Whether it holds anything of an end (an exit code, result, error or finish)."""
        return self.exit_code is not None or self.result is not None \
            or self.error is not None or self.finished_at is not None


@dataclass(frozen=True, slots=True)
class TaskView:
    """What a screen or progress line shows of one started task."""

    task_id: str
    kind: str
    state: str
    attempt: int
    started_at: float
    pid: int | None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The session at one instant, for screens and progress lines (immutable)."""

    session_id: str
    state: str
    total: int
    counts: Mapping[str, int]
    running: tuple[TaskView, ...]
    parallel_limit: int
    started_at: float
    taken_at: float
    notes: tuple[str, ...] = field(default_factory=tuple)
    """The last notes of the journal (failures, control outcomes, deadlocks)."""
    journal_seq: int = 0
    """The number of the newest journal entry; ask `journal_since` for newer ones."""
    remaining: Remaining | None = None
    """The predicted time left and its interval (None: no data yet)."""


class JournalEntry(NamedTuple):
    """One line of a session's live log: a state change or a note, numbered in order (a
    named tuple: the engine makes three for every task, and a tuple is made fastest)."""

    seq: int
    at: float
    kind: str
    """`session` or `task` for state changes, `note` for anything else worth saying."""
    task_id: str | None
    old: str | None
    new: str | None
    text: str
