"""Read queries for learning (attempts and outcomes of finished tasks), and the intents users
confirmed for phrases they typed."""

from __future__ import annotations

from dataclasses import dataclass

import aiosqlite

FINISHED_TASK_STATES = ("succeeded", "failed", "skipped", "cancelled")


@dataclass(frozen=True, slots=True)
class AttemptSample:
    """One ended attempt of a finished task: who ran it, how long, how it ended."""

    kind: str
    """The task's agent, else its kind (program or callable)."""
    seconds: float
    outcome: str | None
    started_at: float
    session_id: str
    task_id: str
    tokens: int | None
    cost_usd: float | None
    intent: str
    kind_count: int
    """How many tasks of its kind (as planned) its session had."""
    input_bytes: int | None
    """The size of what it was given, where known (an agent's prompt)."""


@dataclass(frozen=True, slots=True)
class TaskOutcome:
    """A task that ended succeeded or failed, with its attempts and error."""

    kind: str
    state: str
    attempts: int
    error: str | None
    session_id: str
    finished_at: float | None


async def attempt_samples(conn: aiosqlite.Connection, before: float | None = None,
                          newest: int | None = None) -> list[AttemptSample]:
    """Every ended attempt of a finished task (that ended by `before`), oldest end first; with
    `newest`, only that many of the latest started (read newest first, in the table's own
    order, so the read stays as short however long the history grows)."""
    marks = ", ".join("?" * len(FINISHED_TASK_STATES))
    until = "" if before is None else " AND a.finished_at <= ?"
    latest = "" if newest is None else " ORDER BY a.id DESC LIMIT ?"
    async with conn.execute(
        "SELECT coalesce(t.agent, t.kind), a.finished_at - a.started_at, a.outcome, "
        "a.started_at, a.session_id, a.task_id, "
        "CASE WHEN a.tokens_in IS NULL AND a.tokens_out IS NULL THEN NULL "
        "ELSE coalesce(a.tokens_in, 0) + coalesce(a.tokens_out, 0) END, a.cost_usd, s.intent, "
        "t.kind, a.input_bytes, a.finished_at, a.id "
        "FROM attempts a JOIN tasks t ON t.session_id = a.session_id AND t.id = a.task_id "
        "JOIN sessions s ON s.id = a.session_id "
        f"WHERE a.finished_at IS NOT NULL AND t.state IN ({marks}){until}{latest}",
        (*FINISHED_TASK_STATES, *(() if before is None else (before,)),
         *(() if newest is None else (newest,)))) as cursor:
        rows = sorted(await cursor.fetchall(), key=lambda row: (row[11], row[12]))
    counts = await _kind_counts(conn, None if newest is None else {row[4] for row in rows})
    return [AttemptSample(str(kind), max(0.0, float(took)), outcome, float(start), str(sid),
                          str(tid), tokens, cost, str(intent), counts[(sid, planned)], given)
            for kind, took, outcome, start, sid, tid, tokens, cost, intent, planned, given, *_
            in rows]


async def _kind_counts(conn: aiosqlite.Connection,
                       sessions: set[str] | None) -> dict[tuple[str, str], int]:
    """How many tasks of each kind each of `sessions` planned (None: every session, in one
    scan). Counted apart and matched by the caller: joined in SQL, the counts made the query
    of attempts 5 times slower."""
    query = "SELECT session_id, kind, count(*) FROM tasks{} GROUP BY session_id, kind"
    if sessions is None:
        async with conn.execute(query.format("")) as cursor:
            return {(sid, kind): n for sid, kind, n in await cursor.fetchall()}
    counts: dict[tuple[str, str], int] = {}
    ordered = sorted(sessions)
    for start in range(0, len(ordered), 500):  # within any SQLite's limit of parameters
        chunk = ordered[start:start + 500]
        marks = ", ".join("?" * len(chunk))
        async with conn.execute(query.format(f" WHERE session_id IN ({marks})"),
                                chunk) as cursor:
            counts.update({(sid, kind): n for sid, kind, n in await cursor.fetchall()})
    return counts


async def task_outcomes(conn: aiosqlite.Connection) -> list[TaskOutcome]:
    """Every task that ended succeeded or failed, oldest end first."""
    async with conn.execute(
        "SELECT coalesce(agent, kind), state, attempts, error, session_id, finished_at "
        "FROM tasks WHERE state IN ('succeeded', 'failed') "
        "ORDER BY finished_at, session_id, id") as cursor:
        rows = await cursor.fetchall()
    return [TaskOutcome(str(kind), str(state), int(attempts), error, str(sid), finished)
            for kind, state, attempts, error, sid, finished in rows]


async def success_tally(conn: aiosqlite.Connection,
                        before: float | None = None) -> dict[str, tuple[int, int]]:
    """Per kind (agent, else program): (tasks succeeded, tasks that ended succeeded or
    failed), of those that ended by `before`; counted by SQLite, not row by row here."""
    until = "" if before is None else " AND finished_at IS NOT NULL AND finished_at <= ?"
    async with conn.execute(
        "SELECT coalesce(agent, kind), sum(state = 'succeeded'), count(*) FROM tasks "
        f"WHERE state IN ('succeeded', 'failed'){until} GROUP BY 1",
        () if before is None else (before,)) as cursor:
        return {str(kind): (int(good), int(runs)) for kind, good, runs
                in await cursor.fetchall()}


async def record_intent_choice(conn: aiosqlite.Connection, phrase: str, intent: str,
                               at: float) -> None:
    """Store that the user started `intent` after typing `phrase`."""
    await conn.execute("BEGIN IMMEDIATE")
    try:
        await conn.execute("INSERT INTO intent_choices (phrase, intent, chosen_at) "
                           "VALUES (?, ?, ?)", (phrase, intent, at))
    except BaseException:
        await conn.execute("ROLLBACK")
        raise
    await conn.execute("COMMIT")


async def record_generation(conn: aiosqlite.Connection, name: str, kind: str,
                            seconds: float, at: float) -> None:
    """Store that an agent file `name` of `kind` was generated in `seconds`."""
    await conn.execute("BEGIN IMMEDIATE")
    try:
        await conn.execute("INSERT INTO agent_generations (name, kind, seconds, created_at) "
                           "VALUES (?, ?, ?, ?)", (name, kind, seconds, at))
    except BaseException:
        await conn.execute("ROLLBACK")
        raise
    await conn.execute("COMMIT")


async def generation_seconds(conn: aiosqlite.Connection) -> list[float]:
    """How long each recorded agent generation took, oldest first."""
    async with conn.execute("SELECT seconds FROM agent_generations ORDER BY id") as cursor:
        return [float(seconds) for seconds, in await cursor.fetchall()]


async def intent_choices(conn: aiosqlite.Connection,
                         limit: int = 5000) -> list[tuple[str, str]]:
    """The newest confirmed (phrase, intent) pairs, oldest first."""
    async with conn.execute(
        "SELECT phrase, intent FROM (SELECT id, phrase, intent FROM intent_choices "
        "ORDER BY id DESC LIMIT ?) ORDER BY id", (limit,)) as cursor:
        return [(str(phrase), str(intent)) for phrase, intent in await cursor.fetchall()]
