"""The dashboard's messages and predictions panels. Both show only recorded facts: the message
counts are the focused session's on the agents' bus, and predictions come from past sessions
or say so."""

from __future__ import annotations

from collections.abc import Mapping

from textual.widgets import Static

from orchestrator_tui.core.plan import Plan
from orchestrator_tui.core.remaining import Remaining
from orchestrator_tui.ui.format import show
from orchestrator_tui.ui.intents import IntentHistory
from orchestrator_tui.views import clock, remaining_line


def messages_text(counts: Mapping[str, int]) -> str:
    """The panel's three lines: pending (not yet acknowledged: waiting or delivered),
    processed (acknowledged), failed (handed back, or dead letters)."""
    pending = counts.get("pending", 0) + counts.get("delivered", 0)
    processed, dead = counts.get("acknowledged", 0), counts.get("dead_letter", 0)
    failed = counts.get("failed", 0) + dead
    total = sum(counts.values())
    head = "No messages yet." if not total else \
        f"{total} message{'s' if total > 1 else ''} in this session"
    return (f"{head}\nPending {pending} · Processed {processed}\n"
            f"Failed {failed}" + (f" ({dead} dead letter{'s' if dead > 1 else ''})"
                                  if dead else ""))


class MessagesPanel(Static):
    """Pending, processed and failed messages between agents (`messages_text`)."""

    def on_mount(self) -> None:
        self.update(messages_text({}))

    def show_counts(self, counts: Mapping[str, int]) -> None:
        """Show the focused session's messages by state."""
        show(self, messages_text(counts))


def success_text(history: IntentHistory | None) -> str:
    """How many past runs of the intent completed, or `no history yet`."""
    if history is None or history.success_rate is None:
        return "no history yet"
    return (f"{history.completed} of {history.finished} past runs completed "
            f"({history.success_rate:.0%})")


def longest_chain(plan: Plan | None) -> str:
    """The plan's longest dependency chain, counted in tasks (no durations are known)."""
    if plan is None or not len(plan):
        return "-"
    length = len(plan.critical_path())
    return f"{length} task{'s' if length > 1 else ''}"


def bottleneck_text(remaining: Remaining | None, plan: Plan | None) -> str:
    """The remaining critical path's biggest task, or the plan's longest chain without data."""
    if remaining is None or remaining.bottleneck is None:
        return f"no data yet (longest chain: {longest_chain(plan)})"
    left = remaining.bottleneck_seconds or 0.0
    return f"{remaining.bottleneck} (~{clock(left)} left, on the critical path)"


class PredictionsPanel(Static):
    """Time remaining, success so far and the bottleneck, from recorded history only."""

    def show(self, history: IntentHistory | None, remaining: Remaining | None, active: bool,
             plan: Plan | None) -> None:
        """Update from the intent's history, the live time remaining and the plan."""
        show(self, f"{remaining_line(remaining) if active else 'Remaining: -'}\n"
                   f"Success: {success_text(history)}\n"
                   f"Bottleneck: {bottleneck_text(remaining if active else None, plan)}")
