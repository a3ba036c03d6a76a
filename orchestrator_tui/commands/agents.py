"""Agent commands: `agent list`, `agent show`, `agent activate` and `agent archive`.

Archiving keeps an agent's file where it is and records the name in the database; a
workflow that uses an archived agent stops at planning until it is activated again.
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
from typing import Any

import aiosqlite

from orchestrator_tui.commands.agent_generation import add_generate_parsers
from orchestrator_tui.commands.grammar import (
    CommandContext,
    CommandError,
    CommandResult,
    command,
    parsers,
)
from orchestrator_tui.engine.agent_state import archived_agents, set_archived
from orchestrator_tui.engine.registry import (
    AgentSpec,
    Problem,
    Registry,
    is_safe_name,
    load_registry,
)

CAPABILITIES_WIDTH = 40


@parsers
def add_agent_parsers(subparsers: Any) -> None:
    """Add `agent list|show|activate|archive` (and `generate`, `create`) to a parser."""
    agent = subparsers.add_parser("agent", help="agent files: list, show, activate, archive")
    actions = agent.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="every agent, where it comes from, its problems")
    listing.add_argument("--active", action="store_true", help="only active agents")
    listing.add_argument("--archived", action="store_true", help="only archived agents")
    show = actions.add_parser("show", help="everything known about one agent, with its prompt")
    show.add_argument("name", help="the agent's name")
    activate = actions.add_parser("activate", help="let workflows use an archived agent again")
    activate.add_argument("name", help="the agent's name")
    archive = actions.add_parser("archive", help="keep workflows from using an agent")
    archive.add_argument("name", help="the agent's name")
    add_generate_parsers(actions)


async def _registry(context: CommandContext) -> tuple[Registry, dict[str, str]]:
    """The agents as the files say, marked with the archived set of the database."""
    archived = await archived_agents(context.db_path)
    registry = await asyncio.to_thread(load_registry, context.workspace,
                                       list(context.agent_dirs), archived)
    return registry, archived


@command("agent", "list")
async def _list(conn: aiosqlite.Connection, args: argparse.Namespace,
                context: CommandContext) -> CommandResult:
    registry, archived = await _registry(context)
    everything = args.active == args.archived
    shown = [spec for spec in sorted(registry.agents.values(), key=_order)
             if everything or spec.archived == args.archived]
    missing = sorted(set(archived) - set(registry.agents))
    data = {"agents": [agent_data(spec, archived.get(spec.name)) for spec in shown],
            "problems": [problem_data(p) for p in registry.problems],
            "shadowed": [{"name": s.name, "path": str(s.path), "by": str(s.by)}
                         for s in registry.shadowed],
            "archived_not_found": missing}
    lines = _table(shown)
    if any(spec.capabilities_inferred for spec in shown):
        lines.append("* capabilities inferred from the name and description")
    if missing:
        lines.append("archived, but no file defines them: " + ", ".join(missing))
    if registry.problems:
        lines += ["", f"problems ({len(registry.problems)}):", *map(str, registry.problems)]
    return CommandResult("\n".join(lines), data)


@command("agent", "show")
async def _show(conn: aiosqlite.Connection, args: argparse.Namespace,
                context: CommandContext) -> CommandResult:
    registry, archived = await _registry(context)
    spec = registry.get(args.name)
    data = agent_data(spec, archived.get(spec.name), full=True)
    data["shadows"] = [str(s.path) for s in registry.shadowed if s.name == spec.name]
    lines = [f"{key}: {value}" for key, value in _details(spec, data)]
    if spec.problems:
        lines += [f"problems ({len(spec.problems)}):", *(f"  {p}" for p in spec.problems)]
    lines += ["", "--- prompt ---", spec.body or "(empty)"]
    return CommandResult("\n".join(lines), data)


def _details(spec: AgentSpec, data: dict[str, Any]) -> list[tuple[str, str]]:
    """The fields of `agent show`, as label and text."""
    inferred = " (inferred from the name and description)" if spec.capabilities_inferred else ""
    state = f"archived since {data['archived_at']}" if spec.archived else "active"
    return [
        ("name", spec.name), ("path", str(spec.path)), ("source", spec.source),
        ("state", state), ("description", spec.description or "-"),
        ("tools", ", ".join(spec.tools) or "- (every tool)"), ("model", spec.model or "-"),
        ("color", spec.color or "-"), ("runner", spec.runner),
        ("command", shlex.join(spec.command) if spec.command else "-"),
        ("idempotent", "yes" if spec.idempotent else "no"),
        ("capabilities", (", ".join(spec.capabilities) or "-") + inferred),
        ("priority", str(spec.priority)), ("resources", _shown(spec.resources)),
        ("fallback", _shown(list(spec.fallback))), ("isolation", spec.isolation or "-"),
        ("shadows", _shown(data["shadows"])), ("other keys", _shown(data["other_keys"])),
    ]


@command("agent", "archive")
async def _archive(conn: aiosqlite.Connection, args: argparse.Namespace,
                   context: CommandContext) -> CommandResult:
    name = _checked_name(args.name)
    registry, archived = await _registry(context)
    if name in archived:
        return CommandResult(f"agent {name!r} is archived already (since {archived[name]})",
                             {"agent": name, "archived": True, "since": archived[name]})
    spec = registry.get(name)
    since = await set_archived(context.db_path, spec.name, True)
    return CommandResult(
        f"archived agent {spec.name!r} ({spec.path}); workflows using it now stop at planning "
        f"(`orchestrator agent activate {spec.name}` undoes this)",
        {"agent": spec.name, "archived": True, "since": since})


@command("agent", "activate")
async def _activate(conn: aiosqlite.Connection, args: argparse.Namespace,
                    context: CommandContext) -> CommandResult:
    name = _checked_name(args.name)
    registry, archived = await _registry(context)
    if name not in archived:
        spec = registry.get(name)
        return CommandResult(f"agent {spec.name!r} is active already",
                             {"agent": spec.name, "archived": False, "since": None})
    await set_archived(context.db_path, name, False)
    where = f" ({registry.agents[name].path})" if name in registry.agents else \
        " (no agent file defines it now)"
    return CommandResult(f"activated agent {name!r}{where}",
                         {"agent": name, "archived": False, "since": None})


def _checked_name(text: str) -> str:
    name = text.strip().casefold()
    if not is_safe_name(name):
        raise CommandError(f"{text!r} is not an agent name (a letter or digit, then letters, "
                           "digits, '.', '_' or '-')")
    return name


def agent_data(spec: AgentSpec, archived_at: str | None = None, *,
               full: bool = False) -> dict[str, Any]:
    """One agent as JSON-able data; `full` adds every field, the description and the prompt."""
    data: dict[str, Any] = {
        "name": spec.name, "path": str(spec.path), "source": spec.source,
        "description": spec.summary, "tools": list(spec.tools), "model": spec.model,
        "capabilities": list(spec.capabilities),
        "capabilities_inferred": spec.capabilities_inferred, "runner": spec.runner,
        "archived": spec.archived, "archived_at": archived_at if spec.archived else None,
        "problems": [problem_data(p) for p in spec.problems],
    }
    if full:
        data.update({
            "description": spec.description, "color": spec.color, "priority": spec.priority,
            "command": list(spec.command) if spec.command else None,
            "idempotent": spec.idempotent, "resources": spec.resources,
            "fallback": list(spec.fallback), "isolation": spec.isolation, "body": spec.body,
            "other_keys": {k: v for k, v in spec.extra.items() if k not in _SHOWN_KEYS},
        })
    return data


_SHOWN_KEYS = ("name", "description", "tools", "model", "color", "capabilities", "priority",
               "runner", "command", "resources", "idempotent", "fallback", "isolation")


def problem_data(problem: Problem) -> dict[str, Any]:
    """A problem as JSON-able data."""
    return {"path": str(problem.path), "line": problem.line, "message": problem.message,
            "severity": problem.severity}


def _order(spec: AgentSpec) -> tuple[int, str]:
    sources = ("workspace", "user", "shipped", "extra")
    return (sources.index(spec.source) if spec.source in sources else len(sources), spec.name)


def _table(specs: list[AgentSpec]) -> list[str]:
    """The agents as aligned text columns."""
    header = ("name", "source", "runner", "capabilities", "state", "problems")
    rows = [header] + [(
        spec.name, spec.source, spec.runner, _capabilities(spec),
        "archived" if spec.archived else "active", str(len(spec.problems)),
    ) for spec in specs]
    if not specs:
        return ["no agents"]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
            for row in rows]


def _capabilities(spec: AgentSpec) -> str:
    text = ",".join(spec.capabilities) or "-"
    if len(text) > CAPABILITIES_WIDTH:
        text = text[:CAPABILITIES_WIDTH - 1] + "…"
    return text + ("*" if spec.capabilities_inferred else "")


def _shown(value: Any) -> str:
    """A field's value for people: lists and mappings joined, nothing as '-'."""
    if not value and value != 0:
        return "-"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)
