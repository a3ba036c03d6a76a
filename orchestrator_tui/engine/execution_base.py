"""What the parts of an execution share: the attributes `Execution` sets and the methods
its parts call on each other, declared once for the type checker."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from orchestrator_tui.core.admission import Admission, Need
from orchestrator_tui.core.plan import Plan
from orchestrator_tui.core.policy import ReadyQueue
from orchestrator_tui.core.states import SessionState, TaskState
from orchestrator_tui.engine.events import Attempt, Control, Event
from orchestrator_tui.engine.failure_recovery import FailureRecovery
from orchestrator_tui.engine.jobs import JobFactory
from orchestrator_tui.engine.record import SessionRecord
from orchestrator_tui.engine.runners.base import Handle
from orchestrator_tui.store.writer import Writer

Checkpointer = Callable[[str, str], Awaitable[str]]
"""Takes a checkpoint of the session given a name and a reason; returns its id."""


class ExecutionParts:
    """The state of one session's run as its parts see it (a base of `Execution`)."""

    _aborting: bool
    _agent_limits: dict[str, int]
    _agent_of: dict[str, str | None]
    _agent_running: dict[str, str]
    _bottom: dict[str, float]
    _commit: Callable[[], Coroutine[Any, Any, None]]
    _events: asyncio.Queue[Event]
    _failures: list[str]
    _held: dict[str, list[str]]
    _held_needs: dict[str, Need]
    _launch_terminate: Callable[[str, Handle], None]
    _level: int
    _levels: list[list[str]]
    _paused: bool
    _phases_begun: set[str]
    _pressure_held: set[str]
    _pressure_limit: int | None
    _pressure_session: bool
    _push: Callable[[str], None]
    _ready: ReadyQueue
    _retry_timers: dict[str, asyncio.TimerHandle]
    _running: dict[str, Attempt]
    _set_session: Callable[[SessionState, str, float], None]
    _skip_dependents: Callable[[str, float], None]
    _track: Callable[[Coroutine[Any, Any, None], str], None]
    _waiting: dict[str, int]
    admission: Admission | None
    checkpoint: Checkpointer | None
    counts: dict[str, int]
    failure_recovery: FailureRecovery
    jobs: JobFactory
    max_concurrent: int | None
    mode: str
    parallel_limit: int
    plan: Plan
    pool_dynamic: bool
    record: SessionRecord
    request: Callable[[Control], None]
    session_id: str
    states: dict[str, TaskState]
    steals: dict[str, int]
    user_limit: int
    writer: Writer

    @property
    def session_state(self) -> SessionState:
        """Where the session is now."""
        return self.record.session_state
