"""`context get|set|history|list`: the session's shared key -> JSON store, versioned.

`context set KEY VALUE --expect-version N` writes only if the key is at version N (0: only
if it does not exist yet), so agents can update shared values without losing each other's.
"""

from __future__ import annotations

import argparse
from typing import Any

import aiosqlite

from orchestrator_tui.commands.comm import agent_name, payload_of, session_of
from orchestrator_tui.commands.grammar import CommandContext, CommandResult, command, parsers
from orchestrator_tui.engine.bus import Bus
from orchestrator_tui.store import queries


@parsers
def add_context_parsers(subparsers: Any) -> None:
    """Add `context get|set|history|list` to a parser."""
    context = subparsers.add_parser("context", help="the session's shared context store")
    actions = context.add_subparsers(dest="action", required=True, metavar="ACTION")
    get = actions.add_parser("get", help="a key's value and version")
    get.add_argument("key")
    put = actions.add_parser("set", help="write a key (JSON value), optionally compare-and-set")
    put.add_argument("key")
    put.add_argument("value", help="JSON text (at most 256 KiB); - reads standard input")
    put.add_argument("--expect-version", type=int, metavar="N",
                     help="write only if the key is at version N (0: only if new)")
    put.add_argument("--agent", metavar="NAME", help="the writer (default: "
                                                     "$ORCHESTRATOR_AGENT, else user)")
    history = actions.add_parser("history", help="every version of a key: who, what, when")
    history.add_argument("key")
    actions.add_parser("list", help="every key of the session")
    for sub in (get, put, history, actions.choices["list"]):
        sub.add_argument("--session", metavar="ID", help="session id or prefix (default: "
                                                         "$ORCHESTRATOR_SESSION, else latest)")


async def _session(conn: aiosqlite.Connection, args: argparse.Namespace) -> str:
    """The session meant: `--session` or `$ORCHESTRATOR_SESSION` as given, else the latest."""
    chosen = session_of(args)
    if chosen:
        return chosen
    return (await queries.find_session(conn, None)).id


@command("context", "get")
async def _get(conn: aiosqlite.Connection, args: argparse.Namespace,
               context: CommandContext) -> CommandResult:
    session = await _session(conn, args)
    async with await Bus.open(context.db_path, migrate=False) as bus:
        value = await bus.context_get(session, args.key)
    if value is None:
        return CommandResult(f"context key {args.key!r} of session {session} is not set",
                             {"key": args.key, "session": session, "value": None,
                              "version": 0}, ok=False)
    return CommandResult(f"{value.value}\n(version {value.version}, by {value.written_by})",
                         value.to_dict() | {"session": session})


@command("context", "set")
async def _set(conn: aiosqlite.Connection, args: argparse.Namespace,
               context: CommandContext) -> CommandResult:
    session = await _session(conn, args)
    value = payload_of(args.value, "context set")
    async with await Bus.open(context.db_path, migrate=False) as bus:
        stored = await bus.context_set(session, args.key, value, agent_name(args, required=False),
                                       args.expect_version)
    return CommandResult(f"{args.key} = {stored.value} (version {stored.version})",
                         stored.to_dict() | {"session": session})


@command("context", "history")
async def _history(conn: aiosqlite.Connection, args: argparse.Namespace,
                   context: CommandContext) -> CommandResult:
    session = await _session(conn, args)
    async with await Bus.open(context.db_path, migrate=False) as bus:
        versions = await bus.context_history(session, args.key)
    lines = [f"v{v.version} by {v.written_by}: {v.value}" for v in versions]
    return CommandResult("\n".join(lines) or f"context key {args.key!r} was never set",
                         [v.to_dict() for v in versions])


@command("context", "list")
async def _list(conn: aiosqlite.Connection, args: argparse.Namespace,
                context: CommandContext) -> CommandResult:
    session = await _session(conn, args)
    async with await Bus.open(context.db_path, migrate=False) as bus:
        values = await bus.context_keys(session)
    lines = [f"{v.key} (v{v.version}, {v.written_by}): {v.value}" for v in values]
    return CommandResult("\n".join(lines) or f"session {session} has no context yet",
                         [v.to_dict() for v in values])
