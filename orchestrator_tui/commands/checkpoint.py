"""Checkpoint commands: `checkpoint create`, `list`, `restore` and `rollback`."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from typing import Any

import aiosqlite

from orchestrator_tui.commands.grammar import CommandContext, CommandResult, command, parsers
from orchestrator_tui.engine.checkpoints import (
    RestoreResult,
    create_checkpoint,
    restore_checkpoint,
    rollback,
)
from orchestrator_tui.store import queries
from orchestrator_tui.store.queries import CheckpointRow, SessionRow
from orchestrator_tui.views import stamp


@parsers
def add_checkpoint_parsers(subparsers: Any) -> None:
    """Add `checkpoint create|list|restore|rollback` to a parser."""
    group = subparsers.add_parser("checkpoint", help="save, list and restore checkpoints (a "
                                                     "session's state and the workspace files)")
    sub = group.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = sub.add_parser("create", help="save the session's state and the workspace files")
    create.add_argument("name", help="a name to recognise it by")
    create.add_argument("session", nargs="?", help="session id or prefix (default: the latest "
                                                   "session of this workspace, if any)")
    listing = sub.add_parser("list", help="the checkpoints, oldest first")
    listing.add_argument("session", nargs="?", help="only this session's (id or prefix)")
    restore = sub.add_parser("restore", help="bring back a checkpoint's files and session "
                                             "state (what is there now is saved first)")
    restore.add_argument("checkpoint", help="checkpoint id or prefix")
    restore.add_argument("--no-files", dest="files", action="store_false",
                         help="restore the session's state only, not the files")
    back = sub.add_parser("rollback", help="restore the checkpoint taken when the session's "
                                           "failed phase began")
    back.add_argument("session", nargs="?", help="session id or prefix (default: latest)")


@command("checkpoint", "create")
async def _create(conn: aiosqlite.Connection, args: argparse.Namespace,
                  context: CommandContext) -> CommandResult:
    session = await _session_for_create(conn, args.session, context)
    row = await create_checkpoint(context.db_path, context.workspace,
                                  session.id if session else None, args.name,
                                  "created by the user")
    data = checkpoint_data(row)
    of = f"session {row.session_id} and " if row.session_id else ""
    return CommandResult(f"checkpoint {row.id} ({row.name}) saved: {of}{data['files']} file(s),"
                         f" {_size(row.size_bytes)} ({row.kind})", data)


@command("checkpoint", "list")
async def _list(conn: aiosqlite.Connection, args: argparse.Namespace,
                context: CommandContext) -> CommandResult:
    session_id = (await queries.find_session(conn, args.session)).id if args.session else None
    rows = [checkpoint_data(row) for row in await queries.checkpoints(conn, session_id)]
    if not rows:
        return CommandResult("no checkpoints" + (f" of session {session_id}" if session_id
                                                 else ""), {"checkpoints": []})
    lines = [f"{r['id']}  {r['created']}  {r['kind']:<7} {_size(r['size_bytes']):>9}  "
             f"{r['session'] or '-':<13} {r['name']}  ({r['reason']})" for r in rows]
    return CommandResult("\n".join(lines), {"checkpoints": rows})


@command("checkpoint", "restore")
async def _restore(conn: aiosqlite.Connection, args: argparse.Namespace,
                   context: CommandContext) -> CommandResult:
    result = await restore_checkpoint(context.db_path, context.workspace, args.checkpoint,
                                      files=args.files)
    return _restored(result)


@command("checkpoint", "rollback")
async def _rollback(conn: aiosqlite.Connection, args: argparse.Namespace,
                    context: CommandContext) -> CommandResult:
    return _restored(await rollback(context.db_path, context.workspace, args.session))


def checkpoint_data(row: CheckpointRow) -> dict[str, Any]:
    """A checkpoint as JSON-able data (without its recorded state)."""
    try:
        files = json.loads(row.state).get("files")
    except (ValueError, AttributeError):
        files = None
    return {"id": row.id, "session": row.session_id, "name": row.name, "kind": row.kind,
            "snapshot": row.snapshot, "reason": row.reason, "undo_of": row.undo_of,
            "size_bytes": row.size_bytes, "files": files, "created": stamp(row.created_at),
            "created_at": row.created_at}


async def _session_for_create(conn: aiosqlite.Connection, session_id: str | None,
                              context: CommandContext) -> SessionRow | None:
    if session_id is not None:
        return await queries.find_session(conn, session_id)
    workspace = str(context.workspace)
    return next((s for s in await queries.list_sessions(conn, limit=1000)
                 if s.workspace == workspace), None)


def _restored(result: RestoreResult) -> CommandResult:
    lines = [f"checkpoint {result.checkpoint} restored"]
    if result.files_restored:
        lines.append(f"files: {result.files_written} written, {result.files_removed} removed"
                     + (f", {result.files_kept} ignored file(s) in the way left as they were"
                        if result.files_kept else ""))
    else:
        lines.append("files: left as they are (--no-files)")
    if result.session:
        lines.append(f"session {result.session} is {result.session_state}: "
                     f"{result.tasks_reset} task(s) back to pending, {result.tasks_succeeded} "
                     "succeeded kept; `orchestrator resume` carries it on")
    lines.append(f"undo: orchestrator checkpoint restore {result.undo}")
    return CommandResult("\n".join(lines), asdict(result))


def _size(size: int | None) -> str:
    if size is None:
        return "-"
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / 1024 / 1024:.1f} MB"
