"""`comm ...` and `progress`: the message bus from a shell, an agent process or the app.

Inside an agent process the sender, receiver and session default from `ORCHESTRATOR_AGENT`
and `ORCHESTRATOR_SESSION` (and the database from `ORCHESTRATOR_DB`); elsewhere `--agent`
and `--session` name them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
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
from orchestrator_tui.engine.bus import Bus
from orchestrator_tui.store.bus import Message, Outgoing
from orchestrator_tui.store.bus_rules import PRIORITIES

USER = "user"
"""The sender of messages typed outside any agent process."""


def agent_name(args: argparse.Namespace, *, required: bool) -> str:
    """`--agent`, else `$ORCHESTRATOR_AGENT`, else `user` (or an error when `required`)."""
    name = getattr(args, "agent", None) or os.environ.get("ORCHESTRATOR_AGENT")
    if name:
        return str(name)
    if required:
        raise CommandError(f"{args.group} {args.action}: which agent? pass --agent NAME "
                           "(inside an agent process $ORCHESTRATOR_AGENT names it)")
    return USER


def session_of(args: argparse.Namespace) -> str | None:
    """`--session`, else `$ORCHESTRATOR_SESSION`, else None."""
    return getattr(args, "session", None) or os.environ.get("ORCHESTRATOR_SESSION") or None


def payload_of(text: str, what: str) -> str | bytes:
    """The payload argument, or standard input's bytes for `-` (refused from a terminal)."""
    if text != "-":
        return text
    if sys.stdin is None or sys.stdin.isatty():
        raise CommandError(f"{what}: `-` reads the payload from standard input, which is a "
                           "terminal here; pipe the JSON in or give it as an argument")
    return sys.stdin.buffer.read()


def _names(values: list[str] | None) -> list[str]:
    """Comma- or space-separated names from repeatable options."""
    return [name for value in values or [] for name in value.replace(",", " ").split()]


@parsers
def add_comm_parsers(subparsers: Any) -> None:
    """Add `comm ...` and `progress` to a parser."""
    comm = subparsers.add_parser("comm", help="the agents' message bus: send, receive, events")
    actions = comm.add_subparsers(dest="action", required=True, metavar="ACTION")
    send = actions.add_parser("send", help="send a message (JSON payload) to an agent")
    send.add_argument("to", help="an agent, a capability (--to-capability) or * (everyone)")
    send.add_argument("type", help="the message type, e.g. task_assignment, help_request")
    send.add_argument("payload", help="JSON text (at most 256 KiB); - reads standard input")
    send.add_argument("--priority", choices=list(PRIORITIES), default="normal")
    send.add_argument("--to-capability", action="store_true",
                      help="TO is a capability: the least loaded active agent having it")
    receive = actions.add_parser("receive", help="take the next messages (priority, then FIFO)")
    receive.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                         help="wait up to SECONDS for a message (default: do not wait)")
    receive.add_argument("--max", type=int, default=1, metavar="N", help="up to N messages")
    receive.add_argument("--visibility", type=float, default=30.0, metavar="SECONDS",
                         help="deliver again if not acknowledged within SECONDS (30)")
    receive.add_argument("--ack", action="store_true", help="acknowledge them at once")
    ack = actions.add_parser("ack", help="acknowledge received messages")
    ack.add_argument("ids", nargs="+", type=int, metavar="ID")
    fail = actions.add_parser("fail", help="hand a received message back as failed")
    fail.add_argument("id", type=int, metavar="ID")
    fail.add_argument("reason", help="why it could not be processed")
    register = actions.add_parser("register", help="register an agent and what it listens to")
    register.add_argument("name", help="the agent's name")
    register.add_argument("--capabilities", nargs="*", action="extend", metavar="CAP",
                          help="capabilities (space or comma separated)")
    register.add_argument("--events", nargs="*", action="extend", metavar="EVENT",
                          help="event types to receive as messages (* for all)")
    show = actions.add_parser("show-messages", help="the newest messages")
    show.add_argument("--type", help="only messages of this type")
    show.add_argument("--state", help="only messages in this state (pending, delivered, "
                                      "acknowledged, failed, dead_letter)")
    show.add_argument("--limit", type=int, default=50, metavar="N")
    publish = actions.add_parser("publish", help="publish an event to the agents that "
                                                 "registered for its type")
    publish.add_argument("type", help="the event type, e.g. tests_passed")
    publish.add_argument("payload", help="JSON text (at most 256 KiB); - reads standard input")
    events = actions.add_parser("show-events", help="the newest published events")
    events.add_argument("--limit", type=int, default=50, metavar="N")
    actions.add_parser("agent-status", help="registered agents and their messages")
    for sub in (send, receive, ack, fail, show, publish):
        sub.add_argument("--agent", metavar="NAME", help="the agent acting, or shown "
                                                         "(default: $ORCHESTRATOR_AGENT)")
    for sub in (send, register, events, publish):
        sub.add_argument("--session", metavar="ID", help="the session (default: "
                                                         "$ORCHESTRATOR_SESSION)")

    progress = subparsers.add_parser("progress", help="report an agent's progress")
    progress.add_argument("percent", type=float, help="0 to 100")
    progress.add_argument("note", nargs="?", help="what is being done")
    progress.add_argument("--agent", metavar="NAME", help="default: $ORCHESTRATOR_AGENT")
    progress.add_argument("--session", metavar="ID", help="default: $ORCHESTRATOR_SESSION")
    progress.add_argument("--task", metavar="ID", help="default: $ORCHESTRATOR_TASK")


def _line(message: Message) -> str:
    return (f"#{message.id} [{message.priority}] {message.sender} -> {message.agent or '-'} "
            f"{message.type} {message.state}"
            + (f" ({message.reason})" if message.reason else "") + f": {message.payload}")


async def _bus(context: CommandContext) -> Bus:
    return await Bus.open(context.db_path, migrate=False)


@command("comm", "send")
async def _send(conn: aiosqlite.Connection, args: argparse.Namespace,
                context: CommandContext) -> CommandResult:
    payload = payload_of(args.payload, "comm send")
    kind = "capability" if args.to_capability else "broadcast" if args.to == "*" else "agent"
    message = Outgoing(agent_name(args, required=False), args.to, args.type, payload,
                       args.priority, kind, session_of(args))
    async with await _bus(context) as bus:
        sent = await bus.send(message)
    data = {"ids": list(sent.ids), "agents": list(sent.agents), "dead_letter": sent.reason}
    if sent.reason:
        return CommandResult(f"message #{sent.ids[0]} dead-lettered: {sent.reason}", data,
                             ok=False)
    return CommandResult(f"sent #{', #'.join(map(str, sent.ids))} to "
                         f"{', '.join(sent.agents)}", data)


@command("comm", "publish")
async def _publish(conn: aiosqlite.Connection, args: argparse.Namespace,
                   context: CommandContext) -> CommandResult:
    payload = payload_of(args.payload, "comm publish")
    if isinstance(payload, bytes):
        try:
            payload = payload.decode("utf-8")
        except UnicodeDecodeError:
            raise CommandError("comm publish: the payload is not UTF-8 text") from None
    source = agent_name(args, required=False)
    async with await _bus(context) as bus:
        event_id, subscribers = await bus.publish(source, args.type, payload,
                                                  session_id=session_of(args))
    return CommandResult(f"event #{event_id} {args.type} published to {subscribers} "
                         "subscriber(s)", {"event": event_id, "subscribers": subscribers})


@command("comm", "receive")
async def _receive(conn: aiosqlite.Connection, args: argparse.Namespace,
                   context: CommandContext) -> CommandResult:
    agent = agent_name(args, required=True)
    if not 0 <= args.wait <= 3600 or args.visibility <= 0:
        raise CommandError("comm receive: --wait must be 0 to 3600 seconds and --visibility "
                           "more than 0")
    async with await _bus(context) as bus:
        got = await bus.receive(agent, args.max, wait=args.wait, visibility=args.visibility)
        if args.ack and got:
            await bus.ack(agent, [m.id for m in got])
    data = [m.to_dict() | ({"state": "acknowledged"} if args.ack else {}) for m in got]
    text = "\n".join(_line(m) for m in got) or f"no message for {agent}"
    return CommandResult(text, data)


@command("comm", "ack")
async def _ack(conn: aiosqlite.Connection, args: argparse.Namespace,
               context: CommandContext) -> CommandResult:
    agent = agent_name(args, required=True)
    async with await _bus(context) as bus:
        done = await bus.ack(agent, args.ids)
    again = [i for i in args.ids if i not in done]
    text = (f"acknowledged #{', #'.join(map(str, done))}" if done else "nothing new acknowledged") \
        + (f"; already acknowledged or dead: #{', #'.join(map(str, again))}" if again else "")
    return CommandResult(text, {"acknowledged": done, "unchanged": again})


@command("comm", "fail")
async def _fail(conn: aiosqlite.Connection, args: argparse.Namespace,
                context: CommandContext) -> CommandResult:
    agent = agent_name(args, required=True)
    async with await _bus(context) as bus:
        state = await bus.fail(agent, args.id, args.reason)
    return CommandResult(f"message #{args.id} is now {state}", {"id": args.id, "state": state})


@command("comm", "register")
async def _register(conn: aiosqlite.Connection, args: argparse.Namespace,
                    context: CommandContext) -> CommandResult:
    caps, events = _names(args.capabilities), _names(args.events)
    async with await _bus(context) as bus:
        await bus.register(args.name, caps, events, session_of(args))
    return CommandResult(f"registered {args.name}: capabilities {', '.join(caps) or '-'}; "
                         f"events {', '.join(events) or '-'}",
                         {"agent": args.name, "capabilities": caps, "events": events})


@command("comm", "show-messages")
async def _show_messages(conn: aiosqlite.Connection, args: argparse.Namespace,
                         context: CommandContext) -> CommandResult:
    async with await _bus(context) as bus:
        found = await bus.messages(agent=args.agent, type=args.type, state=args.state,
                                   limit=args.limit)
        counts = await bus.counts()
    summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "none"
    return CommandResult("\n".join([f"messages: {summary}", *map(_line, found)]),
                         {"counts": counts, "messages": [m.to_dict() for m in found]})


@command("comm", "show-events")
async def _show_events(conn: aiosqlite.Connection, args: argparse.Namespace,
                       context: CommandContext) -> CommandResult:
    async with await _bus(context) as bus:
        found = await bus.events(session_id=args.session, limit=args.limit)
    lines = [f"#{e['id']} {time.strftime('%H:%M:%S', time.localtime(e['created_at']))} "
             f"{e['source']} {e['type']} -> {e['subscribers']} subscriber(s): "
             f"{json.dumps(e['payload'])}" for e in found]
    return CommandResult("\n".join(lines) or "no events", found)


@command("comm", "agent-status")
async def _agent_status(conn: aiosqlite.Connection, args: argparse.Namespace,
                        context: CommandContext) -> CommandResult:
    async with await _bus(context) as bus:
        agents = await bus.agent_status()
    lines = [f"{a['agent']:<20} {'active' if a['active'] else 'inactive':<8} "
             f"caps {','.join(a['capabilities']) or '-'}; events "
             f"{','.join(a['events']) or '-'}; "
             + (", ".join(f"{n} {s}" for s, n in sorted(a["messages"].items())) or "no messages")
             for a in agents]
    return CommandResult("\n".join(lines) or "no agent registered on the bus", agents)


@command("progress")
async def _progress(conn: aiosqlite.Connection, args: argparse.Namespace,
                    context: CommandContext) -> CommandResult:
    agent = agent_name(args, required=False)
    task = args.task or os.environ.get("ORCHESTRATOR_TASK") or None
    session = session_of(args)
    async with await _bus(context) as bus:
        row = await bus.progress(agent, args.percent, args.note, session_id=session,
                                 task_id=task)
    return CommandResult(f"progress of {task or agent}: {args.percent:g}%"
                         + (f" ({args.note})" if args.note else ""),
                         {"id": row, "agent": agent, "task": task, "session": session,
                          "percent": args.percent, "note": args.note})
