"""The Codex CLI, non-interactive: `codex exec --json PROMPT`.

JSONL events: `thread.started` (thread_id), `turn.started`, `item.started` /
`item.updated` / `item.completed` (item: id, type `agent_message` | `reasoning` |
`command_execution` | `file_change` | `mcp_tool_call` | `web_search` | `todo_list` |
`error`, plus its fields), `turn.completed` (usage: input_tokens, cached_input_tokens,
output_tokens), `turn.failed` (error.message) and `error` (message). A retry continues the
thread: `codex exec --json resume THREAD_ID PROMPT`.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Any

from orchestrator_tui.engine.runners import agent_events as ev
from orchestrator_tui.engine.runners.stream import (
    AgentCall,
    StreamBackend,
    agent_model,
    dict_of,
    int_of,
    list_of,
    plain_model,
    text_of,
    with_body,
)


def build_argv(call: AgentCall) -> tuple[str, ...]:
    """The argv of one attempt; Codex has no agent flag, so the body leads the prompt.

    `--skip-git-repo-check`: the workspace need not be a git repository (the orchestrator
    snapshots it itself); `--json` and `-m` are global options, valid before `resume`.
    """
    argv = [call.program, "exec", "--json", "--skip-git-repo-check"]
    model = plain_model(agent_model(call.agent))
    if model:
        argv += ["-m", model]
    if call.resume:
        argv += ["resume", call.resume]
    argv.append(with_body(call.agent, call.prompt))
    return tuple(argv)


class CodexParser:
    """Reads `codex exec --json` events."""

    def __init__(self) -> None:
        self.thread_id: str | None = None
        self.turns = 0
        self.tokens_in = 0
        self.tokens_out = 0
        self.message = ""

    def parse(self, event: dict[str, Any]) -> list[ev.AgentEvent]:
        kind = event.get("type")
        if kind == "thread.started":
            self.thread_id = text_of(event.get("thread_id")) or None
            return [ev.Started(session_id=self.thread_id)]
        if kind == "turn.started":
            return [ev.Progress(f"turn {self.turns + 1} started")]
        if kind in ("item.started", "item.completed"):
            item = event.get("item")
            return self._item(item, kind == "item.completed") if isinstance(item, dict) else []
        if kind == "turn.completed":
            return self._turn_completed(event.get("usage"))
        if kind == "turn.failed":
            message = text_of(dict_of(event.get("error")).get("message"))
            return [ev.Result(text=message or "turn failed", is_error=True, turns=self.turns,
                              session_id=self.thread_id)]
        if kind == "error":
            return [ev.Error(text_of(event.get("message")) or "error")]
        return []

    def _item(self, item: dict[str, Any], done: bool) -> list[ev.AgentEvent]:
        kind = item.get("type")
        if kind == "agent_message" and done:
            self.message = text_of(item.get("text"))
            return [ev.Output(self.message)] if self.message.strip() else []
        if kind == "reasoning" and done and text_of(item.get("text")).strip():
            return [ev.Progress(f"thinking: {item['text']}")]
        if kind == "command_execution":
            command = text_of(item.get("command"))
            if not done:
                return [ev.Progress(f"running {command}")]
            code = int_of(item.get("exit_code"))
            return [ev.Progress(f"ran {command}" + (f" (exit {code})" if code is not None
                                                     else ""))]
        if kind == "file_change" and done:
            paths = [f"{text_of(c.get('kind'))} {PurePath(text_of(c.get('path'))).name}".strip()
                     for c in map(dict_of, list_of(item.get("changes")))]
            return [ev.Progress("changed " + (", ".join(paths) or "files"))]
        if kind == "mcp_tool_call" and not done:
            return [ev.Progress(f"using {text_of(item.get('server'))}."
                                f"{text_of(item.get('tool'))}")]
        if kind == "web_search" and not done:
            return [ev.Progress(f"searching the web for {text_of(item.get('query'))}")]
        if kind == "error":
            return [ev.Error(text_of(item.get("message")) or "error")]
        return []

    def _turn_completed(self, usage: object) -> list[ev.AgentEvent]:
        self.turns += 1
        if isinstance(usage, dict):
            # input_tokens already counts the cached ones (cached_input_tokens is a part).
            self.tokens_in += int_of(usage.get("input_tokens")) or 0
            self.tokens_out += int_of(usage.get("output_tokens")) or 0
        return [ev.Usage(tokens_in=self.tokens_in, tokens_out=self.tokens_out, turns=self.turns),
                ev.Result(text=self.message, turns=self.turns, session_id=self.thread_id)]


BACKEND = StreamBackend(name="codex", argv=build_argv, parser=CodexParser)
