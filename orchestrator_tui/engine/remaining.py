"""Time remaining of a session read from the database (run by another process, or shown by
`orchestrator state current`): the same forecast an engine keeps for the sessions it runs
(`core.remaining`), from the history recorded before the session started."""

from __future__ import annotations

import json
from collections.abc import Iterable

import aiosqlite

from orchestrator_tui.core.errors import OrchestratorError
from orchestrator_tui.core.plan import Plan
from orchestrator_tui.core.remaining import LiveRemaining, Remaining
from orchestrator_tui.core.states import ACTIVE_SESSION_STATES, DONE_TASK_STATES
from orchestrator_tui.engine.learning import load_predictor
from orchestrator_tui.store.queries import SessionRow, TaskRow, session_tasks

RUNNING = ("running", "paused")


async def live_remaining(conn: aiosqlite.Connection,
                         session: SessionRow) -> LiveRemaining | None:
    """The session's forecaster, fitted on attempts that ended before it started; None
    without such history, or when its stored plan cannot be read."""
    predictor, samples = await load_predictor(conn, before=session.created_at)
    if not samples:
        return None
    try:
        plan = Plan.from_dict(json.loads(session.plan))
    except (OrchestratorError, ValueError, TypeError, KeyError):
        return None
    return LiveRemaining(plan, predictor)


def remaining_of(forecaster: LiveRemaining | None, tasks: Iterable[TaskRow],
                 parallel_limit: int, now: float) -> Remaining | None:
    """The time left at `now` given the session's task rows (None: no data yet)."""
    if forecaster is None:
        return None
    finished, running = set(), {}
    for task in tasks:
        if task.state in DONE_TASK_STATES:
            finished.add(task.id)
        elif task.state in RUNNING:
            running[task.id] = now - (task.started_at or now)
    return forecaster.estimate(finished, running, parallel_limit, now)


async def session_remaining(conn: aiosqlite.Connection, session: SessionRow,
                            now: float) -> Remaining | None:
    """The time an active session still needs (None: no data yet, or it has ended)."""
    if session.state not in ACTIVE_SESSION_STATES:
        return None
    forecaster = await live_remaining(conn, session)
    if forecaster is None:
        return None
    return remaining_of(forecaster, await session_tasks(conn, session.id),
                        session.parallel_limit, now)
