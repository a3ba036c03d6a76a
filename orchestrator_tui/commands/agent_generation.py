"""`agent generate builder|specialist` and `agent create`: new agent files from templates.

Files go to the workspace's `.claude/agents/`, where the registry finds them on its next load.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import aiosqlite

from orchestrator_tui.commands.grammar import CommandContext, CommandError, CommandResult, command
from orchestrator_tui.engine.generate import (
    Generated,
    create_agent,
    generate_builder,
    generate_specialist,
    workspace_agents,
)
from orchestrator_tui.store import learning as history

FORCE_HELP = "overwrite an agent file of the same name"


def add_generate_parsers(agent_actions: Any) -> None:
    """Add `generate` and `create` to the `agent` command's subparsers."""
    generate = agent_actions.add_parser("generate", help="write a new agent from a template")
    kinds = generate.add_subparsers(dest="kind", required=True, metavar="KIND")
    builder = kinds.add_parser("builder", help="an implementation agent for one language")
    builder.add_argument("language", help="python, typescript, go, rust, java, ruby, ... ")
    builder.add_argument("--framework", metavar="F", help="the framework it works with")
    builder.add_argument("--test-command", metavar="CMD", help="how it runs the tests")
    builder.add_argument("--formatter", metavar="F", help="how it formats the code")
    builder.add_argument("--force", action="store_true", help=FORCE_HELP)
    specialist = kinds.add_parser("specialist", help="an expert in one field")
    specialist.add_argument("specialty", help="e.g. performance, api, deploy")
    specialist.add_argument("--domain", required=True, metavar="D", help="its field of work")
    specialist.add_argument("--focus", required=True, metavar="F", help="what it looks at")
    specialist.add_argument("--tools", metavar="T", help='tools it may use, e.g. "Read,Grep"')
    specialist.add_argument("--force", action="store_true", help=FORCE_HELP)
    create = agent_actions.add_parser("create", help="write a new agent from a description")
    create.add_argument("description", help='what it does, e.g. "database migration '
                                             'specialist"')
    create.add_argument("--tools", metavar="T", help='tools it may use, e.g. "Read,Edit,Bash"')
    create.add_argument("--focus", metavar="F", help="what it concentrates on")
    create.add_argument("--force", action="store_true", help=FORCE_HELP)


@command("agent", "generate")
async def _generate(conn: aiosqlite.Connection, args: argparse.Namespace,
                    context: CommandContext) -> CommandResult:
    folder = workspace_agents(context.workspace)
    if args.kind == "builder":
        made = await asyncio.to_thread(
            generate_builder, folder, args.language, framework=args.framework,
            test_command=args.test_command, formatter=args.formatter, force=args.force)
    elif args.kind == "specialist":
        made = await asyncio.to_thread(
            generate_specialist, folder, args.specialty, domain=args.domain, focus=args.focus,
            tools=args.tools, force=args.force)
    else:
        raise CommandError(f"agent generate: unknown kind {args.kind!r}; "
                           "choose builder or specialist")
    await history.record_generation(conn, made.name, args.kind, made.seconds, time.time())
    return _result(made, args.kind)


@command("agent", "create")
async def _create(conn: aiosqlite.Connection, args: argparse.Namespace,
                  context: CommandContext) -> CommandResult:
    made = await asyncio.to_thread(create_agent, workspace_agents(context.workspace),
                                   args.description, tools=args.tools, focus=args.focus,
                                   force=args.force)
    await history.record_generation(conn, made.name, "agent", made.seconds, time.time())
    return _result(made, "agent")


def _result(made: Generated, kind: str) -> CommandResult:
    milliseconds = made.seconds * 1000
    text = (f"wrote {made.path}\n{kind} {made.name!r} generated in {milliseconds:.1f} ms; "
            "the registry loads it from there from now on")
    return CommandResult(text, {"name": made.name, "path": str(made.path), "kind": kind,
                                "seconds": made.seconds})
