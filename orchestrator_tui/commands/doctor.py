"""`orchestrator doctor`: which back ends this machine has, and how each agent would run.

Each program is looked up on PATH (tools the shipped agents use are also found beside the
running interpreter, as those agents find them) and asked `--version` with a time limit,
argv only. The agents are judged by `engine.backends.choose`, the same function that binds
them when a session starts, so the answer here is the answer there.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiosqlite

from orchestrator_tui.commands.grammar import CommandContext, CommandResult, command, parsers
from orchestrator_tui.engine import backends
from orchestrator_tui.engine.registry import load_registry
from orchestrator_tui.engine.settings import effective
from orchestrator_tui.store import queries

VERSION_TIMEOUT = 5.0
PROGRAMS = (
    ("claude", "agent CLI (runner claude)"),
    ("codex", "agent CLI (runner codex)"),
    ("gemini", "agent CLI (runner gemini)"),
    ("git", "security-scout history scan, checkpoints"),
    ("python", "the shipped agents' offline commands"),
    ("ruff", "code-reviewer lint (else pyflakes)"),
    ("pyflakes", "code-reviewer lint when ruff is missing"),
    ("pytest", "validator-test-runner"),
    ("node", "builder-typescript"),
    ("npm", "builder-typescript"),
)


@dataclass(frozen=True, slots=True)
class Backend:
    """One program: found or not, where, which version, and what uses it."""

    name: str
    found: bool
    path: str | None
    version: str
    used_for: str


@parsers
def add_doctor_parser(subparsers: Any) -> None:
    """Add `doctor` to a parser."""
    subparsers.add_parser("doctor", help="back ends found on this machine and how each agent "
                                         "would run")


@command("doctor")
async def _doctor(conn: aiosqlite.Connection, args: argparse.Namespace,
                  context: CommandContext) -> CommandResult:
    settings = await queries.settings(conn)
    found = await asyncio.gather(*(_backend(name, use) for name, use in PROGRAMS))
    registry = await asyncio.to_thread(load_registry, context.workspace,
                                       list(context.agent_dirs))
    auto = backends.auto_cli(settings)
    agents = []
    for name, agent in sorted(registry.agents.items()):
        choice = backends.choose(agent, settings)
        archived = bool(getattr(agent, "archived", False))
        agents.append({"name": name, "path": str(agent.path), "runner": choice.runner,
                       "program": choice.program, "how": choice.how, "archived": archived,
                       "ok": choice.runner is not None})
    data = {
        "backends": [asdict(backend) for backend in found],
        "settings": {key: effective(settings, key) for key in
                     ("llm_cli", "default_runner", "claude_permission_mode", "max_turns",
                      "max_budget_usd")},
        "auto": auto, "agents": agents,
        "problems": [str(problem) for problem in registry.problems],
    }
    return CommandResult(_text(data), data, ok=all(agent["ok"] for agent in agents))


async def _backend(name: str, used_for: str) -> Backend:
    if name == "python":
        return Backend(name, True, sys.executable, f"Python {sys.version.split()[0]}", used_for)
    path = shutil.which(name) if name in backends.STREAMS else _find(name)
    version = await _version(path) if path else ""
    return Backend(name, path is not None, path, version, used_for)


def _find(name: str) -> str | None:
    """On PATH, else beside the running interpreter (a virtualenv's own tools)."""
    found = shutil.which(name)
    if found:
        return found
    sibling = Path(sys.executable).parent / name
    return str(sibling) if sibling.is_file() and os.access(sibling, os.X_OK) else None


async def _version(path: str) -> str:
    """The first line `PATH --version` prints, within `VERSION_TIMEOUT` seconds."""
    try:
        process = await asyncio.create_subprocess_exec(
            path, "--version", stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            start_new_session=True)
    except OSError as error:
        return f"cannot run: {error.strerror or error}"
    try:
        out, err = await asyncio.wait_for(process.communicate(), VERSION_TIMEOUT)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        return f"no answer to --version within {VERSION_TIMEOUT:g} s"
    for text in (out, err):
        for line in text.decode("utf-8", errors="replace").splitlines():
            if line.strip():
                return line.strip()[:80]
    return f"--version printed nothing (exit code {process.returncode})"


def _text(data: dict[str, Any]) -> str:
    rows = [(b["name"], "found" if b["found"] else "missing", b["version"] or "-",
             b["path"] or "-", b["used_for"]) for b in data["backends"]]
    lines = ["Back ends", *_table(("program", "status", "version", "path", "used for"), rows)]
    llm = data["settings"]["llm_cli"] or "none"
    forced = data["settings"]["default_runner"] or "auto"
    lines += ["", f"auto runs agents with: {data['auto'] or 'their own `command:`'} "
                  f"(llm_cli {llm}, default_runner {forced})"]
    agent_rows = [(a["name"], a["runner"] or "CANNOT RUN",
                   a["how"] + (" [archived]" if a["archived"] else ""))
                  for a in data["agents"]]
    lines += ["", f"Agents ({len(agent_rows)})", *_table(("agent", "runner", "how"), agent_rows)]
    if data["problems"]:
        lines += ["", f"Agent file problems ({len(data['problems'])})",
                  *(f"  {problem}" for problem in data["problems"][:50])]
    return "\n".join(lines)


def _table(header: tuple[str, ...], rows: Sequence[tuple[Any, ...]]) -> list[str]:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows,
                                                                         strict=False)]
    widths[-1] = 0  # the last column is not padded

    def line(cells: tuple[Any, ...]) -> str:
        return "  " + "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True))

    return [line(header), *(line(row).rstrip() for row in rows)]
