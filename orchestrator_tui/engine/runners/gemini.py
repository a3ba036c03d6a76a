"""Gemini CLI in headless mode: `gemini -p PROMPT --output-format stream-json`.

JSONL events: `init` (session_id, model), `message` (role, content, delta), `tool_use`
(tool_name, tool_id, parameters), `tool_result` (tool_id, status, output, error), `error`
(severity, message) and a final `result` (status `success` | `error`, error, stats with
input_tokens, output_tokens, duration_ms). Exit codes: 0 success, 1 general error,
42 input error, 53 turn limit exceeded.
"""

from __future__ import annotations

from typing import Any

from orchestrator_tui.engine.runners import agent_events as ev
from orchestrator_tui.engine.runners.stream import (
    TEXT_LIMIT,
    AgentCall,
    StreamBackend,
    agent_model,
    dict_of,
    int_of,
    plain_model,
    text_of,
    tool_target,
    with_body,
)

EXIT_MEANINGS = {1: "general error or API failure", 42: "input error", 53: "turn limit exceeded"}


def build_argv(call: AgentCall) -> tuple[str, ...]:
    """The argv of one attempt; the agent's body leads the prompt (no agent flag)."""
    argv = [call.program, "-p", with_body(call.agent, call.prompt),
            "--output-format", "stream-json"]
    model = plain_model(agent_model(call.agent))
    if model:
        argv += ["-m", model]
    return tuple(argv)


class GeminiParser:
    """Reads Gemini CLI's stream-json events; streamed message chunks are joined."""

    def __init__(self) -> None:
        self.session_id: str | None = None
        self.tools: dict[str, str] = {}
        self.response = ""
        self._pending = ""

    def parse(self, event: dict[str, Any]) -> list[ev.AgentEvent]:
        kind = event.get("type")
        if kind == "message":
            return self._message(event)
        events = self._flush()
        if kind == "init":
            self.session_id = text_of(event.get("session_id")) or None
            events.append(ev.Started(session_id=self.session_id,
                                     model=text_of(event.get("model")) or None))
        elif kind == "tool_use":
            name = text_of(event.get("tool_name")) or "a tool"
            self.tools[text_of(event.get("tool_id"))] = name
            target = tool_target(event.get("parameters"))
            events.append(ev.Progress(f"using {name}" + (f" on {target}" if target else "")))
        elif kind == "tool_result" and event.get("status") == "error":
            name = self.tools.get(text_of(event.get("tool_id")), "a tool")
            message = text_of(dict_of(event.get("error")).get("message"))
            events.append(ev.Progress(f"{name} failed" + (f": {message}" if message else "")))
        elif kind == "error":
            severity = text_of(event.get("severity")) or "error"
            events.append(ev.Error(f"{severity}: {text_of(event.get('message'))}"))
        elif kind == "result":
            events += self._result(event)
        return events

    def _message(self, event: dict[str, Any]) -> list[ev.AgentEvent]:
        if event.get("role") != "assistant":
            return []
        content = text_of(event.get("content"))
        self.response = (self.response + content)[-TEXT_LIMIT:]
        if event.get("delta"):
            self._pending += content
            return []
        return [ev.Output(content)] if content.strip() else []

    def _flush(self) -> list[ev.AgentEvent]:
        text, self._pending = self._pending, ""
        return [ev.Output(text)] if text.strip() else []

    def _result(self, event: dict[str, Any]) -> list[ev.AgentEvent]:
        stats = dict_of(event.get("stats"))
        is_error = event.get("status") != "success"
        text = self.response
        if is_error:
            text = text_of(dict_of(event.get("error")).get("message")) or "the run failed"
        return [
            ev.Usage(tokens_in=int_of(stats.get("input_tokens")),
                     tokens_out=int_of(stats.get("output_tokens"))),
            ev.Result(text=text, is_error=is_error, duration_ms=int_of(stats.get("duration_ms")),
                      session_id=self.session_id),
        ]


BACKEND = StreamBackend(name="gemini", argv=build_argv, parser=GeminiParser,
                        exit_meanings=EXIT_MEANINGS)
