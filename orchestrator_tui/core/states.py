"""The session and task state machines: one table of legal transitions each."""

from __future__ import annotations

from enum import StrEnum

from orchestrator_tui.core.errors import IllegalTransition


class SessionState(StrEnum):
    """Where a session is in its life."""

    IDLE = "IDLE"
    PLANNING = "PLANNING"
    EXECUTING = "EXECUTING"
    PAUSED = "PAUSED"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    ABORTED = "ABORTED"
    RECOVERING = "RECOVERING"


class TaskState(StrEnum):
    """Where one task of a plan is."""

    PENDING = "pending"
    READY = "ready"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"
    PAUSED = "paused"
    RETRYING = "retrying"
    INTERRUPTED = "interrupted"


S, T = SessionState, TaskState

SESSION_TRANSITIONS: dict[SessionState, frozenset[SessionState]] = {
    S.IDLE: frozenset({S.PLANNING, S.ABORTED}),
    S.PLANNING: frozenset({S.EXECUTING, S.COMPLETED, S.FAILED, S.ABORTED}),
    S.EXECUTING: frozenset({S.PAUSED, S.COMPLETED, S.FAILED, S.ABORTED, S.RECOVERING}),
    S.PAUSED: frozenset({S.EXECUTING, S.ABORTED, S.RECOVERING}),
    S.RECOVERING: frozenset({S.EXECUTING, S.PAUSED, S.FAILED, S.ABORTED}),
    S.COMPLETED: frozenset(),
    S.FAILED: frozenset(),
    S.ABORTED: frozenset(),
}

TASK_TRANSITIONS: dict[TaskState, frozenset[TaskState]] = {
    T.PENDING: frozenset({T.READY, T.SKIPPED, T.CANCELLED}),
    T.READY: frozenset({T.RUNNING, T.SKIPPED, T.CANCELLED}),
    T.RUNNING: frozenset({
        T.SUCCEEDED, T.FAILED, T.RETRYING, T.PAUSED, T.CANCELLED, T.INTERRUPTED, T.READY,
    }),
    T.PAUSED: frozenset({T.RUNNING, T.CANCELLED, T.INTERRUPTED, T.READY}),
    T.RETRYING: frozenset({T.READY, T.CANCELLED}),
    T.INTERRUPTED: frozenset({T.READY, T.SKIPPED, T.CANCELLED}),
    T.FAILED: frozenset({T.READY}),
    T.SUCCEEDED: frozenset(),
    T.SKIPPED: frozenset(),
    T.CANCELLED: frozenset(),
}
"""`running -> ready` and `paused -> ready` are the crash-recovery re-run of an idempotent task;
`failed -> ready` is a retry the user asked for."""

RESTORE_SESSION_TRANSITIONS: dict[SessionState, frozenset[SessionState]] = {
    state: frozenset({S.RECOVERING}) - {state} for state in S
}
RESTORE_TASK_TRANSITIONS: dict[TaskState, frozenset[TaskState]] = {
    state: frozenset({T.PENDING, T.SUCCEEDED}) - {state} for state in T
}
"""The moves only a checkpoint restore makes, on top of the tables above: any session enters
RECOVERING (then the ordinary RECOVERING -> PAUSED leaves it ready to resume), and any task
goes back to `pending`, or to `succeeded` when it had succeeded at checkpoint time. For the
engine the final states stay final; only an explicit restore reopens them."""

FINAL_SESSION_STATES = frozenset(s for s, nxt in SESSION_TRANSITIONS.items() if not nxt)
FINAL_TASK_STATES = frozenset(t for t, nxt in TASK_TRANSITIONS.items() if not nxt)
ACTIVE_SESSION_STATES = frozenset({S.PLANNING, S.EXECUTING, S.PAUSED, S.RECOVERING})
DONE_TASK_STATES = frozenset({T.SUCCEEDED, T.FAILED, T.SKIPPED, T.CANCELLED})
"""Task states after which the engine has nothing more to do unless the user asks."""


def check_session(session_id: str, current: SessionState, target: SessionState, *,
                  restore: bool = False) -> None:
    """Raise `IllegalTransition` unless the session may go from `current` to `target`
    (`restore`: also allow the moves of a checkpoint restore)."""
    legal = SESSION_TRANSITIONS[current]
    if restore:
        legal = legal | RESTORE_SESSION_TRANSITIONS[current]
    if target not in legal:
        allowed = sorted(state.value for state in legal)
        raise IllegalTransition(f"session {session_id}", current, target, allowed)


def check_task(task_id: str, current: TaskState, target: TaskState, *,
               restore: bool = False) -> None:
    """Raise `IllegalTransition` unless the task may go from `current` to `target`
    (`restore`: also allow the moves of a checkpoint restore)."""
    legal = TASK_TRANSITIONS[current]
    if restore:
        legal = legal | RESTORE_TASK_TRANSITIONS[current]
    if target not in legal:
        allowed = sorted(state.value for state in legal)
        raise IllegalTransition(f"task {task_id}", current, target, allowed)
