"""Help: the keys of the screen below, the keys that work everywhere, and every command."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

from orchestrator_tui.ui.grammar import command_specs

GENERIC = frozenset({"app.focus_next", "app.focus_previous", "screen.copy_text",
                     "focus_next", "focus_previous", "copy_text"})
"""Textual's own screen keys, left out of the help."""


def rows_text(rows: list[tuple[str, str]]) -> Text:
    """Two columns: the keys (or command) in bold, then what it does."""
    width = max((len(keys) for keys, _ in rows), default=0) + 2
    text = Text()
    for index, (keys, description) in enumerate(rows):
        if index:
            text.append("\n")
        text.append(f"  {keys:<{width}}", style="bold")
        text.append(description)
    return text


def _rows(bindings: list[BindingType], screen: Screen[object]) -> list[tuple[str, str]]:
    found: dict[str, tuple[str, list[str]]] = {}
    for binding in Binding.make_bindings(bindings):
        if not binding.description or binding.system or binding.action in GENERIC:
            continue
        _text, keys = found.setdefault(binding.action,
                                       (binding.tooltip or binding.description, []))
        shown = screen.app.get_key_display(binding)
        if shown not in keys:
            keys.append(shown)
    return [(" ".join(keys), description) for description, keys in found.values()]


def key_rows(screen: Screen[object]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Every key the screen defines, and the app's keys, as (keys, what they do)."""
    return _rows(type(screen).BINDINGS, screen), _rows(type(screen.app).BINDINGS, screen)


class HelpScreen(ModalScreen[None]):
    """What each key does here and everywhere, and the command grammar."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,Q,question_mark,h,H", "close", "Close"),
    ]

    def __init__(self, below: Screen[object]) -> None:
        super().__init__()
        self.below = below

    def compose(self) -> ComposeResult:
        own, everywhere = key_rows(self.below)
        commands = [(spec.usage, spec.help) for spec in command_specs()]
        with VerticalScroll(id="help", classes="dialog"):
            yield Static(Text("On this screen", style="underline"))
            yield Static(rows_text(own))
            yield Static(Text("Everywhere", style="underline"))
            yield Static(rows_text([*everywhere, ("^q", "Quit (as q)"),
                                    ("^p", "Command palette: the commands below, searchable")]))
            yield Static(Text("Commands (type / or : first; Ctrl+P lists them too)",
                              style="underline"))
            yield Static(rows_text(commands))
            yield Static(Text("Marks: · pending  ○ ready  ▶ running  ‖ paused  ↻ retrying  "
                              "✓ succeeded  ✗ failed  ↷ skipped  ■ cancelled  ! interrupted"))
            yield Static(Text("Esc closes this help.", style="dim"))

    def on_mount(self) -> None:
        self.query_one("#help", VerticalScroll).border_title = "HELP"

    def action_close(self) -> None:
        """Back to the screen below."""
        self.dismiss(None)
