"""`learn show-patterns INTENT`, `learn predict-time INTENT` and `learn agent-performance`:
what recorded history says, with the sample count behind every figure."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
from typing import Any

import aiosqlite

from orchestrator_tui.commands.grammar import (
    CommandContext,
    CommandError,
    CommandResult,
    command,
    parsers,
)
from orchestrator_tui.engine.agent_state import archived_agents
from orchestrator_tui.engine.learning import PlanForecast, predict_plan
from orchestrator_tui.engine.patterns import Patterns, agent_performance, patterns
from orchestrator_tui.engine.workflows import load_plan
from orchestrator_tui.views import seconds, stamp

NO_DATA = "no data yet"
BASIS_TEXT = {"task": "{runs} of this task", "kind": "no runs of this task, {runs} of its agent",
              "global": "no runs of its own or its agent's, from all kinds"}
"""What an estimate rests on, by `Estimate.basis`."""


@parsers
def add_learn_parsers(subparsers: Any) -> None:
    """Add `learn show-patterns|predict-time|agent-performance` to a parser."""
    learn = subparsers.add_parser("learn", help="what recorded history says: patterns, "
                                                "predicted times, agent performance")
    actions = learn.add_subparsers(dest="action", required=True, metavar="ACTION")
    shown = actions.add_parser("show-patterns", help="an intent's recent runs, what usually "
                               "follows it, recurring failures, the parallel limit used")
    shown.add_argument("intent", help="an intent of the workflow, e.g. analyze")
    predict = actions.add_parser("predict-time", help="the predicted duration of an intent's "
                                 "plan, its interval, success chance and bottleneck")
    predict.add_argument("intent", help="an intent of the workflow, e.g. build")
    predict.add_argument("--workflow", metavar="FILE", help="a workflow file (default: shipped)")
    predict.add_argument("--parallel", type=int, metavar="N",
                         help="the parallel limit to plan for (default: the stored setting)")
    actions.add_parser("agent-performance", help="per agent: runs, success rate, median and "
                       "p90 duration, retries, tokens and cost")


@command("learn", "show-patterns")
async def _show_patterns(conn: aiosqlite.Connection, args: argparse.Namespace,
                         context: CommandContext) -> CommandResult:
    found = await patterns(conn, args.intent.lower())
    return CommandResult(patterns_text(found), dataclasses.asdict(found))


def patterns_text(found: Patterns) -> str:
    """The patterns of one intent as lines of text."""
    if not found.sessions:
        return f"{found.intent}: {NO_DATA} (no recorded session of this intent)"
    lines = [f"{found.intent}: {found.sessions} recorded session(s)", "recent runs:"]
    lines += [f"  {run['session']}  {run['state']:<10} {seconds(run['seconds'])}  "
              f"{stamp(run['started'])[:19]}" for run in found.recent]
    if found.next_intents:
        name, n = found.next_intents[0]
        total = sum(count for _, count in found.next_intents)
        lines.append(f"after {found.intent} you usually run {name} ({n} of {total} times)")
    else:
        lines.append(f"what follows {found.intent}: {NO_DATA}")
    if found.failures:
        lines.append("recurring failures:")
        for agent, signatures in found.failures.items():
            lines += [f"  {agent}: {n}x {signature}" for signature, n in signatures]
    else:
        lines.append("recurring failures: none recorded")
    if found.parallel_limit:
        limit, n = found.parallel_limit
        lines.append(f"parallel limit you use: {limit} ({n} of {found.sessions} sessions)")
    return "\n".join(lines)


@command("learn", "predict-time")
async def _predict_time(conn: aiosqlite.Connection, args: argparse.Namespace,
                        context: CommandContext) -> CommandResult:
    if args.parallel is not None and args.parallel < 1:
        raise CommandError("learn predict-time: --parallel must be 1 or more")
    archived = await archived_agents(context.db_path)
    plan, _registry, _source = await asyncio.to_thread(
        load_plan, args.intent, args.workflow, context.workspace,
        list(context.agent_dirs), archived)
    result = await predict_plan(conn, plan, args.parallel)
    return CommandResult(forecast_text(result), result.to_dict())


def forecast_text(result: PlanForecast) -> str:
    """A plan's forecast as lines of text."""
    cover = f"{result.coverage:.0%}"
    lines = [f"{result.intent}: {len(result.tasks)} tasks at up to {result.parallel_limit} "
             f"at once; {result.samples} recorded durations"]
    if result.eta is None:
        lines.append(f"time: {NO_DATA}")
    else:
        lines.append(f"time: ~{seconds(result.eta)} ({seconds(result.eta_low)} to "
                     f"{seconds(result.eta_high)}, the schedule replayed with each task's "
                     f"{cover} interval)")
    if result.success_probability is None:
        lines.append(f"success: {NO_DATA}")
    else:
        lines.append(f"success: {result.success_probability:.0%} (recorded outcomes of "
                     f"{result.success_tasks} of {len(result.tasks)} tasks' agents)")
    if result.bottleneck:
        lines.append(f"bottleneck: {result.bottleneck} "
                     f"(~{seconds(result.bottleneck_seconds)} on the critical path)")
    for task in result.tasks:
        est = task.estimate
        if est is None:
            lines.append(f"  {task.task_id} ({task.kind}): {NO_DATA}")
            continue
        basis = BASIS_TEXT[est.basis].format(runs=f"{est.n} run{'' if est.n == 1 else 's'}")
        lines.append(f"  {task.task_id} ({task.kind}): ~{seconds(est.point)} "
                     f"({seconds(est.low)} to {seconds(est.high)}; {basis})")
    return "\n".join(lines)


@command("learn", "agent-performance")
async def _agent_performance(conn: aiosqlite.Connection, args: argparse.Namespace,
                             context: CommandContext) -> CommandResult:
    rows = await agent_performance(conn)
    data = [{**dataclasses.asdict(row), "success_rate": row.success_rate} for row in rows]
    if not rows:
        return CommandResult(f"agent performance: {NO_DATA} (no finished task recorded)", data)
    header = f"{'agent':<24} {'runs':>5} {'success':>8} {'median':>8} {'p90':>8} " \
             f"{'retries':>7} {'tokens':>9} {'cost':>8}"
    lines = [header]
    for row in rows:
        rate = f"{row.success_rate:.0%}" if row.success_rate is not None else "-"
        tokens = str(row.tokens) if row.tokens is not None else "-"
        cost = f"${row.cost_usd:.2f}" if row.cost_usd is not None else "-"
        lines.append(f"{row.agent[:24]:<24} {row.runs:>5} {rate:>8} "
                     f"{seconds(row.median_seconds):>8} {seconds(row.p90_seconds):>8} "
                     f"{row.retries:>7} {tokens:>9} {cost:>8}")
    return CommandResult("\n".join(lines), data)
