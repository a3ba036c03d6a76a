"""`settings show` and `settings set KEY VALUE`: the user's stored settings."""

from __future__ import annotations

import argparse
from typing import Any

import aiosqlite

from orchestrator_tui.commands.grammar import CommandContext, CommandResult, command, parsers
from orchestrator_tui.engine.settings import KNOWN, save_setting
from orchestrator_tui.store import queries


@parsers
def add_settings_parsers(subparsers: Any) -> None:
    """Add `settings show` and `settings set` to a parser."""
    settings = subparsers.add_parser("settings", help="show or change the stored settings")
    actions = settings.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("show", help="every setting, its value and what it means")
    change = actions.add_parser("set", help="change one setting for every later session")
    change.add_argument("key", choices=sorted(KNOWN), metavar="KEY",
                        help=", ".join(sorted(KNOWN)))
    change.add_argument("value", help="the new value (see `settings show`)")


@command("settings", "show")
async def _show(conn: aiosqlite.Connection, args: argparse.Namespace,
                context: CommandContext) -> CommandResult:
    stored = await queries.settings(conn)
    data = {key: {"value": stored.get(key), "meaning": meaning}
            for key, meaning in KNOWN.items()}
    width = max(map(len, KNOWN))
    lines = [f"{key:<{width}}  {stored.get(key, '(default)'):<12}  {meaning}"
             for key, meaning in KNOWN.items()]
    return CommandResult("\n".join(lines), data)


@command("settings", "set")
async def _set(conn: aiosqlite.Connection, args: argparse.Namespace,
               context: CommandContext) -> CommandResult:
    await save_setting(context.db_path, args.key, args.value)
    value = (await queries.settings(conn)).get(args.key)
    return CommandResult(f"{args.key} = {value} (for sessions started from now on)",
                         {"key": args.key, "value": value})
