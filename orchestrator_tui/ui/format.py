"""Marks, words, bars and colours for states: every state shows a mark and its name."""

from __future__ import annotations

from collections.abc import Mapping

from rich.text import Text
from textual.visual import VisualType
from textual.widgets import Static

from orchestrator_tui.views import STATE_MARKS, seconds

SESSION_MARKS = {
    "IDLE": "·", "PLANNING": "…", "EXECUTING": "▶", "PAUSED": "‖", "COMPLETED": "✓",
    "FAILED": "✗", "ABORTED": "■", "RECOVERING": "↻",
}
"""A mark per session state, shown beside the state's name."""

FINISHED = ("succeeded", "failed", "skipped", "cancelled")
"""Task states counted as done by the progress bar."""

TASK_ROLES = {
    "succeeded": "success", "failed": "error", "running": "primary", "paused": "warning",
    "retrying": "warning", "interrupted": "error", "cancelled": "error", "skipped": "dim",
    "ready": "foreground", "pending": "dim",
}
SESSION_ROLES = {
    "EXECUTING": "primary", "PAUSED": "warning", "COMPLETED": "success", "FAILED": "error",
    "ABORTED": "error", "RECOVERING": "warning", "PLANNING": "foreground", "IDLE": "dim",
}
"""Which theme colour goes with a state (always with its mark and word as well)."""

PULSE = 3
"""Width of the moving block of an indeterminate bar."""


def task_mark(state: str) -> str:
    """The mark of a task state."""
    return STATE_MARKS.get(state, "?")


def session_mark(state: str) -> str:
    """The mark of a session state."""
    return SESSION_MARKS.get(state, "?")


def styled_state(state: str, colours: Mapping[str, str], *, session: bool = False) -> Text:
    """`mark word` in the state's colour, e.g. `▶ running`."""
    mark = session_mark(state) if session else task_mark(state)
    role = (SESSION_ROLES if session else TASK_ROLES).get(state, "foreground")
    return Text(f"{mark} {state}", style=colours.get(role, ""))


def done_count(counts: Mapping[str, int]) -> int:
    """How many tasks are finished, whatever the outcome."""
    return sum(counts.get(state, 0) for state in FINISHED)


def counts_line(counts: Mapping[str, int]) -> str:
    """`✓ 3 succeeded · ▶ 2 running · · 5 pending`, in a fixed state order."""
    order = ("running", "paused", "retrying", "ready", "pending", "succeeded", "failed",
             "skipped", "cancelled", "interrupted")
    parts = [f"{task_mark(s)} {counts[s]} {s}" for s in order if counts.get(s)]
    return " · ".join(parts) if parts else "no tasks"


def agent_bar(state: str, elapsed: float, width: int = 10) -> str:
    """A bar for one agent: a block moving one cell a second while it runs (no percentage is
    known), full when it has finished, empty while queued or paused."""
    if state in FINISHED:
        return "█" * width
    if state in ("pending", "ready", "paused"):
        return "░" * width
    travel = width - PULSE
    step = int(elapsed) % (2 * travel) if travel > 0 else 0
    start = step if step <= travel else 2 * travel - step
    return "░" * start + "█" * PULSE + "░" * (width - start - PULSE)


def elapsed_text(value: float | None) -> str:
    """An elapsed time for a table cell, in whole seconds (a cell that changes once a second
    costs a quarter of one that changes at every snapshot)."""
    if value is None:
        return "-"
    value = max(0.0, value)
    return f"{int(value)} s" if value < 60 else seconds(value)


def theme_colours(variables: Mapping[str, str]) -> dict[str, str]:
    """Rich styles for the state roles, from the app's CSS variables (opaque colours only)."""
    colours = {"dim": "dim"}
    for role in ("success", "error", "warning", "primary", "foreground"):
        value = variables.get(role, "")
        if len(value) == 7 and value.startswith("#"):
            colours[role] = value
    return colours


def show(widget: Static, content: VisualType) -> None:
    """Update a fixed-size Static only when what it shows changes (a repaint costs the same
    however little changed, and needs no new layout)."""
    if widget.content != content:
        widget.update(content, layout=False)
