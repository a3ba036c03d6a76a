"""Sessions, histories and plans as plain text and JSON-able data, for the CLI and the app."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from orchestrator_tui.core.plan import Plan
from orchestrator_tui.core.remaining import Remaining
from orchestrator_tui.store.queries import SessionRow, TransitionRow

STATE_MARKS = {
    "pending": "·", "ready": "○", "running": "▶", "succeeded": "✓", "failed": "✗",
    "skipped": "↷", "cancelled": "■", "paused": "‖", "retrying": "↻", "interrupted": "!",
}
"""A mark per task state, always shown beside the state's name (never colour alone)."""


def stamp(at: float | None) -> str:
    """A local time stamp, or '-'."""
    if at is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at)) + f".{int(at * 1000) % 1000:03d}"


def seconds(value: float | None) -> str:
    """A duration for people: 850 ms, 12.3 s, 4 min 05 s."""
    if value is None:
        return "-"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 60:
        return f"{value:.1f} s"
    minutes, rest = divmod(int(value), 60)
    return f"{minutes} min {rest:02d} s"


def clock(value: float) -> str:
    """A short duration: 45s, 3m 10s, 1h 05m."""
    whole = round(value)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    return f"{whole // 3600}h {whole % 3600 // 60:02d}m"


def remaining_text(remaining: Remaining | None) -> str:
    """`~3m 10s (80%: 2m 05s - 4m 40s)`, or `no data yet`."""
    if remaining is None:
        return "no data yet"
    return (f"~{clock(remaining.seconds)} ({remaining.coverage:.0%}: "
            f"{clock(remaining.low)} - {clock(remaining.high)})")


def remaining_line(remaining: Remaining | None) -> str:
    """`Remaining ~3m 10s (80%: 2m 05s - 4m 40s)`, or `Remaining: no data yet`."""
    return f"Remaining {remaining_text(remaining)}" if remaining is not None \
        else "Remaining: no data yet"


def session_summary(session: SessionRow, counts: Mapping[str, int],
                    engine_alive: bool) -> dict[str, Any]:
    """The fields of `state current` (`plan`: the start of the plan's hash, the same for
    every session of the same tasks)."""
    end = session.finished_at or time.time()
    return {
        "session": session.id, "intent": session.intent, "state": session.state,
        "workspace": session.workspace, "workflow": session.workflow,
        "plan": session.plan_key[:12],
        "created": stamp(session.created_at), "updated": stamp(session.updated_at),
        "duration": seconds(end - session.created_at), "parallel_limit": session.parallel_limit,
        "engine": "running" if engine_alive else "not running", "tasks": dict(counts),
    }


def history_rows(rows: list[TransitionRow]) -> list[dict[str, Any]]:
    """The rows of `state history`."""
    return [{"at": stamp(r.at), "what": r.task_id or "session", "from": r.from_state,
             "to": r.to_state, "reason": r.reason} for r in rows]


def graph_text(plan: Plan, states: Mapping[str, str], *,
               width: int = 6) -> tuple[str, dict[str, Any]]:
    """The plan by levels, each task with its state mark; the critical path starred.

    Levels with more than `width` tasks are collapsed into counts per state.
    """
    critical = set(plan.critical_path())
    levels: dict[int, list[str]] = {}
    for task_id in plan.order:
        levels.setdefault(plan.levels[task_id], []).append(task_id)
    lines = []
    for level, members in sorted(levels.items()):
        if len(members) > width:
            tally: dict[str, int] = {}
            for task_id in members:
                tally[states.get(task_id, "pending")] = tally.get(states.get(task_id, "pending"),
                                                                  0) + 1
            body = ", ".join(f"{STATE_MARKS.get(s, '?')} {n} {s}" for s, n in sorted(tally.items()))
            lines.append(f"level {level} ({len(members)} tasks): {body}")
            continue
        cells = []
        for task_id in members:
            state = states.get(task_id, "pending")
            deps = plan.dependencies(task_id)
            after = f" <- {', '.join(deps)}" if deps and len(deps) <= 3 else \
                f" <- {len(deps)} tasks" if deps else ""
            star = "*" if task_id in critical else ""
            cells.append(f"{STATE_MARKS.get(state, '?')} {task_id}{star} [{state}]{after}")
        lines.append(f"level {level}: " + "; ".join(cells))
    lines.append("* on the critical path")
    data = {"levels": [{"level": lv, "tasks": [{"id": t, "state": states.get(t, "pending"),
                                                "depends_on": plan.dependencies(t),
                                                "critical": t in critical} for t in members]}
                       for lv, members in sorted(levels.items())],
            "critical_path": plan.critical_path()}
    return "\n".join(lines), data
