"""What an agent CLI reports while it works, as one small family of events.

Each CLI's parser (claude, codex, gemini) turns its own JSON lines into these; the engine
turns them into journal notes and the attempt's row. `describe` is the one-line text a
person reads in the message log.
"""

from __future__ import annotations

from dataclasses import dataclass

NOTE_WIDTH = 200
"""Characters of an event's text kept in its journal note."""


@dataclass(frozen=True, slots=True)
class Started:
    """The CLI opened its session."""

    session_id: str | None = None
    model: str | None = None
    tools: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Output:
    """Text the agent wrote for people (or a line that was not JSON)."""

    text: str


@dataclass(frozen=True, slots=True)
class Progress:
    """A step of the work: a tool used, a command run, a file changed."""

    text: str


@dataclass(frozen=True, slots=True)
class Usage:
    """Totals so far (each report replaces the one before); None where not reported."""

    tokens_in: int | None = None
    """Every input token, cached ones included."""
    tokens_out: int | None = None
    cost_usd: float | None = None
    turns: int | None = None


@dataclass(frozen=True, slots=True)
class Result:
    """The end of the work as the CLI reports it; it decides success when present."""

    text: str
    is_error: bool = False
    duration_ms: int | None = None
    turns: int | None = None
    session_id: str | None = None


@dataclass(frozen=True, slots=True)
class Error:
    """A problem the CLI reported (a warning, or the reason of a failure)."""

    text: str


AgentEvent = Started | Output | Progress | Usage | Result | Error


def shorten(text: str, width: int = NOTE_WIDTH) -> str:
    """`text` on one line, cut to `width` characters."""
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def describe(runner: str, event: AgentEvent) -> str:
    """The journal note of one event, e.g. `claude: using Read on app.py`."""
    if isinstance(event, Started):
        parts = [f"model {event.model}" if event.model else "",
                 f"{len(event.tools)} tools" if event.tools else "",
                 f"session {event.session_id}" if event.session_id else ""]
        details = ", ".join(part for part in parts if part)
        return f"{runner}: started" + (f" ({details})" if details else "")
    if isinstance(event, Usage):
        return f"{runner}: {usage_text(event)}"
    if isinstance(event, Result):
        took = f" in {event.duration_ms / 1000:.1f} s" if event.duration_ms is not None else ""
        if event.is_error:
            return f"{runner}: failed{took}: {shorten(event.text) or 'no reason given'}"
        return f"{runner}: done{took}"  # its text was the last output already
    if isinstance(event, Error):
        return f"{runner}: error: {shorten(event.text)}"
    return f"{runner}: {shorten(event.text)}"


def usage_text(usage: Usage) -> str:
    """Tokens, cost and turns in words, e.g. `1,234 tokens in, 56 out, $0.0123, 3 turns`."""
    parts = []
    if usage.tokens_in is not None:
        parts.append(f"{usage.tokens_in:,} tokens in")
    if usage.tokens_out is not None:
        parts.append(f"{usage.tokens_out:,} out")
    if usage.cost_usd is not None:
        parts.append(f"${usage.cost_usd:.4f}")
    if usage.turns is not None:
        parts.append(f"{usage.turns} turn" + ("" if usage.turns == 1 else "s"))
    return ", ".join(parts) or "no usage reported"
