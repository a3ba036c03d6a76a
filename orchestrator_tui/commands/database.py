"""Database commands: `db check`, `db backup`, `db backups`, `db restore` and `db reset`.

They open the file themselves (read-only for checks), so they work on a database that
cannot be opened normally. Restore and reset only act with `--yes`; without it they say
what they would do and exit 1. Neither deletes anything: the old file is moved aside.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from orchestrator_tui.commands.grammar import CommandContext, CommandResult, parsers, standalone
from orchestrator_tui.store.backup import (
    DEFAULT_KEEP,
    Backup,
    Replaced,
    aside_label,
    choose_backup,
    list_backups,
    refuse_if_open,
    reset,
    restore,
    take_backup,
)
from orchestrator_tui.store.database import connect, require_existing, ways_out
from orchestrator_tui.store.files import aside_path, companions
from orchestrator_tui.store.integrity import check_file


@parsers
def add_database_parsers(subparsers: Any) -> None:
    """Add `db check|backup|backups|restore|reset` to a parser."""
    db = subparsers.add_parser("db", help="the database: check, back up, restore, reset")
    actions = db.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("check", help="SQLite's quick_check and the tool's own invariants")
    backup = actions.add_parser("backup", help="back the database up now")
    backup.add_argument("--keep", type=int, default=DEFAULT_KEEP, metavar="K",
                        help=f"how many backups to keep (default {DEFAULT_KEEP})")
    actions.add_parser("backups", help="the backups, newest first")
    restore_parser = actions.add_parser(
        "restore", help="put back a backup (default: the newest good one); the current file "
                        "is moved aside, never deleted")
    restore_parser.add_argument("backup", nargs="?",
                                help="a backup's file name, or a unique start of it")
    restore_parser.add_argument("--yes", action="store_true",
                                help="do it (without: only say what would happen)")
    reset_parser = actions.add_parser(
        "reset", help="start an empty database; the current file is moved aside")
    reset_parser.add_argument("--yes", action="store_true",
                              help="do it (without: only say what would happen)")


def _backup_data(backup: Backup) -> dict[str, Any]:
    return {"name": backup.path.name, "path": str(backup.path),
            "taken_at": backup.taken_at.isoformat(), "bytes": backup.size}


def _backup_line(backup: Backup) -> str:
    return f"{backup.path.name}  {backup.taken_at:%Y-%m-%d %H:%M:%S} UTC  {backup.size} bytes"


@standalone("db", "check")
async def _check(args: argparse.Namespace, context: CommandContext) -> CommandResult:
    path = context.db_path
    report = await asyncio.to_thread(check_file, path)
    backups = list_backups(path)
    data = {"database": str(path), "ok": report.ok, "problems": list(report.problems),
            "schema": report.version, "seconds": round(report.seconds, 4),
            "bytes": path.stat().st_size, "backups": [_backup_data(b) for b in backups]}
    lines = [report.summary()]
    if not report.ok:
        lines.append(ways_out(path))
    elif backups:
        lines.append(f"{len(backups)} backup(s), newest {_backup_line(backups[0])}")
    else:
        lines.append("no backups yet (`orchestrator db backup` takes one)")
    return CommandResult("\n".join(lines), data, report.ok)


@standalone("db", "backup")
async def _backup(args: argparse.Namespace, context: CommandContext) -> CommandResult:
    backup = await asyncio.to_thread(take_backup, context.db_path, keep=max(1, args.keep))
    kept = len(list_backups(context.db_path))
    return CommandResult(f"backup written: {backup.path} ({backup.size} bytes; {kept} kept)",
                         {**_backup_data(backup), "kept": kept})


@standalone("db", "backups")
async def _backups(args: argparse.Namespace, context: CommandContext) -> CommandResult:
    backups = list_backups(context.db_path)
    data = {"database": str(context.db_path), "backups": [_backup_data(b) for b in backups]}
    if not backups:
        return CommandResult(f"no backups of {context.db_path} yet (one is taken when a run "
                             "starts, or with `orchestrator db backup`)", data)
    return CommandResult("\n".join([f"backups of {context.db_path}, newest first:",
                                    *(f"  {_backup_line(b)}" for b in backups)]), data)


def _moved_text(replaced: Replaced) -> str:
    if not replaced.moved:
        return "there was no file to move aside"
    return "the old file is kept as " + ", ".join(str(path) for path in replaced.moved)


def _what_moves(context: CommandContext) -> str:
    path = context.db_path
    if not path.exists():
        return f"{path} does not exist, so nothing is moved aside"
    extra = [p.name[len(path.name):] for p in companions(path)]
    with_companions = f" (with its {', '.join(extra)} files)" if extra else ""
    target = aside_path(path, aside_label(path))
    return f"{path}{with_companions} would be moved aside to {target}, never deleted"


@standalone("db", "restore")
async def _restore(args: argparse.Namespace, context: CommandContext) -> CommandResult:
    path = context.db_path
    if not args.yes:
        refuse_if_open(path)
        chosen, skipped = await asyncio.to_thread(choose_backup, path, args.backup)
        passed = [f"skipping damaged backup {b.path.name}: {why}" for b, why in skipped]
        text = "\n".join([
            *passed,
            f"would restore {path} from {chosen.path.name} (taken "
            f"{chosen.taken_at:%Y-%m-%d %H:%M:%S} UTC; what was recorded after it is only in "
            "the old file)",
            _what_moves(context) + ".",
            "Run again with --yes to do it."])
        return CommandResult(text, {"database": str(path), "done": False,
                                    "backup": _backup_data(chosen)}, ok=False)
    replaced = await asyncio.to_thread(restore, path, args.backup)
    assert replaced.backup is not None
    lines = [f"skipped damaged backup {b.path.name}: {why}" for b, why in replaced.skipped]
    lines.append(f"restored {path} from {replaced.backup.path.name}; {_moved_text(replaced)}")
    return CommandResult("\n".join(lines), {
        "database": str(path), "done": True, "backup": _backup_data(replaced.backup),
        "moved": [str(p) for p in replaced.moved],
        "skipped": [b.path.name for b, _ in replaced.skipped]})


@standalone("db", "reset")
async def _reset(args: argparse.Namespace, context: CommandContext) -> CommandResult:
    path = context.db_path
    require_existing(path)
    if not args.yes:
        refuse_if_open(path)
        return CommandResult(
            f"{_what_moves(context)}, and an empty database would take its place; the "
            "sessions recorded in it stay in the moved file. Run again with --yes to do it.",
            {"database": str(path), "done": False}, ok=False)
    replaced = await asyncio.to_thread(reset, path)
    await (await connect(path)).close()
    return CommandResult(f"{path} is now an empty database; {_moved_text(replaced)}",
                         {"database": str(path), "done": True,
                          "moved": [str(p) for p in replaced.moved]})
