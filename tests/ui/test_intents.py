"""Free text to intents (only when clear), and the figures the menu takes from past sessions."""

from __future__ import annotations

from pathlib import Path

from orchestrator_tui.engine.learning import PlanForecast
from orchestrator_tui.engine.shipped import default_workflow
from orchestrator_tui.engine.workflows import read_workflow
from orchestrator_tui.store.queries import SessionRow
from orchestrator_tui.ui.format import agent_bar
from orchestrator_tui.ui.intents import (
    estimate_text,
    favourite_intents,
    forecast_estimate,
    intent_history,
    match_intent,
    recent_intents,
)

INTENTS = read_workflow(Path(default_workflow())).intents


def session(intent: str, state: str = "COMPLETED", start: float = 0.0,
            seconds: float | None = 10.0) -> SessionRow:
    finished = start + seconds if seconds is not None else None
    return SessionRow(f"sess-{intent}-{start}", intent, "wf", "ws", state, "{}", 4, None, None,
                      start, start, finished)


def test_exact_names_examples_and_clear_keywords_match() -> None:
    assert match_intent("ANALYZE", INTENTS).intent == "analyze"
    assert match_intent("Fix the failing tests!", INTENTS).reason == "one of its examples"
    found = match_intent("can you do some analysis of this", INTENTS)
    assert (found.intent, found.reason) == ("analyze", "keyword “analysis”")
    assert match_intent("fixing stuff", INTENTS).intent == "fix"
    assert match_intent("documentation please", INTENTS).intent == "document"


def test_unclear_text_matches_nothing_and_says_why() -> None:
    none = match_intent("make me a sandwich", INTENTS)
    assert none.intent is None and none.reason == "cannot tell which intent this is"
    assert set(none.candidates) == set(INTENTS)
    both = match_intent("fix and deploy", INTENTS)
    assert both.intent is None and both.candidates == ("deploy", "fix")
    assert match_intent("   ", INTENTS).intent is None
    assert match_intent("prefix", INTENTS).intent is None


def test_recent_and_favourite_intents_come_from_sessions() -> None:
    rows = [session("fix", start=5), session("analyze", start=4), session("fix", start=3),
            session("build", start=2), session("report", start=1)]
    assert recent_intents(rows) == ["fix", "analyze", "build"]
    assert favourite_intents(rows)[0] == ("fix", 2)
    assert recent_intents([]) == [] and favourite_intents([]) == []


def test_estimates_use_completed_runs_only_or_say_no_history() -> None:
    rows = [session("fix", seconds=10), session("fix", seconds=30, start=1),
            session("fix", "FAILED", start=2, seconds=2), session("fix", "EXECUTING", start=3,
                                                                  seconds=None)]
    history = intent_history(rows, "fix")
    assert (history.finished, history.completed, history.median_seconds) == (3, 2, 20.0)
    assert history.success_rate == 2 / 3
    assert estimate_text(history) == "~20.0 s (median of 2 completed runs)"
    assert estimate_text(intent_history(rows, "build")) == "no history yet"
    assert estimate_text(None) == "no history yet"


def test_the_learned_forecast_as_text() -> None:
    def forecast(eta: float | None) -> PlanForecast:
        return PlanForecast("fix", 4, [], 6, 0.8, eta, None if eta is None else eta / 2,
                            None if eta is None else eta * 2, None, 0, None, None)
    assert forecast_estimate(forecast(10.0)) == "~10.0 s (80%: 5.0 s to 20.0 s, learned)"
    assert forecast_estimate(forecast(None)) is None  # a task without an estimate yet
    assert forecast_estimate(None) is None


def test_agent_bars_never_claim_a_percentage() -> None:
    assert agent_bar("succeeded", 3.0) == "█" * 10
    assert agent_bar("ready", 0.0) == "░" * 10
    moving = {agent_bar("running", float(t)) for t in range(20)}
    assert len(moving) > 3 and all(bar.count("█") == 3 for bar in moving)
