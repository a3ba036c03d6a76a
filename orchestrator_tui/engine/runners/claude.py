"""Claude Code in headless mode: `claude -p PROMPT --output-format stream-json --verbose`.

Stream messages (one JSON object per line): `system` (subtype `init`: session_id, model,
tools), `assistant` (message.content blocks: `text`, `tool_use` with name and input),
`user` (tool results), and one final `result` (subtype `success` or `error_*`, is_error,
result, duration_ms, num_turns, session_id, total_cost_usd, usage).
"""

from __future__ import annotations

import json
from typing import Any

from orchestrator_tui.engine.runners import agent_events as ev
from orchestrator_tui.engine.runners.stream import (
    AgentCall,
    StreamBackend,
    agent_description,
    agent_model,
    agent_tools,
    argument,
    dict_of,
    int_of,
    list_of,
    text_of,
    tool_target,
)
from orchestrator_tui.engine.settings import effective

AGENT_FLAGS = "append-system-prompt"
"""How the agent's instructions reach Claude Code: `append-system-prompt` adds its body to
Claude Code's own system prompt (`--append-system-prompt`, present in every release with
stream-json, and it keeps Claude Code's tool instructions); `agents` defines it inline and
selects it (`--agents JSON --agent NAME`, only in recent releases). Tools and model are
passed as `--allowedTools` and `--model` either way."""

RESULT_MEANINGS = {
    "error_max_turns": "stopped at the turn limit (max_turns)",
    "error_max_budget_usd": "stopped at the budget limit (max_budget_usd)",
    "error_during_execution": "failed during execution",
}


def build_argv(call: AgentCall) -> tuple[str, ...]:
    """The argv of one attempt.

    The prompt follows `-p` directly: `--allowedTools` takes a variable number of values and
    would swallow a prompt placed after it.
    """
    agent, settings = call.agent, call.settings
    argv = [call.program, "-p", argument(call.prompt), "--output-format", "stream-json",
            "--verbose"]
    tools, model = agent_tools(agent), agent_model(agent)
    body = argument(agent.body.strip())
    if AGENT_FLAGS == "agents":
        definition: dict[str, Any] = {"description": agent_description(agent) or agent.name,
                                      "prompt": body or agent_description(agent)}
        if tools:
            definition["tools"] = list(tools)
        if model:
            definition["model"] = model
        argv += ["--agents", json.dumps({agent.name: definition}), "--agent", agent.name]
    elif body:
        argv += ["--append-system-prompt", body]
    if model:
        argv += ["--model", model]
    for flag, key in (("--permission-mode", "claude_permission_mode"),
                      ("--max-turns", "max_turns"), ("--max-budget-usd", "max_budget_usd")):
        if (value := effective(settings, key)) is not None:
            argv += [flag, value]
    if call.resume:
        argv += ["--resume", call.resume]
    if tools:
        # Of the two documented forms (several arguments, or one comma-separated string),
        # the string: one argument whatever the agent's tool names look like.
        argv += ["--allowedTools", ",".join(tools)]
    return tuple(argv)


class ClaudeParser:
    """Reads Claude Code's stream-json messages."""

    def parse(self, event: dict[str, Any]) -> list[ev.AgentEvent]:
        kind = event.get("type")
        if kind == "system" and event.get("subtype") == "init":
            tools = event.get("tools")
            return [ev.Started(
                session_id=text_of(event.get("session_id")) or None,
                model=text_of(event.get("model")) or None,
                tools=tuple(str(t) for t in tools) if isinstance(tools, list) else ())]
        if kind == "assistant":
            return self._assistant(event.get("message"))
        if kind == "result":
            return self._result(event)
        return []

    def _assistant(self, message: object) -> list[ev.AgentEvent]:
        content = dict_of(message).get("content")
        if isinstance(content, str):
            return [ev.Output(content)] if content.strip() else []
        events: list[ev.AgentEvent] = []
        for block in list_of(content):
            if not isinstance(block, dict):
                continue
            if block.get("type") == "text" and text_of(block.get("text")).strip():
                events.append(ev.Output(block["text"]))
            elif block.get("type") == "tool_use":
                target = tool_target(block.get("input"))
                name = text_of(block.get("name")) or "a tool"
                events.append(ev.Progress(f"using {name}" + (f" on {target}" if target else "")))
        return events

    def _result(self, event: dict[str, Any]) -> list[ev.AgentEvent]:
        usage = dict_of(event.get("usage"))
        # Every input token: fresh, written to the cache and read from it.
        counted = [int_of(usage.get(key)) for key in
                   ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")]
        tokens_in = sum(n for n in counted if n is not None) if any(
            n is not None for n in counted) else None
        cost = event.get("total_cost_usd")
        cost_usd = float(cost) if isinstance(cost, int | float) and not isinstance(cost, bool) \
            else None
        turns = int_of(event.get("num_turns"))
        subtype = text_of(event.get("subtype"))
        is_error = bool(event.get("is_error")) or subtype not in ("", "success")
        text = text_of(event.get("result"))
        if is_error and not text:
            errors = list_of(event.get("errors"))
            text = "; ".join(map(str, errors)) if errors \
                else RESULT_MEANINGS.get(subtype, subtype or "failed")
        return [
            ev.Usage(tokens_in=tokens_in, tokens_out=int_of(usage.get("output_tokens")),
                     cost_usd=cost_usd, turns=turns),
            ev.Result(text=text, is_error=is_error, duration_ms=int_of(event.get("duration_ms")),
                      turns=turns, session_id=text_of(event.get("session_id")) or None),
        ]


BACKEND = StreamBackend(name="claude", argv=build_argv, parser=ClaudeParser)
