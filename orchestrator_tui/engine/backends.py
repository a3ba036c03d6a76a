"""Which back end runs an agent, and what an agent CLI is asked to do.

An agent may name its runner (`runner: claude | codex | gemini | command | python`). Without
one (`auto`), the `default_runner` setting decides when it is not `auto`; otherwise the
configured LLM CLI (setting `llm_cli`, default claude) runs it when that program is on
PATH, else the agent's own `command`. So a machine without any LLM CLI runs the shipped
agents' offline commands, exactly as before.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from orchestrator_tui.core.models import TaskSpec
from orchestrator_tui.engine.registry import AgentSpec
from orchestrator_tui.engine.runners import claude, codex, gemini
from orchestrator_tui.engine.runners.stream import StreamBackend, agent_description
from orchestrator_tui.engine.settings import effective

STREAMS: dict[str, StreamBackend] = {b.name: b for b in (claude.BACKEND, codex.BACKEND,
                                                          gemini.BACKEND)}
LLM_CLIS = tuple(STREAMS)
AGENT_RUNNERS = ("auto", *LLM_CLIS, "command", "python")
INSTALL = {"claude": "Claude Code (npm install -g @anthropic-ai/claude-code)",
           "codex": "the Codex CLI (npm install -g @openai/codex)",
           "gemini": "Gemini CLI (npm install -g @google/gemini-cli)"}
PROMPT_LIMIT = 100_000
"""Bytes of an agent's instructions passed in one argument (the kernel caps one at 128 KiB,
and the task's own words come on top)."""

Which = Callable[[str], str | None]


@dataclass(frozen=True, slots=True)
class Choice:
    """How an agent runs: a runner and, for an agent CLI, its program; or why it cannot."""

    runner: str | None
    """`claude`, `codex`, `gemini`, `command` or `python`; None when nothing can run it."""
    program: str | None = None
    """The agent CLI's executable, found on PATH."""
    how: str = ""
    """Why this runner, or what to install or add when there is none."""


def auto_cli(settings: Mapping[str, str], which: Which = shutil.which) -> str | None:
    """The LLM CLI that `auto` picks now: the configured one if it is installed."""
    name = effective(settings, "llm_cli")
    return name if name in STREAMS and which(name) else None


def choose(agent: AgentSpec, settings: Mapping[str, str],
           which: Which = shutil.which) -> Choice:
    """The runner of `agent` under `settings` on this machine's PATH."""
    own = (agent.runner or "auto").strip()
    if own not in AGENT_RUNNERS:
        return Choice(None, how=f"runner {own!r} is not one of {', '.join(AGENT_RUNNERS)}")
    forced = effective(settings, "default_runner") or "auto"
    wanted, source = (own, "its `runner:`") if own != "auto" else (
        (forced, "the default_runner setting") if forced != "auto" else ("auto", ""))
    if wanted in STREAMS:
        program = which(wanted)
        if program is None:
            return Choice(None, how=f"{source} asks for {wanted}, which is not on PATH; "
                                    f"install {INSTALL[wanted]}")
        return Choice(wanted, program, f"{source} asks for {wanted}")
    if wanted == "command":
        if agent.command is None:
            return Choice(None, how=f"{source} asks for its `command:`, and it has none; "
                                    "add one")
        return Choice("command", how=f"{source} asks for its `command:`")
    if wanted == "python":
        if not python_target(agent):
            return Choice(None, how="its `runner: python` needs a `python: module:function` "
                                    "in the agent file")
        return Choice("python", how="its `runner:` asks for python")
    llm = effective(settings, "llm_cli")
    if llm in STREAMS and (program := which(llm)) is not None:
        return Choice(llm, program, f"auto: {llm} is installed")
    if agent.command is not None:
        why = "no LLM CLI is enabled" if llm not in STREAMS else f"{llm} is not installed"
        return Choice("command", how=f"auto: {why}; its offline `command:`")
    if llm not in STREAMS:
        return Choice(None, how="has no `command:` to run it offline and the llm_cli setting "
                                "is none; add a `command:` to the agent file, or set llm_cli "
                                "to claude, codex or gemini and install it")
    return Choice(None, how=f"has no `command:` to run it offline and {llm} is not on PATH; "
                            f"add a `command:` to the agent file, or install {INSTALL[llm]}")


def python_target(agent: AgentSpec) -> str | None:
    """The `python: module:function` of an agent file, if it has one."""
    target = agent.extra.get("python")
    return target if isinstance(target, str) and ":" in target else None


def task_prompt(agent: AgentSpec, task: TaskSpec, intent: str, intent_description: str = "",
                *, attempt: int = 1, previous: str = "") -> str:
    """What an agent CLI is asked to do for one attempt of `task`, in words."""
    lines = [f"You are the {agent.name} agent"
             + (f" ({agent_description(agent)[:500]})" if agent.description else "")
             + ", one of several agents working on this repository in parallel.",
             f"Intent: {intent}" + (f": {intent_description}" if intent_description else ""),
             f"Your task: {task.id}" + (f": {task.description}" if task.description else "")]
    if task.args:
        lines.append("Arguments: " + json.dumps(task.args, sort_keys=True))
    if attempt > 1:
        lines.append(f"This is attempt {attempt}. The previous attempt ended with: "
                     f"{previous or 'a failure'}. Continue from where it stopped.")
    lines.append("Work in the current folder. Finish with one line that starts with "
                 "'SUMMARY:' and says what you did.")
    lines.append(BUS_HELP)
    return "\n".join(lines)


BUS_HELP = (
    "The other agents and the orchestrator talk through a message bus; the environment "
    "already names the database, the session, your task and you, so the commands need no "
    "other options. `orchestrator comm send TO TYPE PAYLOAD` sends a JSON payload to an "
    "agent (add --priority critical|high|normal|low); `orchestrator comm receive` takes your "
    "next messages (--wait SECONDS to wait) and `orchestrator comm ack ID` acknowledges one; "
    "`orchestrator progress PERCENT NOTE` reports how far you are; `orchestrator context get "
    "KEY` and `orchestrator context set KEY VALUE` read and write the session's shared "
    "context (JSON values). Messages you leave unacknowledged go on to the agents of the "
    "tasks after yours.")
"""The paragraph that tells an agent CLI how to use the bus (see `commands.comm`)."""
