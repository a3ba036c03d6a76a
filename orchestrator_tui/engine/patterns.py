"""Patterns and performance in recorded history: an intent's recent runs, what usually
follows it, recurring failures per agent, the parallel limit used; per-agent performance; the
spec's success metrics against their targets. Nothing without data behind it."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import aiosqlite

from orchestrator_tui.core.patterns import error_signature, most_common, percentile, usual_next
from orchestrator_tui.store import cache as cache_store
from orchestrator_tui.store import learning as history
from orchestrator_tui.store import queries
from orchestrator_tui.store.learning import AttemptSample
from orchestrator_tui.store.queries import SessionRow

SESSIONS_READ = 2000
FINISHED_SESSIONS = ("COMPLETED", "FAILED", "ABORTED")


@dataclass(frozen=True, slots=True)
class Patterns:
    """What the history of one intent shows."""

    intent: str
    recent: list[dict[str, Any]]
    """Newest first: session, state, seconds (None while unfinished), started."""
    next_intents: list[tuple[str, int]]
    failures: dict[str, list[tuple[str, int]]]
    """Per agent: error signatures seen at least twice in this intent's sessions."""
    parallel_limit: tuple[int, int] | None
    """The limit most used for this intent and in how many of its sessions."""
    sessions: int


async def patterns(conn: aiosqlite.Connection, intent: str) -> Patterns:
    """The patterns of `intent` over the recorded sessions."""
    sessions = await queries.list_sessions(conn, limit=SESSIONS_READ)
    mine = [s for s in sessions if s.intent == intent]
    recent = [{"session": s.id, "state": s.state, "started": s.created_at,
               "seconds": s.finished_at - s.created_at if s.finished_at else None}
              for s in mine[:5]]
    following: Counter[str] = Counter()
    by_workspace: dict[str, list[SessionRow]] = defaultdict(list)
    for session in sorted(sessions, key=lambda s: s.created_at):
        by_workspace[session.workspace].append(session)
    for runs in by_workspace.values():
        for name, n in usual_next([s.intent for s in runs], intent):
            following[name] += n
    ids = {s.id for s in mine}
    signatures: dict[str, Counter[str]] = defaultdict(Counter)
    for task in await history.task_outcomes(conn):
        if task.state == "failed" and task.session_id in ids:
            signatures[task.kind][error_signature(task.error or "")] += 1
    failures = {kind: [(sig, n) for sig, n in tally.most_common() if n >= 2]
                for kind, tally in sorted(signatures.items())}
    return Patterns(intent, recent, following.most_common(),
                    {kind: found for kind, found in failures.items() if found},
                    most_common([s.parallel_limit for s in mine]), len(mine))


@dataclass(frozen=True, slots=True)
class AgentPerformance:
    """One agent's (or program's) record."""

    agent: str
    runs: int
    successes: int
    retries: int
    median_seconds: float | None
    p90_seconds: float | None
    timed: int
    """Successful attempts behind the durations."""
    tokens: int | None
    cost_usd: float | None

    @property
    def success_rate(self) -> float | None:
        """Succeeded among finished tasks, None without any."""
        return self.successes / self.runs if self.runs else None


async def agent_performance(conn: aiosqlite.Connection,
                            attempts: list[AttemptSample] | None = None,
                            ) -> list[AgentPerformance]:
    """Per agent, busiest first: tasks, successes, retries, durations, tokens and cost
    (`attempts`: the recorded attempts, when the caller has read them already)."""
    outcomes = await history.task_outcomes(conn)
    if attempts is None:
        attempts = await history.attempt_samples(conn)
    runs: Counter[str] = Counter(t.kind for t in outcomes)
    good: Counter[str] = Counter(t.kind for t in outcomes if t.state == "succeeded")
    retries: Counter[str] = Counter()
    for task in outcomes:
        retries[task.kind] += max(0, task.attempts - 1)
    durations: dict[str, list[float]] = defaultdict(list)
    tokens: dict[str, int] = {}
    cost: dict[str, float] = {}
    for row in attempts:
        if row.outcome == "succeeded":
            durations[row.kind].append(row.seconds)
        if row.tokens is not None:
            tokens[row.kind] = tokens.get(row.kind, 0) + row.tokens
        if row.cost_usd is not None:
            cost[row.kind] = cost.get(row.kind, 0.0) + row.cost_usd
    return [AgentPerformance(kind, n, good[kind], retries[kind],
                             statistics.median(durations[kind]) if durations[kind] else None,
                             percentile(durations[kind], 0.9), len(durations[kind]),
                             tokens.get(kind), cost.get(kind))
            for kind, n in runs.most_common()]


@dataclass(frozen=True, slots=True)
class Metric:
    """One of the spec's success metrics: its value (None: not yet known) and target."""

    name: str
    target: str
    value: float | None
    met: bool | None
    basis: str
    """What the value was computed from, or why it is not known."""
    extra: dict[str, Any] = field(default_factory=dict)
    unit: str = "%"
    """How the value reads: `%`, a share shown as a percentage; `s`, seconds."""


async def success_metrics(conn: aiosqlite.Connection,
                          attempts: list[AttemptSample] | None = None) -> list[Metric]:
    """The spec's success metrics computed from the database, or marked not yet known
    (`attempts`: the recorded attempts, when the caller has read them already)."""
    sessions = await queries.list_sessions(conn, limit=SESSIONS_READ)
    finished = [s for s in sessions if s.state in ("COMPLETED", "FAILED")]
    completed = sum(s.state == "COMPLETED" for s in finished)
    rate = completed / len(finished) if finished else None
    metrics = [Metric("execution success rate", "> 95%", rate,
                      None if rate is None else rate > 0.95,
                      f"{completed} of {len(finished)} finished sessions completed"
                      if finished else "not yet known: no finished session")]
    metrics.append(_time_reduction(finished))
    metrics.append(_efficiency(await history.attempt_samples(conn) if attempts is None
                               else attempts, finished))
    hits, misses = await cache_store.counters(conn)
    lookups = hits + misses
    hit_rate = hits / lookups if lookups else None
    metrics.append(Metric("cache hit rate", ">= 40%", hit_rate,
                          None if hit_rate is None else hit_rate >= 0.4,
                          f"{hits} hits in {lookups} lookups" if lookups
                          else "not yet known: no cache lookup recorded"))
    generations = await history.generation_seconds(conn)
    took = statistics.median(generations) if generations else None
    metrics.append(Metric("agent generation time", "< 30 s", took,
                          None if took is None else took < 30,
                          f"median of {len(generations)} generated agent file(s)" if generations
                          else "not yet known: no agent generated yet", unit="s"))
    return metrics


def _time_reduction(finished: list[SessionRow]) -> Metric:
    """Median over plans (an intent's same tasks, by plan hash) with 4+ completed runs of
    1 - (later half's median duration / earlier half's)."""
    durations: dict[tuple[str, str], list[float]] = defaultdict(list)
    for session in sorted(finished, key=lambda s: s.created_at):
        if session.state == "COMPLETED" and session.finished_at is not None:
            durations[(session.intent, session.plan_key)].append(
                session.finished_at - session.created_at)
    reductions = []
    for values in durations.values():
        if len(values) >= 4:
            half = len(values) // 2
            earlier = statistics.median(values[:half])
            if earlier > 0:
                reductions.append(1 - statistics.median(values[half:]) / earlier)
    if not reductions:
        return Metric("time reduction after learning", ">= 30%", None, None,
                      "not yet known: no plan has 4 completed runs")
    value = statistics.median(reductions)
    return Metric("time reduction after learning", ">= 30%", value, value >= 0.3,
                  f"later vs earlier half of the runs of {len(reductions)} plan(s)")


def _efficiency(attempts: list[AttemptSample], finished: list[SessionRow]) -> Metric:
    """Median over finished sessions of W / (P * M): attempt seconds over the usable slots
    (the limit, capped by max_concurrent and the task count) times the session's duration."""
    work: dict[str, float] = defaultdict(float)
    tasks: dict[str, set[str]] = defaultdict(set)
    for row in attempts:
        work[row.session_id] += row.seconds
        tasks[row.session_id].add(row.task_id)
    values = []
    for session in finished:
        span = (session.finished_at or session.created_at) - session.created_at
        slots = min(session.parallel_limit, session.max_concurrent or session.parallel_limit,
                    len(tasks[session.id]))
        if span > 0 and slots > 0 and work[session.id] > 0:
            values.append(min(1.0, work[session.id] / (slots * span)))
    if not values:
        return Metric("parallel efficiency W/(P*M)", ">= 75%", None, None,
                      "not yet known: no finished session with recorded attempts")
    value = statistics.median(values)
    return Metric("parallel efficiency W/(P*M)", ">= 75%", value, value >= 0.75,
                  f"median of {len(values)} finished sessions")
