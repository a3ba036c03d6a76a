"""What every runner takes (a `Job`), hands back (a `Handle`) and finally reports (`Outcome`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from orchestrator_tui.engine.runners.agent_events import AgentEvent


@dataclass(frozen=True, slots=True)
class Job:
    """Everything a runner needs to start one attempt of one task."""

    session_id: str
    task_id: str
    attempt: int
    workspace: Path
    argv: tuple[str, ...] = ()
    target: str | None = None
    """`module:function` for the python runner."""
    args: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    """Extra environment variables, added to the engine's own."""
    timeout: float | None = None
    output_cap: int = 256 * 1024
    """Bytes of stdout and of stderr kept (the tail); the rest is counted, not stored."""
    stdin: bytes | None = None
    input_bytes: int | None = None
    """The size of what the task is given, where known (an agent's task prompt, without the
    agent's own instructions, which are the same every time), for learning."""
    on_event: Callable[[AgentEvent], None] | None = None
    """Called on the event loop with each event an agent CLI reports (stream runners)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """How an attempt ended."""

    succeeded: bool
    exit_code: int | None = None
    result: str = ""
    """A one-line summary for people: the agent's SUMMARY line or its last output line."""
    error: str = ""
    stdout: str = ""
    stderr: str = ""
    output_bytes: int = 0
    timed_out: bool = False
    cancelled: bool = False
    lost: bool = False
    """The machine running the attempt went away (a Ray node died): like a crash, an
    idempotent task runs again elsewhere and any other waits as `interrupted`."""
    runner: str | None = None
    """The agent CLI that ran the attempt (`claude`, `codex`, `gemini`); None for commands."""
    agent_session: str | None = None
    """The CLI's own session id, to resume it."""
    tokens_in: int | None = None
    tokens_out: int | None = None
    cost_usd: float | None = None
    turns: int | None = None


class Handle(Protocol):
    """A started attempt."""

    @property
    def pid(self) -> int | None:
        """The process (and process group) id, or None for in-process work."""

    @property
    def process_start(self) -> float | None:
        """The process's start time (seconds since the epoch), to recognise it later."""

    def pause(self) -> bool:
        """Stop the attempt's processes (SIGSTOP); False when it cannot be paused."""

    def resume(self) -> bool:
        """Continue stopped processes (SIGCONT)."""

    async def terminate(self, grace: float) -> None:
        """SIGTERM, wait up to `grace` seconds, then SIGKILL whatever is left."""

    async def wait(self) -> Outcome:
        """Wait for the end of the attempt."""


class Runner(Protocol):
    """Starts jobs of one kind."""

    async def start(self, job: Job) -> Handle:
        """Start the job; return once its process exists (so its pid can be recorded)."""
