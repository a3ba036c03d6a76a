"""The one grammar of commands: `/parallel set-limit 6` in the app is `orchestrator parallel
set-limit 6` in a shell. Both parse with the parsers built here and run `execute`; each
command group lives in a module of this package and registers its parsers and handlers.
"""

from __future__ import annotations

import argparse
import shlex
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiosqlite

from orchestrator_tui.core.errors import OrchestratorError
from orchestrator_tui.store.database import connect, describe


class CommandError(OrchestratorError):
    """A command line that does not parse; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class CommandContext:
    """Where commands act: the database, the workspace and any extra agent folders."""

    db_path: Path
    workspace: Path
    agent_dirs: tuple[Path, ...] = ()


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What a command answers: text for people, data for `--json`."""

    text: str
    data: Any = field(default=None)
    ok: bool = True


Handler = Callable[[aiosqlite.Connection, argparse.Namespace, CommandContext],
                   Awaitable[CommandResult]]
HANDLERS: dict[tuple[str, str | None], Handler] = {}


Standalone = Callable[[argparse.Namespace, CommandContext], Awaitable[CommandResult]]
STANDALONE: dict[tuple[str, str | None], Standalone] = {}
"""Handlers that open the database themselves (`db check`, `db restore`, ...): they must
work on a file that cannot be opened normally."""


def standalone(group: str, action: str | None = None) -> Callable[[Standalone], Standalone]:
    """Register the handler of `group action`, called without a connection."""
    def register(handler: Standalone) -> Standalone:
        STANDALONE[(group, action)] = handler
        return handler
    return register


def command(group: str, action: str | None = None) -> Callable[[Handler], Handler]:
    """Register the handler of `group action`."""
    def register(handler: Handler) -> Handler:
        HANDLERS[(group, action)] = handler
        return handler
    return register


class _Parser(argparse.ArgumentParser):
    """An argparse parser that raises instead of exiting, for the app's command bar."""

    def error(self, message: str) -> Any:
        raise CommandError(f"{self.prog}: {message}")

    def exit(self, status: int = 0, message: str | None = None) -> Any:
        raise CommandError(message.strip() if message else self.format_usage().strip())


ParserAdder = Callable[[Any], None]
PARSERS: list[ParserAdder] = []


def parsers(adder: ParserAdder) -> ParserAdder:
    """Register a function adding a command group's parsers to a subparsers object."""
    PARSERS.append(adder)
    return adder


def add_command_parsers(subparsers: Any) -> None:
    """Add every registered command group to a parser."""
    for adder in PARSERS:
        adder(subparsers)


def slash_parser() -> argparse.ArgumentParser:
    """The parser of the app's command bar."""
    parser = _Parser(prog="", add_help=False)
    subparsers = parser.add_subparsers(dest="group", required=True, metavar="COMMAND",
                                       parser_class=_Parser)
    add_command_parsers(subparsers)
    return parser


def parse_slash(line: str) -> argparse.Namespace:
    """Parse a command bar line such as `/parallel set-limit 6`.

    Raises:
        CommandError: empty, unknown or malformed, with a one-line explanation.
    """
    text = line.strip().lstrip("/:").strip()
    if not text:
        raise CommandError("type a command, for example: parallel status")
    try:
        words = shlex.split(text)
    except ValueError as error:
        raise CommandError(f"cannot read the command: {error}") from error
    return slash_parser().parse_args(words)


def is_command(args: argparse.Namespace) -> bool:
    """Whether parsed CLI arguments name a command of this module."""
    key = (getattr(args, "group", None), getattr(args, "action", None))
    return key in HANDLERS or key in STANDALONE


async def execute(args: argparse.Namespace, context: CommandContext) -> CommandResult:
    """Run a parsed command against the database."""
    key = (args.group, getattr(args, "action", None))
    if key in STANDALONE:
        return await STANDALONE[key](args, context)
    handler = HANDLERS[key]
    conn = await connect(context.db_path)
    try:
        return await handler(conn, args, context)
    except sqlite3.Error as error:  # a damaged page, a lock held too long, a full disk
        raise describe(error, context.db_path) from error
    finally:
        await conn.close()


