"""Agent CLIs that report on stdout one JSON object per line (claude, codex, gemini).

A `StreamRunner` is a `CommandRunner` (same process group, capped output, pause-aware
timeout, termination): only its stdout pipe also hands every complete line, as it arrives,
to the CLI's parser, and its handle turns the parsed events into the attempt's `Outcome`.
A result event decides success when there is one; a non-zero exit without one is a failure
with the tail of stderr; a hang is killed by the timeout like any command. Lines that are
not JSON objects are counted and reported as output, never fatal.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from orchestrator_tui.engine.registry import AgentSpec
from orchestrator_tui.engine.runners import agent_events as ev
from orchestrator_tui.engine.runners.base import Job, Outcome
from orchestrator_tui.engine.runners.command import (
    CommandHandle,
    CommandRunner,
    OutputPipe,
    Started,
    last_line,
    summary_line,
)
from orchestrator_tui.engine.runners.spawn import Process, watch_exit

LINE_LIMIT = 4 * 1024 * 1024
"""Bytes of one line kept while waiting for its end; a longer line is skipped (counted)."""
MIN_CAP = 64 * 1024
"""The smallest output tail a stream keeps: at least one whole read of the pipe."""
TEXT_LIMIT = 64 * 1024
"""Characters of the agent's final text kept."""


class Parser(Protocol):
    """Turns one JSON object of a CLI's stream into engine events."""

    def parse(self, event: dict[str, Any]) -> list[ev.AgentEvent]:
        """The events that `event` means (often none)."""


@dataclass(frozen=True, slots=True)
class AgentCall:
    """What an agent CLI is asked to do in one attempt."""

    program: str
    """The CLI's executable (a path found on PATH)."""
    agent: AgentSpec
    prompt: str
    """The task, in words; the agent's own instructions (its body) are added per CLI."""
    settings: Mapping[str, str] = field(default_factory=dict)
    resume: str | None = None
    """The CLI session of the previous attempt, to continue it."""


@dataclass(frozen=True, slots=True)
class StreamBackend:
    """One agent CLI: how to call it and how to read it."""

    name: str
    argv: Callable[[AgentCall], tuple[str, ...]]
    parser: Callable[[], Parser]
    exit_meanings: Mapping[int, str] = field(default_factory=dict)
    """What the CLI's documented exit codes mean."""


class LinePipe(OutputPipe):
    """A stdout pipe that also hands each complete line to `on_line` as it arrives."""

    def __init__(self, fd: int, cap: int, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(fd, max(cap, MIN_CAP), loop)
        self.on_line: Callable[[bytes], None] = lambda line: None
        self.skipped = 0
        """Lines longer than `LINE_LIMIT`, dropped."""
        self._partial = bytearray()

    def read(self) -> bool:
        before = self.total
        more = super().read()
        fresh = self.total - before
        if fresh:
            # The tail holds at least `cap` >= one read's bytes, so the chunk is all there.
            self._split(bytes(self.data[-fresh:]))
        return more

    def close(self) -> None:
        was_open = not self.closed
        super().close()
        if was_open and self._partial:
            line, self._partial = bytes(self._partial), bytearray()
            self.on_line(line)

    def _split(self, chunk: bytes) -> None:
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            if self._partial:
                self._partial += chunk[start:end]
                line, self._partial = bytes(self._partial), bytearray()
            else:
                line = chunk[start:end]
            self.on_line(line)
            start = end + 1
        self._partial += chunk[start:]
        if len(self._partial) > LINE_LIMIT:
            self._partial.clear()
            self.skipped += 1


class StreamReading:
    """What an agent CLI's JSON lines have said so far, wherever they are read (here, or on
    the coordinating machine for a Ray node), and the attempt's outcome in its own words."""

    def __init__(self, backend: StreamBackend, job: Job) -> None:
        self.backend = backend
        self.job = job
        self.parser = backend.parser()
        self.session_id: str | None = None
        self.usage = ev.Usage()
        self.result: ev.Result | None = None
        self.errors: list[str] = []
        self.last_output = ""
        self.garbage = 0
        """Lines that were not JSON objects (or that the parser could not read)."""

    def line(self, text: str) -> None:
        """Parse one line of stdout and pass on what it means."""
        if not text:
            return
        try:
            value = json.loads(text)
            events = self.parser.parse(value) if isinstance(value, dict) else None
        except Exception:  # a line no parser can read is reported, never fatal
            events = None
        if events is None:
            self.garbage += 1
            self.emit(ev.Output(ev.shorten(text)))
            return
        for event in events:
            self.emit(event)

    def emit(self, event: ev.AgentEvent) -> None:
        """Remember what the event changes, then hand it to the job's listener."""
        if isinstance(event, ev.Started) and event.session_id:
            self.session_id = event.session_id
        elif isinstance(event, ev.Usage):
            self.usage = event
        elif isinstance(event, ev.Result):
            self.result = event
            self.session_id = event.session_id or self.session_id
        elif isinstance(event, ev.Error):
            self.errors.append(event.text)
        elif isinstance(event, ev.Output) and event.text.strip():
            self.last_output = event.text
        if self.job.on_event is not None:
            self.job.on_event(event)

    def outcome(self, base: Outcome, skipped: int = 0) -> Outcome:
        """The attempt's outcome: the CLI's result decides when there is one; `skipped`
        counts over-long lines dropped before parsing."""
        name, code = self.backend.name, base.exit_code or 0
        succeeded, error = base.succeeded, base.error
        text = self.result.text if self.result is not None else self.last_output
        if base.timed_out or base.cancelled or code < 0:
            pass  # the command's own words: timed out, cancelled, killed by a signal
        elif self.result is not None:
            succeeded = not self.result.is_error
            error = "" if succeeded else \
                f"{name}: {ev.shorten(self.result.text or self._last_error() or 'failed', 300)}"
        elif code:
            meaning = self.backend.exit_meanings.get(code)
            detail = self._last_error() or last_line(base.stderr) or \
                "it stopped without a result"
            error = f"{name} exit code {code}" + (f" ({meaning})" if meaning else "") + \
                f": {detail}"
        if not succeeded and (self.garbage or skipped):
            error += f" [{self.garbage + skipped} output line(s) were not JSON]"
        return Outcome(
            succeeded=succeeded, exit_code=base.exit_code, result=summary_line(
                text[-TEXT_LIMIT:]), error=error, stdout=base.stdout, stderr=base.stderr,
            output_bytes=base.output_bytes, timed_out=base.timed_out,
            cancelled=base.cancelled, runner=name, agent_session=self.session_id,
            tokens_in=self.usage.tokens_in, tokens_out=self.usage.tokens_out,
            cost_usd=self.usage.cost_usd,
            turns=self.result.turns if self.result is not None and self.result.turns
            is not None else self.usage.turns)

    def _last_error(self) -> str:
        return ev.shorten(self.errors[-1], 300) if self.errors else ""


class StreamHandle(CommandHandle):
    """A running agent CLI: a command whose stdout is a stream of JSON events."""

    def __init__(self, job: Job, proc: Process, pipes: tuple[LinePipe, OutputPipe],
                 exited: asyncio.Future[int], backend: StreamBackend) -> None:
        super().__init__(job, proc, pipes, exited)
        self.reading = StreamReading(backend, job)
        self._stdout = pipes[0]
        pipes[0].on_line = self.line

    def line(self, raw: bytes) -> None:
        """Parse one line of stdout and pass on what it means."""
        self.reading.line(raw.decode("utf-8", errors="replace").strip())

    def _outcome(self, code: int) -> Outcome:
        return self.reading.outcome(super()._outcome(code), skipped=self._stdout.skipped)


class StreamRunner(CommandRunner):
    """Starts one agent CLI like a command and reads its event stream as it arrives."""

    def __init__(self, backend: StreamBackend, base_env: dict[str, str] | None = None,
                 niceness: int = 0) -> None:
        super().__init__(base_env, niceness)
        self.backend = backend
        self.name = backend.name

    def handle(self, job: Job, started: Started,
               loop: asyncio.AbstractEventLoop | None = None) -> StreamHandle:
        """The handle of a started CLI, reading its stdout from now on."""
        loop = loop or asyncio.get_running_loop()
        proc, out_r, err_r = started
        pipes = (LinePipe(out_r, job.output_cap, loop), OutputPipe(err_r, job.output_cap, loop))
        handle = StreamHandle(job, proc, pipes, watch_exit(proc, loop), self.backend)
        handle.watch_output()
        return handle


# ----- what the argv builders share ----------------------------------------------------------

INHERIT = "inherit"
"""A model value meaning: whatever the CLI is configured with."""


def agent_tools(agent: AgentSpec) -> tuple[str, ...]:
    """The agent's `tools`, whether given as a list or a comma string (empty: all)."""
    tools = getattr(agent, "tools", None)
    if tools is None:
        tools = agent.extra.get("tools")
    if isinstance(tools, str):
        tools = tools.split(",")
    if not isinstance(tools, list | tuple):
        return ()
    return tuple(name for name in (str(tool).strip() for tool in tools) if name)


def agent_model(agent: AgentSpec) -> str | None:
    """The agent's `model`, None when absent or `inherit`."""
    model = getattr(agent, "model", None)
    if model is None:
        model = agent.extra.get("model")
    text = str(model).strip() if model is not None else ""
    return text if text and text != INHERIT else None


def agent_description(agent: AgentSpec) -> str:
    """The agent's description on one line."""
    return " ".join(str(agent.description or "").split())


def plain_model(model: str | None) -> str | None:
    """A model for a CLI other than Claude Code: Claude's aliases and ids mean nothing there."""
    if model is None or model in ("sonnet", "opus", "haiku", "opusplan") \
            or model.startswith("claude"):
        return None
    return model


def with_body(agent: AgentSpec, prompt: str) -> str:
    """The prompt preceded by the agent's instructions, for CLIs without an agent flag."""
    body = agent.body.strip()
    return argument(f"{body}\n\n---\n\n{prompt}" if body else prompt)


def argument(text: str) -> str:
    """User text made safe as an option's value or a positional argument: a leading `-`
    would be read as an option, so such text starts on a new line instead."""
    return "\n" + text if text.startswith("-") else text


def tool_target(params: object) -> str:
    """What a tool call works on, in a few words: a file name, a command, a pattern."""
    if not isinstance(params, dict):
        return ""
    for key in ("file_path", "path", "notebook_path", "absolute_path", "dir_path"):
        value = params.get(key)
        if isinstance(value, str) and value:
            return Path(value).name or value
    for key in ("command", "pattern", "query", "url", "description", "prompt"):
        value = params.get(key)
        if isinstance(value, str) and value:
            return ev.shorten(value, 80)
    return ""


def text_of(value: object) -> str:
    """`value` if it is a string, else an empty string."""
    return value if isinstance(value, str) else ""


def dict_of(value: object) -> dict[str, Any]:
    """`value` if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def list_of(value: object) -> list[Any]:
    """`value` if it is a JSON array, else an empty one."""
    return value if isinstance(value, list) else []


def int_of(value: object) -> int | None:
    """`value` as an int when it is a number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)
