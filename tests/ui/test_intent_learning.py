"""Intent recognition that learns from the choices the user confirms."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path

from textual.widgets import Input

from orchestrator_tui.engine.learning import remember_intent_choice
from orchestrator_tui.engine.shipped import default_workflow
from orchestrator_tui.engine.workflows import read_workflow
from orchestrator_tui.store.database import connect
from orchestrator_tui.store.learning import intent_choices
from orchestrator_tui.ui.app import OrchestratorApp
from orchestrator_tui.ui.intents import LEARNED_THRESHOLD, recognise, train_intents

from .conftest import text_of, until

INTENTS = read_workflow(Path(default_workflow())).intents
PHRASE = "tidy the flaky bits"
MakeApp = Callable[..., OrchestratorApp]


def test_a_new_phrase_is_recognised_after_two_confirmations() -> None:
    before = recognise(PHRASE, INTENTS, train_intents(INTENTS))
    assert before.intent is None
    learned = recognise(PHRASE, INTENTS, train_intents(INTENTS, [(PHRASE, "fix")] * 2))
    assert learned.intent == "fix" and learned.probability is not None
    assert learned.probability >= LEARNED_THRESHOLD
    similar = recognise("the bits are flaky", INTENTS,
                        train_intents(INTENTS, [(PHRASE, "fix")] * 2))
    assert similar.intent == "fix" and "learned" in similar.reason


def test_confirmed_choices_correct_a_keyword_match() -> None:
    text = "analyze and repair the parser"
    assert recognise(text, INTENTS, train_intents(INTENTS)).intent == "analyze"
    corrected = recognise(text, INTENTS, train_intents(INTENTS, [(text, "fix")] * 2))
    assert corrected.intent == "fix" and "2 times" in corrected.reason
    assert recognise("fix", INTENTS, train_intents(INTENTS, [("fix", "build")] * 3)).intent \
        == "fix"  # an exact intent name is never overridden
    shown = recognise("fix the failing tests", INTENTS, train_intents(INTENTS))
    assert shown.intent == "fix" and shown.probability is not None


def test_choices_are_stored_and_read_back(tmp_path: Path) -> None:
    db = tmp_path / "state.db"

    async def scenario() -> list[tuple[str, str]]:
        await remember_intent_choice(db, "  tidy   the flaky bits ", "fix")
        await remember_intent_choice(db, "   ", "fix")  # nothing typed: nothing learned
        conn = await connect(db)
        try:
            return await intent_choices(conn)
        finally:
            await conn.close()

    assert asyncio.run(scenario()) == [(PHRASE, "fix")]


async def test_the_menu_learns_a_phrase_the_user_corrects(make_app: MakeApp,
                                                          fast_workflow: Path,
                                                          db: Path) -> None:
    app = make_app(fast_workflow)
    phrase = "sort out the wobbly widgets"
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.workflow is not None)
        for round_ in range(2):
            await pilot.press("tab")
            field = app.screen.query_one("#describe", Input)
            field.value = phrase
            await pilot.press("escape", "5")  # not recognised: the user picks FIX instead
            await until(pilot, lambda: app.current_mode == "dashboard")
            await until(pilot, lambda r=round_: len(stored(db)) == r + 1)
            await pilot.press("m")
        await pilot.press("tab")
        app.screen.query_one("#describe", Input).value = phrase
        await until(pilot, lambda: "Intent: fix" in text_of(app, "#hint"))
        assert "Confidence: " in text_of(app, "#hint")
    assert stored(db) == [(phrase, "fix")] * 2


def stored(db: Path) -> list[tuple[str, str]]:
    try:
        with sqlite3.connect(db) as conn:
            return [tuple(row) for row in conn.execute(  # type: ignore[misc]
                "SELECT phrase, intent FROM intent_choices ORDER BY id")]
    except sqlite3.OperationalError:
        return []
