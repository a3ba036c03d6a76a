"""The menu: quick actions from past sessions, the eight operations on keys 1-8, the advanced
options (pause, resume, learning insights, settings) and a free-text request."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from orchestrator_tui.core.errors import OrchestratorError
from orchestrator_tui.core.models import Workflow
from orchestrator_tui.core.plan import Plan
from orchestrator_tui.core.predict import Predictor
from orchestrator_tui.engine.events import Snapshot
from orchestrator_tui.engine.learning import (
    PlanForecast,
    forecast,
    load_predictor,
    parallel_limit_of,
    remember_intent_choice,
)
from orchestrator_tui.store import queries
from orchestrator_tui.store.learning import intent_choices
from orchestrator_tui.store.queries import SessionRow
from orchestrator_tui.ui import messages as msg
from orchestrator_tui.ui.intents import (
    STANDARD_INTENTS,
    IntentModel,
    estimate_text,
    favourite_intents,
    forecast_estimate,
    intent_history,
    recent_intents,
    recognise,
    train_intents,
)
from orchestrator_tui.ui.screens.base import ModeScreen

ICONS = dict(zip(STANDARD_INTENTS, ("🔍", "🔨", "🔬", "📚", "🔧", "🎨", "🚀", "📊"), strict=True))
ADVANCED = (("pause", "P", "‖", "PAUSE", "stop the running agents where they are"),
            ("resume", "R", "▶", "RESUME", "continue the paused session"),
            ("learn", "L", "📈", "LEARN", "learning insights: past sessions and their tasks"),
            ("settings", "S", "⚙", "SETTINGS", "parallel limit, theme, default runner"))


class MenuScreen(ModeScreen):
    """What would you like me to do? The spec's menu, keys and all."""

    BINDINGS: ClassVar[list[BindingType]] = [
        *(Binding(str(n), f"operation({n})", f"Start {name.upper()}", show=False)
          for n, name in enumerate(STANDARD_INTENTS, start=1)),
        Binding("p,P", "advanced('pause')", "Pause"),
        Binding("r,R", "advanced('resume')", "Resume"),
        Binding("l,L", "advanced('learn')", "Learn"),
        Binding("s,S", "advanced('settings')", "Settings"),
        Binding("i,I", "app.go('insights')", "Insights", show=False),
        Binding("tab", "describe", "Describe what you need", show=False),
        Binding("escape", "leave_input", "Back to the list", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.sessions: list[SessionRow] = []
        self._shown_workflow: Workflow | None = None
        self._confirmed: list[tuple[str, str]] = []
        self._model: IntentModel | None = None
        self._model_of: Workflow | None = None
        self._history: tuple[Predictor, int, int] | None = None
        """The duration predictor, its sample count and the parallel limit (once read)."""
        self._forecasts: dict[str, PlanForecast | None] = {}
        self._forecasts_of: Workflow | None = None

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="menu"):
            yield Static("🎯 What would you like me to do?", id="question")
            yield Label("QUICK ACTIONS (from your past sessions):", classes="heading")
            yield Static("  ⚡ Recent: none yet", id="recent")
            yield Static("  ⭐ Favorites: none yet", id="favourites")
            yield Label("STANDARD OPERATIONS:", classes="heading")
            yield OptionList(id="operations", compact=True)
            yield Input(placeholder="Or describe what you need (Tab to type, Enter to run)…",
                        id="describe")
            yield Static("💡 Confidence: no history yet | ⏱ Est: no history yet", id="hint")

    def on_mount(self) -> None:
        self.query_one("#operations", OptionList).focus()
        self._fill_operations()

    def refresh_data(self) -> None:
        self._fill_operations()
        self.orchestrator.work(self._load_sessions, group="menu",
                               description="read recent sessions")

    async def _load_sessions(self) -> None:
        conn = await self.orchestrator.reader.get()
        self.sessions = await queries.list_sessions(conn, limit=500) if conn else []
        confirmed = await intent_choices(conn) if conn else []
        if conn:
            predictor, samples = await load_predictor(conn)
            self._history = predictor, samples, await parallel_limit_of(conn)
            self._forecasts = {}
        if confirmed != self._confirmed:
            self._confirmed, self._model = confirmed, None
        recent = recent_intents(self.sessions)
        favourites = favourite_intents(self.sessions)
        self.query_one("#recent", Static).update(Text(
            "  ⚡ Recent: " + (", ".join(recent) if recent else "none yet")))
        self.query_one("#favourites", Static).update(Text(
            "  ⭐ Favorites: " + (", ".join(f"{name} ({runs} run{'s' if runs != 1 else ''})"
                                   for name, runs in favourites)
                                 if favourites else "none yet")))
        self._update_hint()

    # ----- operations --------------------------------------------------------------------

    def _fill_operations(self) -> None:
        workflow = self.orchestrator.workflow
        if workflow is self._shown_workflow and workflow is not None:
            return
        self._shown_workflow = workflow
        options = self.query_one("#operations", OptionList)
        options.clear_options()
        if workflow is None:
            error = self.orchestrator.workflow_error
            options.add_option(Option(Text(error or "reading the workflow…"), disabled=True))
        intents = workflow.intents if workflow is not None else {}
        for number, name in enumerate(STANDARD_INTENTS, start=1):
            spec = intents.get(name)
            text = spec.description if spec else "not in this workflow"
            options.add_option(Option(Text(f"{number}. {ICONS[name]} {name.upper()} - {text}"),
                                      id=name, disabled=spec is None))
        for name, spec in intents.items():
            if name not in STANDARD_INTENTS:
                options.add_option(Option(Text(f"   · {name.upper()} - {spec.description}"),
                                          id=name))
        options.add_option(Option(Text("ADVANCED OPTIONS:", style="bold"), disabled=True,
                                  id="advanced-heading"))
        for ident, key, icon, name, text in ADVANCED:
            options.add_option(Option(Text(f"{key}. {icon} {name} - {text}"), id=f"+{ident}"))
        options.highlighted = next(
            (i for i, option in enumerate(options.options) if not option.disabled), 0)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Pause only while the focused session executes, resume only while it is paused."""
        if action == "advanced" and parameters and parameters[0] in ("pause", "resume"):
            state = self.orchestrator.feed.state
            return state == ("EXECUTING" if parameters[0] == "pause" else "PAUSED")
        return True

    def watch_snapshot(self, old: Snapshot | None, snap: Snapshot | None) -> None:
        if old is None or snap is None or old.state != snap.state:
            self.refresh_bindings()

    def action_operation(self, number: int) -> None:
        """Start the numbered standard operation."""
        self._start(STANDARD_INTENTS[number - 1], f"key {number}")

    def _start(self, intent: str, why: str) -> None:
        workflow = self.orchestrator.workflow
        if workflow is None or intent not in workflow.intents:
            self.notify(f"{intent} is not an intent of {self.orchestrator.workflow_file.name}.",
                        severity="warning", markup=False)
            return
        typed = self.query_one("#describe", Input)
        if typed.value.strip():  # starting an intent after typing confirms (or corrects) it
            self._learn(typed.value, intent)
            typed.value = ""
        self.post_message(msg.StartIntent(intent, why))

    def _learn(self, phrase: str, intent: str) -> None:
        """Remember that `phrase` meant `intent`, for the matcher from now on."""
        self._confirmed = [*self._confirmed, (" ".join(phrase.split()), intent)]
        self._model = None
        db_path = self.orchestrator.db_path

        async def store() -> None:
            await remember_intent_choice(db_path, phrase, intent)

        self.orchestrator.work(store, group="menu-learn", description="remember a choice")

    def intent_model(self) -> IntentModel | None:
        """The matcher's learned model for the current workflow (trained on first use)."""
        workflow = self.orchestrator.workflow
        if workflow is None:
            return None
        if self._model is None or self._model_of is not workflow:
            self._model = train_intents(workflow.intents, self._confirmed)
            self._model_of = workflow
        return self._model

    def action_advanced(self, what: str) -> None:
        """Pause, resume, learning insights or settings."""
        if what in ("pause", "resume"):
            self.post_message(msg.SessionControl(what))
        elif what == "learn":
            self.orchestrator.action_go("insights")
        else:
            from orchestrator_tui.ui.screens.settings import SettingsScreen

            self.app.push_screen(SettingsScreen())

    @on(OptionList.OptionSelected, "#operations")
    def _operation_chosen(self, event: OptionList.OptionSelected) -> None:
        ident = event.option.id or ""
        if ident.startswith("+"):
            self.action_advanced(ident[1:])
        elif ident:
            self._start(ident, "chosen from the menu")

    @on(OptionList.OptionHighlighted, "#operations")
    def _operation_highlighted(self) -> None:
        self._update_hint()

    # ----- free text ---------------------------------------------------------------------

    def action_describe(self) -> None:
        """Type what you need in your own words."""
        self.query_one("#describe", Input).focus()

    def action_leave_input(self) -> None:
        """Leave the text field for the list of operations."""
        self.query_one("#operations", OptionList).focus()

    @on(Input.Changed, "#describe")
    def _typed(self) -> None:
        self._update_hint()

    @on(Input.Submitted, "#describe")
    def _described(self, event: Input.Submitted) -> None:
        workflow = self.orchestrator.workflow
        if workflow is None:
            return
        found = recognise(event.value, workflow.intents, self.intent_model())
        if found.intent is None:
            names = ", ".join(found.candidates or tuple(workflow.intents))
            self.notify(f"Could not tell which intent you mean ({found.reason}). "
                        f"Choose one of: {names}.", severity="warning", markup=False,
                        timeout=8)
            return
        self._start(found.intent, found.reason)

    def _forecast(self, intent: str | None) -> PlanForecast | None:
        """The intent's plan forecast from recorded durations (None without history)."""
        workflow = self.orchestrator.workflow
        if intent is None or workflow is None or intent not in workflow.intents \
                or self._history is None or not self._history[1]:
            return None
        if workflow is not self._forecasts_of:
            self._forecasts, self._forecasts_of = {}, workflow
        if intent not in self._forecasts:
            predictor, samples, limit = self._history
            try:
                plan = Plan(workflow.intents[intent])
            except OrchestratorError:
                plan = None
            self._forecasts[intent] = None if plan is None else \
                forecast(plan, predictor, samples, {}, limit)
        return self._forecasts[intent]

    def _update_hint(self) -> None:
        workflow = self.orchestrator.workflow
        text = self.query_one("#describe", Input).value
        intent, match, chance = None, "", None
        if workflow is not None and text.strip():
            found = recognise(text, workflow.intents, self.intent_model())
            intent, chance = found.intent, found.probability
            match = f"Intent: {intent} ({found.reason})" if intent else found.reason
        elif workflow is not None:
            option = self.query_one("#operations", OptionList).highlighted_option
            ident = option.id if option is not None else None
            intent = ident if ident and ident in workflow.intents else None
        history = intent_history(self.sessions, intent) if intent else None
        confidence = f"Confidence: {chance:.0%}" if chance is not None else \
            "Confidence: no history yet"
        lead = f"💡 {match} · {confidence}" if match else f"💡 {confidence}"
        estimate = forecast_estimate(self._forecast(intent)) or estimate_text(history)
        line = f"{lead} | ⏱ Est: {estimate}"
        self.query_one("#hint", Static).update(Text(line))
