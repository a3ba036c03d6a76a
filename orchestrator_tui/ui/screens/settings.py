"""Settings: the parallel limit, the theme and the default runner, stored in the database's
`settings` table through the engine's settings API. A new parallel limit also applies at once
to the session this app runs."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, ClassVar, cast

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, Horizontal, Vertical
from textual.screen import ModalScreen
from textual.validation import Integer
from textual.widgets import Button, Input, Label, Select, Static

from orchestrator_tui.core.errors import OrchestratorError
from orchestrator_tui.engine.session import DEFAULT_PARALLEL_LIMIT
from orchestrator_tui.ui import messages as msg
from orchestrator_tui.ui.settings_store import RUNNERS, save_settings

if TYPE_CHECKING:
    from orchestrator_tui.ui.app import OrchestratorApp


class SettingsScreen(ModalScreen[None]):
    """Edit and save the user's preferences."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Cancel"),
        Binding("ctrl+s", "save", "Save"),
    ]

    @property
    def orchestrator(self) -> OrchestratorApp:
        """The app, typed."""
        return cast("OrchestratorApp", self.app)

    def compose(self) -> ComposeResult:
        app = self.orchestrator
        stored = app.settings
        limit = stored.get("parallel_limit", str(DEFAULT_PARALLEL_LIMIT))
        runner = stored.get("default_runner", "auto")
        themes = sorted(app.available_themes)
        with Vertical(id="settings", classes="dialog"):
            with Grid(id="settings-grid"):
                yield Label("Parallel limit (agents at once)")
                yield Input(limit, id="parallel-limit", type="integer",
                            validators=[Integer(minimum=1, maximum=256)])
                yield Label("Theme")
                yield Select([(name, name) for name in themes], value=app.theme,
                             allow_blank=False, id="theme")
                yield Label("Default runner")
                yield Select([(name, name) for name in RUNNERS],
                             value=runner if runner in RUNNERS else "auto", allow_blank=False,
                             id="runner")
            yield Static("", id="settings-note")
            with Horizontal(classes="buttons"):
                yield Button("Save (Ctrl+S)", id="save", variant="primary")
                yield Button("Cancel (Esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#settings", Vertical).border_title = "SETTINGS"
        self.query_one("#parallel-limit", Input).focus()

    def _values(self) -> dict[str, str]:
        return {"parallel_limit": self.query_one("#parallel-limit", Input).value.strip(),
                "theme": str(self.query_one("#theme", Select).value),
                "default_runner": str(self.query_one("#runner", Select).value)}

    def action_close(self) -> None:
        """Close without saving."""
        self.dismiss(None)

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#save")
    @on(Input.Submitted, "#parallel-limit")
    def action_save(self) -> None:
        """Validate and store the changed settings."""
        limit = self.query_one("#parallel-limit", Input)
        result = limit.validate(limit.value)
        if result is not None and not result.is_valid:
            self.query_one("#settings-note", Static).update(
                "Parallel limit: a whole number from 1 to 256.")
            return
        values = self._values()
        app = self.orchestrator
        current = {"parallel_limit": app.settings.get("parallel_limit",
                                                      str(DEFAULT_PARALLEL_LIMIT)),
                   "theme": app.theme, "default_runner": app.settings.get("default_runner",
                                                                          "auto")}
        changed = {key for key, value in values.items() if value != current[key]}
        if not changed:
            self.dismiss(None)
            return
        app.work(partial(self._save, values, changed), group="settings",
                 description="save settings")

    async def _save(self, values: dict[str, str], changed: set[str]) -> None:
        app = self.orchestrator
        try:
            outcome = await save_settings(app.db_path, values, changed)
        except OrchestratorError as error:
            self.query_one("#settings-note", Static).update(f"Not saved: {error}")
            return
        app.post_message(msg.SettingsChanged({key: values[key] for key in changed}))
        app.notify(outcome.message, title="Settings", markup=False)
        self.dismiss(None)
