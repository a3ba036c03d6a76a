"""The base of the top-level screens: header, body, footer, and the focused session's snapshot
handed down by the app's timer."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.app import ComposeResult
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Footer, Header

from orchestrator_tui.engine.events import Snapshot

if TYPE_CHECKING:
    from orchestrator_tui.ui.app import OrchestratorApp


class ModeScreen(Screen[None]):
    """A top-level screen (one per mode) that the app's timer feeds with snapshots."""

    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (32, "-tall")]
    snapshot: reactive[Snapshot | None] = reactive(None, init=False, repaint=False)
    """The focused session at the app's last tick; set only while this screen is active."""

    def __init__(self) -> None:
        super().__init__()
        self._ready = False

    @property
    def orchestrator(self) -> OrchestratorApp:
        """The app, typed."""
        return cast("OrchestratorApp", self.app)

    def compose(self) -> ComposeResult:
        yield Header(icon="◆")
        yield from self.compose_body()
        yield Footer(compact=True, show_command_palette=False)

    def compose_body(self) -> ComposeResult:
        """The screen's own widgets, between the header and the footer."""
        yield from ()

    @property
    def ready(self) -> bool:
        """Whether the screen's widgets are mounted (a first resume can come before)."""
        return self._ready

    def on_mount(self) -> None:
        """Runs after a subclass's own `on_mount` (Textual calls each class's handler)."""
        self._ready = True
        self._resumed()

    def on_screen_resume(self) -> None:
        if self.ready:
            self._resumed()

    def _resumed(self) -> None:
        latest = self.orchestrator.feed.latest
        if latest is not None and latest is not self.snapshot:
            self.snapshot = latest
        self.refresh_bindings()
        self.refresh_data()

    def refresh_data(self) -> None:
        """Reload what the screen reads from the database (on resume, or focus change)."""
