"""`orchestrator run`: plan an intent, run it with live progress, print a summary."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from orchestrator_tui.core.errors import OrchestratorError
from orchestrator_tui.core.states import SessionState
from orchestrator_tui.engine import cache as solution_cache
from orchestrator_tui.engine.agent_state import archived_agents
from orchestrator_tui.engine.bus import Bus
from orchestrator_tui.engine.events import Control, Snapshot
from orchestrator_tui.engine.execution import Execution
from orchestrator_tui.engine.isolation import Branch
from orchestrator_tui.engine.registry import load_registry
from orchestrator_tui.engine.runners.ray_runner import RayRunner, executor_runner
from orchestrator_tui.engine.session import Engine, SessionRequest
from orchestrator_tui.engine.settings import load_settings
from orchestrator_tui.engine.workflows import load_plan
from orchestrator_tui.store import queries
from orchestrator_tui.views import STATE_MARKS, remaining_line, seconds

EXIT_CODES = {SessionState.COMPLETED: 0, SessionState.FAILED: 1, SessionState.ABORTED: 3}
FINISHED = ("succeeded", "failed", "skipped", "cancelled")


async def run_intent(args: argparse.Namespace, workspace: Path, db_path: Path) -> int:
    """Run `args.intent` to its end; the exit code is 0 only if the session COMPLETED."""
    if args.parallel is not None and args.parallel < 1:
        raise OrchestratorError("--parallel must be 1 or more")
    ray = await executor_of(args, db_path)
    archived = await archived_agents(db_path)
    plan, registry, source = load_plan(args.intent, args.workflow, workspace,
                                       args.agents_dir or [], archived)
    key = await solution_cache.problem_key(plan, workspace)
    if solution_cache.wanted(getattr(args, "no_cache", False)) \
            and await _cached(db_path, key, args.json):
        return 0
    async with await Engine.open(db_path) as engine:
        execution = await engine.start(SessionRequest(
            plan=plan, workspace=workspace, workflow=source, parallel_limit=args.parallel,
            registry=registry, mode=getattr(args, "mode", "list"), ray=ray))
        code = await _drive(engine, execution, args, db_path)
    if code == 0:
        try:
            await solution_cache.remember(db_path, key, execution.session_id)
        except OrchestratorError as error:  # the run stands; only its cache entry is missing
            print(f"orchestrator: the solution was not cached: {error}", file=sys.stderr)
    return code


async def _cached(db_path: Path, key: solution_cache.ProblemKey, as_json: bool) -> bool:
    """Print the cached solution of `key` when there is one; say whether there was."""
    entry = await solution_cache.lookup(db_path, key)  # None too when the file is unusable
    if entry is None:
        return False
    with contextlib.suppress(OrchestratorError):  # telling subscribers is not essential
        async with await Bus.open(db_path) as bus:
            await bus.publish("engine", "cache_hit", {"intent": entry.intent,
                                                      "session": entry.session_id})
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(entry.created_at))
    if as_json:
        print(json.dumps({"cached": True, "session": entry.session_id, "intent": entry.intent,
                          "stored_at": entry.created_at, "summary": entry.summary}, indent=2))
    else:
        print(f"Using cached solution from session {entry.session_id} ({when}); "
              f"run again with --no-cache to run anyway.\n{entry.summary}")
    return True


async def executor_of(args: argparse.Namespace, db_path: Path) -> RayRunner | None:
    """The Ray runner when `--executor ray` (or the `executor` setting) asks for one; Ray
    connects at the first task.

    Raises:
        OrchestratorError: Ray is not installed, or `--address` without the ray executor.
    """
    return executor_runner(await load_settings(db_path), getattr(args, "executor", None),
                           getattr(args, "address", None))


async def resume_session(args: argparse.Namespace, workspace: Path, db_path: Path) -> int:
    """`orchestrator resume`: tell a live engine to continue its paused session, or, when no
    engine runs the session any more, recover it and run it to its end here (exit codes as
    `orchestrator run`)."""
    from orchestrator_tui.engine import control, recovery
    from orchestrator_tui.store.database import connect

    conn = await connect(db_path, create=False)
    try:
        session = await queries.find_session(conn, args.session,
                                             active_only=args.session is None)
        if await control.session_engine_alive(conn, session):
            answer = await control.send(conn, session, "resume")
            outcome = answer.outcome or ""
            print(json.dumps({"session": session.id, "action": "resume", "outcome": outcome})
                  if args.json else f"session {session.id}: {outcome}")
            return 1 if outcome.startswith(("refused", "not ")) else 0
        session = await recovery.find_orphan(conn, session.id)
    finally:
        await conn.close()
    archived = await archived_agents(db_path)
    registry = load_registry(Path(session.workspace), args.agents_dir or [], archived)
    async with await Engine.open(db_path) as engine:
        execution, settled = await engine.recover(session, registry)
        if not args.json:
            Console(stderr=True).print(settled.summary())
        return await _drive(engine, execution, args, db_path)


async def _drive(engine: Engine, execution: Execution, args: argparse.Namespace,
                 db_path: Path) -> int:
    """Run a started or recovered session with live progress, then print its summary."""
    plan = execution.plan
    err = Console(stderr=True)
    if not args.json:
        width = min(execution.parallel_limit, plan.intent.max_concurrent or len(plan) or 1)
        err.print(f"[bold]{execution.session_id}[/]: {plan.intent.name} — {len(plan)} tasks,"
                  f" up to {width} at once; database {db_path}")
    final = await _run_watched(engine, execution, live=err.is_terminal and not args.json,
                               console=err)
    tasks = await queries.session_tasks(engine.reader, execution.session_id)
    session = await queries.find_session(engine.reader, execution.session_id)
    branches = await isolated_branches(execution)
    rank = {task_id: i for i, task_id in enumerate(plan.order)}
    rows = [_task_row(t) for t in sorted(tasks, key=lambda t: rank.get(t.id, 0))]
    duration = (session.finished_at or time.time()) - session.created_at
    if args.json:
        summary = {"session": session.id, "intent": session.intent, "state": final,
                   "seconds": round(duration, 3), "tasks": rows, "log": list(execution.log),
                   "branches": [dataclasses.asdict(branch) for branch in branches]}
        print(json.dumps(summary, indent=2, default=str))
    else:
        _print_summary(Console(), session.id, final, duration, rows, list(execution.log))
        _print_branches(Console(), branches)
        if getattr(args, "show_output", False):
            await _print_outputs(db_path, session.id)
    return EXIT_CODES.get(final, 1)


async def _run_watched(engine: Engine, execution: Execution, *, live: bool,
                       console: Console) -> SessionState:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, execution.request,
                                    Control("abort", reason=f"{signal.Signals(signum).name} "
                                                            "received"))
    run = loop.create_task(engine.run(execution))
    try:
        if not live:
            return await run
        with Live(_render(execution.snapshot()), console=console, refresh_per_second=4,
                  transient=True) as display:
            while not run.done():
                await asyncio.wait({run}, timeout=0.25)
                display.update(_render(execution.snapshot()))
        return run.result()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signum)


def _render(snap: Snapshot) -> Group:
    done = sum(snap.counts.get(state, 0) for state in FINISHED)
    header = Text.assemble((f"{snap.state}", "bold"), f"  {done}/{snap.total} done  ",
                           f"running {len(snap.running)}/{snap.parallel_limit}  ",
                           f"{seconds(snap.taken_at - snap.started_at)}  ",
                           remaining_line(snap.remaining))
    bar = ProgressBar(total=max(snap.total, 1), completed=done, width=40)
    lines: list[Any] = [header, bar]
    for view in snap.running[:12]:
        lines.append(Text(f"  {STATE_MARKS.get(view.state, '?')} {view.task_id} [{view.state}] "
                          f"{seconds(snap.taken_at - view.started_at)}"))
    if len(snap.running) > 12:
        lines.append(Text(f"  … and {len(snap.running) - 12} more"))
    return Group(*lines)


def _task_row(task: queries.TaskRow) -> dict[str, Any]:
    took = task.finished_at - task.started_at if task.finished_at and task.started_at else None
    return {"task": task.id, "agent": task.agent or task.kind, "state": task.state,
            "attempts": task.attempts, "seconds": round(took, 3) if took is not None else None,
            "exit_code": task.exit_code, "result": task.result or "", "error": task.error or ""}


def _print_summary(console: Console, session_id: str, final: str, duration: float,
                   rows: list[dict[str, Any]], log: list[str]) -> None:
    table = Table(title=f"{session_id}: {final} in {seconds(duration)}", title_justify="left")
    for column in ("task", "state", "time", "result"):
        table.add_column(column, overflow="fold")
    for row in rows[:200]:
        mark = STATE_MARKS.get(row["state"], "?")
        table.add_row(row["task"], f"{mark} {row['state']}", seconds(row["seconds"]),
                      row["error"] or row["result"])
    console.print(table)
    if len(rows) > 200:
        console.print(f"… and {len(rows) - 200} more tasks (`orchestrator parallel status`)")
    for line in log:
        if "nothing can run" in line or line.startswith("recovery:"):
            console.print(line)


async def isolated_branches(execution: Execution) -> list[Branch]:
    """The branches the session's isolated agents left (none without isolation)."""
    worktrees = execution.jobs.worktrees
    return [] if worktrees is None else await asyncio.to_thread(worktrees.branches)


def _print_branches(console: Console, branches: list[Branch]) -> None:
    if not branches:
        return
    console.print("Branches left by isolated agents; nothing was merged. Review each with "
                  "`git diff HEAD...BRANCH`, merge with `git merge BRANCH`:")
    for branch in branches:
        files = ", ".join(branch.files[:5]) + (" …" if len(branch.files) > 5 else "")
        console.print(f"  {branch.name}: {branch.commits} commit(s); {files or 'no changes'}")


async def _print_outputs(db_path: Path, session_id: str) -> None:
    from orchestrator_tui.store.database import connect

    conn = await connect(db_path, create=False)
    try:
        async with conn.execute(
            "SELECT task_id, attempt, stdout, stderr FROM attempts WHERE session_id = ? "
            "ORDER BY started_at", (session_id,)) as cursor:
            for task_id, attempt, stdout, stderr in await cursor.fetchall():
                sys.stdout.write(f"\n── {task_id} (attempt {attempt}) ──\n{stdout or ''}")
                if stderr:
                    sys.stdout.write(f"[stderr]\n{stderr}")
    finally:
        await conn.close()
