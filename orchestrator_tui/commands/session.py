"""Session commands: `state`, `parallel`, `pause`, `resume` and `abort`."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import aiosqlite

from orchestrator_tui.commands.grammar import (
    CommandContext,
    CommandError,
    CommandResult,
    command,
    parsers,
)
from orchestrator_tui.core.errors import OrchestratorError
from orchestrator_tui.core.plan import Plan
from orchestrator_tui.core.states import ACTIVE_SESSION_STATES
from orchestrator_tui.engine import control
from orchestrator_tui.engine.dispatch import STOLEN
from orchestrator_tui.engine.remaining import session_remaining
from orchestrator_tui.engine.settings import save_setting
from orchestrator_tui.store import queries
from orchestrator_tui.views import graph_text, history_rows, remaining_text, session_summary


@parsers
def add_session_parsers(subparsers: Any) -> None:
    """Add `state`, `parallel`, `pause`, `resume` and `abort` to a parser."""
    state = subparsers.add_parser("state", help="the session's state and its history")
    state_sub = state.add_subparsers(dest="action", required=True, metavar="ACTION")
    current = state_sub.add_parser("current", help="the state of a session (default: latest)")
    current.add_argument("session", nargs="?", help="session id or prefix")
    hist = state_sub.add_parser("history", help="every recorded state change with its reason")
    hist.add_argument("session", nargs="?", help="session id or prefix")
    hist.add_argument("--tasks", action="store_true", help="include task transitions")
    hist.add_argument("--limit", type=int, default=None, help="only the last N changes")

    parallel = subparsers.add_parser("parallel", help="parallel execution: status, limit, graph")
    par_sub = parallel.add_subparsers(dest="action", required=True, metavar="ACTION")
    status = par_sub.add_parser("status", help="running and waiting tasks, and the limit")
    status.add_argument("session", nargs="?", help="session id or prefix")
    limit = par_sub.add_parser("set-limit", help="the most agents running at once")
    limit.add_argument("limit", type=int, help="a whole number, 1 or more")
    graph = par_sub.add_parser("show-graph", help="the plan's DAG by levels")
    graph.add_argument("session", nargs="?", help="session id or prefix")

    task = subparsers.add_parser("task", help="decide on an interrupted task: retry or skip")
    task_sub = task.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, text in (("retry", "run an interrupted task again"),
                       ("skip", "skip an interrupted task (and the tasks that need it)")):
        decide = task_sub.add_parser(name, help=text)
        decide.add_argument("task", help="the task's id")
        decide.add_argument("session", nargs="?", help="session id or prefix (default: latest "
                                                       "active)")

    for name, text in (("pause", "pause a running session (stops its agent processes)"),
                       ("resume", "continue a paused session"),
                       ("abort", "stop a session and every agent process it started")):
        sub = subparsers.add_parser(name, help=text)
        sub.add_argument("session", nargs="?", help="session id or prefix (default: latest "
                                                    "active)")


@command("state", "current")
async def _state_current(conn: aiosqlite.Connection, args: argparse.Namespace,
                         context: CommandContext) -> CommandResult:
    session = await queries.find_session(conn, args.session)
    counts = await queries.task_counts(conn, session.id)
    alive = await control.session_engine_alive(conn, session)
    data = session_summary(session, counts, alive)
    remaining = await session_remaining(conn, session, time.time())
    data["remaining"] = remaining.to_dict() if remaining is not None else None
    lines = [f"{key}: {value}" for key, value in data.items()
             if key not in ("tasks", "remaining")]
    lines.append("tasks: " + ", ".join(f"{n} {state}" for state, n in sorted(counts.items())))
    lines.append("remaining: " + (remaining_text(remaining)
                                  if session.state in ACTIVE_SESSION_STATES
                                  else "none, the session has ended"))
    return CommandResult("\n".join(lines), data)


@command("state", "history")
async def _state_history(conn: aiosqlite.Connection, args: argparse.Namespace,
                         context: CommandContext) -> CommandResult:
    session = await queries.find_session(conn, args.session)
    rows = await queries.history(conn, session.id, tasks=args.tasks, limit=args.limit)
    data = history_rows(rows)
    lines = [f"{r['at']}  {r['what']:<24} {r['from'] or '-':>10} -> {r['to']:<10} {r['reason']}"
             for r in data]
    return CommandResult("\n".join([f"history of {session.id} ({session.intent})", *lines]),
                         {"session": session.id, "transitions": data})


@command("parallel", "status")
async def _parallel_status(conn: aiosqlite.Connection, args: argparse.Namespace,
                           context: CommandContext) -> CommandResult:
    session = await queries.find_session(conn, args.session)
    tasks = await queries.session_tasks(conn, session.id)
    now = time.time()
    running = [{"task": t.id, "kind": t.kind, "state": t.state, "attempt": t.attempts,
                "seconds": round(now - t.started_at, 1) if t.started_at else None}
               for t in tasks if t.state in ("running", "paused")]
    counts = await queries.task_counts(conn, session.id)
    data = {"session": session.id, "state": session.state, "parallel_limit":
            session.parallel_limit, "max_concurrent": session.max_concurrent,
            "running": running, "ready": counts.get("ready", 0), "counts": counts}
    lines = [f"session {session.id} {session.state}: limit {session.parallel_limit}"
             + (f", intent max {session.max_concurrent}" if session.max_concurrent else ""),
             f"running {len(running)}, ready {data['ready']}, "
             + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))]
    lines += [f"  {r['state']:<8} {r['task']} (attempt {r['attempt']}, {r['seconds']} s)"
              for r in running]
    agents = await _agent_figures(conn, session, tasks, now)
    data["agents"] = agents
    if agents:
        lines.append("agents (queue = its ready tasks; busy = tasks running on average):")
        lines += [f"  {name:<24} running {a['running']}, queue {a['queue']}, steals "
                  f"{a['steals']}, busy {a['busy']}" for name, a in agents.items()]
    return CommandResult("\n".join(lines), data)


async def _agent_figures(conn: aiosqlite.Connection, session: queries.SessionRow,
                         tasks: list[queries.TaskRow], now: float) -> dict[str, dict[str, Any]]:
    """Per agent, from the database: tasks running and queued (ready), steals (the
    `running` transitions that say a task was stolen) and utilisation (agent-seconds
    running over the session's time)."""
    agent_of = {t.id: t.agent for t in tasks if t.agent}
    figures = {name: {"running": 0, "queue": 0, "steals": 0, "busy": 0.0}
               for name in sorted(set(agent_of.values()))}
    for t in tasks:
        if t.agent:
            key = "running" if t.state in ("running", "paused") else \
                "queue" if t.state == "ready" else None
            if key:
                figures[t.agent][key] += 1
    busy: dict[str, float] = {}
    since: dict[str, float] = {}
    for row in await queries.history(conn, session.id):
        tid = row.task_id
        if tid is None or tid not in agent_of:
            continue
        if tid in since:
            busy[tid] = busy.get(tid, 0.0) + row.at - since.pop(tid)
        if row.to_state == "running":
            since[tid] = row.at
            thief = row.reason.partition(" started by ")[2].partition(f", {STOLEN} ")[0]
            if f", {STOLEN} " in row.reason and thief in figures:
                figures[thief]["steals"] += 1
    end = session.finished_at or now
    for tid, start in since.items():
        busy[tid] = busy.get(tid, 0.0) + max(0.0, end - start)
    elapsed = max(end - session.created_at, 1e-9)
    for tid, seconds in busy.items():
        figures[agent_of[tid]]["busy"] += seconds / elapsed
    for figure in figures.values():
        figure["busy"] = round(figure["busy"], 2)
    return figures


@command("parallel", "set-limit")
async def _parallel_set_limit(conn: aiosqlite.Connection, args: argparse.Namespace,
                              context: CommandContext) -> CommandResult:
    if args.limit < 1:
        raise CommandError("parallel set-limit: the limit must be 1 or more")
    await save_setting(context.db_path, "parallel_limit", str(args.limit))
    text = f"parallel limit set to {args.limit} for new sessions"
    try:
        session = await queries.find_session(conn, None, active_only=True)
    except OrchestratorError:
        return CommandResult(text, {"parallel_limit": args.limit, "session": None})
    if await control.session_engine_alive(conn, session):
        answer = await control.send(conn, session, "set-limit", str(args.limit))
        text += f"; session {session.id}: {answer.outcome}"
    return CommandResult(text, {"parallel_limit": args.limit, "session": session.id})


@command("parallel", "show-graph")
async def _parallel_show_graph(conn: aiosqlite.Connection, args: argparse.Namespace,
                               context: CommandContext) -> CommandResult:
    session = await queries.find_session(conn, args.session)
    plan = Plan.from_dict(json.loads(session.plan))
    states = {t.id: t.state for t in await queries.session_tasks(conn, session.id)}
    text, data = graph_text(plan, states)
    return CommandResult(f"plan of {session.id} ({session.intent})\n{text}", data)


async def _control(conn: aiosqlite.Connection, args: argparse.Namespace) -> CommandResult:
    action = args.group
    session = await queries.find_session(conn, args.session, active_only=args.session is None)
    if action == "abort" and session.state in ACTIVE_SESSION_STATES \
            and not await control.session_engine_alive(conn, session):
        outcome = await control.abort_orphaned(conn, session)
    else:
        outcome = (await control.send(conn, session, action)).outcome or ""
    ok = not outcome.startswith(("refused", "not "))
    return CommandResult(f"session {session.id}: {outcome}",
                         {"session": session.id, "action": action, "outcome": outcome}, ok)


for _action in ("pause", "resume", "abort"):
    command(_action)(lambda conn, args, context: _control(conn, args))


async def _decide(conn: aiosqlite.Connection, args: argparse.Namespace,
                  context: CommandContext) -> CommandResult:
    session = await queries.find_session(conn, args.session, active_only=args.session is None)
    states = {t.id: t.state for t in await queries.session_tasks(conn, session.id)}
    if args.task not in states:
        raise CommandError(f"session {session.id} has no task {args.task!r}")
    alive = await control.session_engine_alive(conn, session)
    # With its engine gone, a task still marked running was interrupted by the crash.
    if states[args.task] != "interrupted" and (alive or states[args.task] not in (
            "running", "paused")):
        raise CommandError(f"task {args.task} of session {session.id} is {states[args.task]}; "
                           "only interrupted tasks wait for a decision")
    if alive:
        outcome = (await control.send(conn, session, args.action, args.task)).outcome or ""
    else:
        await control.queue(conn, session, args.action, args.task)
        outcome = (f"{args.task}: {args.action} recorded; `orchestrator resume {session.id}` "
                   "carries the session on")
    return CommandResult(f"session {session.id}: {outcome}",
                         {"session": session.id, "task": args.task, "action": args.action,
                          "outcome": outcome}, not outcome.startswith("refused"))


for _decision in control.DECISIONS:
    command("task", _decision)(_decide)
