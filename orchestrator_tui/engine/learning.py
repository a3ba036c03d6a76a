"""What recorded history predicts for a plan: per-task durations with intervals, the plan's
ETA (the engine's schedule replayed with predicted durations), its success probability and
its bottleneck. Every figure carries its sample count; without history it is None."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiosqlite

from orchestrator_tui.core.errors import OrchestratorError
from orchestrator_tui.core.patterns import smoothed_rate
from orchestrator_tui.core.plan import Plan
from orchestrator_tui.core.predict import (
    Estimate,
    Predictor,
    Sample,
    fit,
    task_estimates,
    task_key,
)
from orchestrator_tui.core.simulate import simulate
from orchestrator_tui.engine.session import DEFAULT_PARALLEL_LIMIT
from orchestrator_tui.store import learning as history
from orchestrator_tui.store import queries
from orchestrator_tui.store.database import connect
from orchestrator_tui.store.learning import AttemptSample

NEWEST_ATTEMPTS = 5000
"""The most ended attempts (the latest started) a predictor is fitted on: many sessions of
history for each kind in common use, and a read and a fit, paid at every session's start,
that stop growing with the history."""


@dataclass(frozen=True, slots=True)
class TaskForecast:
    """One task's predicted duration (None: no data yet) and its success record."""

    task_id: str
    kind: str
    estimate: Estimate | None
    runs: int
    """Finished tasks of this kind on record (succeeded or failed)."""
    successes: int


@dataclass(frozen=True, slots=True)
class PlanForecast:
    """The forecast of one plan from recorded history."""

    intent: str
    parallel_limit: int
    tasks: list[TaskForecast]
    samples: int
    """Recorded successful attempt durations the predictor was fitted on."""
    coverage: float
    eta: float | None
    eta_low: float | None
    eta_high: float | None
    success_probability: float | None
    success_tasks: int
    """Tasks whose kind has a success record (the probability covers only these)."""
    bottleneck: str | None
    bottleneck_seconds: float | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able data."""
        data = asdict(self)
        data["tasks"] = [{"task": t.task_id, "kind": t.kind, "runs": t.runs,
                          "successes": t.successes,
                          "estimate": asdict(t.estimate) if t.estimate else None}
                         for t in self.tasks]
        return data


async def load_predictor(conn: aiosqlite.Connection,
                         before: float | None = None) -> tuple[Predictor, int]:
    """The predictor fitted on the successful attempts among the `NEWEST_ATTEMPTS` latest
    ended before `before`, and their count (the fit runs in a thread: the loop goes on
    meanwhile)."""
    return await fitted(await history.attempt_samples(conn, before, NEWEST_ATTEMPTS))


async def fitted(rows: Iterable[history.AttemptSample]) -> tuple[Predictor, int]:
    """The predictor fitted (in a thread) on the successful attempts of `rows`, and their
    count."""
    samples = [Sample(row.kind, row.seconds, row.input_bytes, run=row.session_id,
                      task=task_key(row.intent, row.task_id), count=row.kind_count)
               for row in rows if row.outcome == "succeeded"]
    return await asyncio.to_thread(fit, samples), len(samples)


async def success_records(conn: aiosqlite.Connection,
                          before: float | None = None) -> dict[str, tuple[int, int]]:
    """Per kind (agent, else program): (tasks succeeded, tasks succeeded or failed), of the
    tasks that ended by `before`."""
    return await history.success_tally(conn, before)


def forecast(plan: Plan, predictor: Predictor, samples: int,
             records: dict[str, tuple[int, int]], parallel_limit: int) -> PlanForecast:
    """The forecast of `plan` at `parallel_limit` from a fitted predictor and success records."""
    tasks = []
    estimates = task_estimates(plan, predictor)
    for task_id in plan.order:
        kind = plan.tasks[task_id].kind
        good, runs = records.get(kind, (0, 0))
        tasks.append(TaskForecast(task_id, kind, estimates[task_id], runs, good))
    eta = low = high = None
    bottleneck, bottleneck_seconds = None, None
    if tasks and all(t.estimate is not None for t in tasks):
        points = {t.task_id: t.estimate.point for t in tasks if t.estimate}
        eta = simulate(plan, points, parallel_limit).makespan
        low = simulate(plan, {t.task_id: t.estimate.low for t in tasks if t.estimate},
                       parallel_limit, estimates=points).makespan
        high = simulate(plan, {t.task_id: t.estimate.high for t in tasks if t.estimate},
                        parallel_limit, estimates=points).makespan
        path = plan.critical_path(points)
        bottleneck = max(path, key=points.__getitem__) if path else None
        bottleneck_seconds = points[bottleneck] if bottleneck else None
    known = [t for t in tasks if t.runs]
    probability = math.prod(smoothed_rate(t.successes, t.runs) for t in known) if known \
        else None
    return PlanForecast(plan.intent.name, parallel_limit, tasks, samples, predictor.coverage,
                        eta, low, high, probability, len(known), bottleneck,
                        bottleneck_seconds)


async def parallel_limit_of(conn: aiosqlite.Connection) -> int:
    """The user's stored parallel limit, else the engine's default."""
    stored = await queries.setting(conn, "parallel_limit")
    return int(stored) if stored and stored.isdigit() else DEFAULT_PARALLEL_LIMIT


async def predict_plan(conn: aiosqlite.Connection, plan: Plan,
                       parallel_limit: int | None = None) -> PlanForecast:
    """Forecast `plan` from everything recorded, at the given or the stored parallel limit."""
    predictor, samples = await load_predictor(conn)
    limit = parallel_limit or await parallel_limit_of(conn)
    return forecast(plan, predictor, samples, await success_records(conn), limit)


@dataclass(frozen=True, slots=True)
class PastPrediction:
    """What history before a finished session predicted for it, and what happened."""

    session_id: str
    intent: str
    state: str
    predicted: float
    low: float
    high: float
    actual: float
    samples: int

    @property
    def inside(self) -> bool:
        """Whether the real duration fell inside the predicted interval."""
        return self.low <= self.actual <= self.high


async def past_predictions(conn: aiosqlite.Connection, count: int = 10,
                           attempts: list[AttemptSample] | None = None) -> list[PastPrediction]:
    """For the newest `count` finished sessions, the forecast made only from history recorded
    before each started (the `NEWEST_ATTEMPTS` that ended last, about what a start reads),
    against its real duration (sessions without such history left out; `attempts`: the
    recorded attempts, oldest end first, when the caller has read them already)."""
    found = []
    if attempts is None:
        attempts = await history.attempt_samples(conn)  # read once, cut per session below
    for session in await queries.list_sessions(conn, limit=200):
        if session.finished_at is None or session.state not in ("COMPLETED", "FAILED"):
            continue
        try:
            plan = Plan.from_dict(json.loads(session.plan))
        except (OrchestratorError, ValueError, TypeError, KeyError):
            continue
        earlier = [row for row in attempts
                   if row.started_at + row.seconds <= session.created_at][-NEWEST_ATTEMPTS:]
        if not earlier:
            continue
        predictor, samples = await fitted(earlier)
        result = forecast(plan, predictor, samples, {}, session.parallel_limit)
        if result.eta is None or result.eta_low is None or result.eta_high is None:
            continue
        found.append(PastPrediction(session.id, session.intent, session.state, result.eta,
                                    result.eta_low, result.eta_high,
                                    session.finished_at - session.created_at, samples))
        if len(found) == count:
            break
    return found


async def remember_intent_choice(db_path: Path, phrase: str, intent: str) -> None:
    """Store that the user started `intent` after typing `phrase` (what the matcher learns)."""
    phrase = " ".join(phrase.split())[:500]
    if not phrase:
        return
    conn = await connect(db_path)
    try:
        await history.record_intent_choice(conn, phrase, intent, time.time())
    finally:
        await conn.close()
