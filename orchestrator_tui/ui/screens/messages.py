"""Messages: the live log of the focused session (state changes and notes), filterable by kind,
task or agent, and text. A session not run by this app shows its recorded transitions.

New entries are announced with a `JournalAdvanced` message that replaces any older one still
queued, so a burst of entries costs one redraw; the log keeps at most `LOG_LINES` lines.
"""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Input, RichLog, Select, Static

from orchestrator_tui.engine.events import JournalEntry, Snapshot
from orchestrator_tui.ui.format import styled_state
from orchestrator_tui.ui.screens.base import ModeScreen
from orchestrator_tui.views import stamp

LOG_LINES = 5000
"""Lines kept by the log widget."""
BURST_LINES = 1000
"""Most lines written at one update; the rest of a larger burst is counted, not drawn."""
KINDS = ("all", "session", "task", "note")
TASK_WIDTH = 22
"""Task names are padded to this width so that states line up (narrower below WIDE)."""
WIDE = 110


def entry_line(entry: JournalEntry, colours: dict[str, str],
               task_width: int = TASK_WIDTH) -> Table:
    """One journal entry as a row: time, kind, task, then what happened (wrapped under
    itself when the terminal is narrow)."""
    what = Text()
    if entry.kind == "note":
        text = entry.text
        if entry.task_id and text.startswith(entry.task_id):
            text = text[len(entry.task_id):].lstrip(" :")
        what.append(text)
    else:
        session = entry.kind == "session"
        if entry.old:
            what.append_text(styled_state(entry.old, colours, session=session))
            what.append(" → ")
        if entry.new:
            what.append_text(styled_state(entry.new, colours, session=session))
        what.append(f"  {entry.text}")
    row = Table.grid(padding=(0, 1), expand=True)
    row.add_column(width=12, no_wrap=True, style="dim")
    row.add_column(width=7, no_wrap=True)
    row.add_column(width=task_width, no_wrap=True, overflow="ellipsis", style="bold")
    row.add_column(ratio=1)
    row.add_row(stamp(entry.at)[11:], entry.kind, entry.task_id or "", what)
    return row


class MessagesScreen(ModeScreen):
    """The journal of the focused session, with filters."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f,F", "filter", "Filter"),
        Binding("c,C", "clear_filters", "Clear"),
        Binding("escape", "leave_filter", "Leave filter", show=False),
    ]

    class JournalAdvanced(Message):
        """The journal has entries up to `seq`; a newer announcement replaces an older one."""

        def __init__(self, seq: int) -> None:
            super().__init__()
            self.seq = seq

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, MessagesScreen.JournalAdvanced)

    def __init__(self) -> None:
        super().__init__()
        self._rendered_seq = 0
        self._generation = -1
        self._shown = 0
        self._skipped = 0

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="filters"):
            yield Select([(kind, kind) for kind in KINDS], value="all", allow_blank=False,
                         id="kind-filter", compact=True)
            yield Input(placeholder="task or agent", id="task-filter", compact=True)
            yield Input(placeholder="text", id="text-filter", compact=True)
        yield RichLog(id="journal", max_lines=LOG_LINES, wrap=True, markup=False,
                      highlight=False, auto_scroll=True)
        yield Static("", id="journal-status")

    def on_mount(self) -> None:
        self.query_one("#journal", RichLog).focus()

    def refresh_data(self) -> None:
        self.orchestrator.want_journal()
        self.call_after_refresh(self._catch_up)  # once the log knows its width

    def watch_snapshot(self, snap: Snapshot | None) -> None:
        if snap is not None and snap.journal_seq > self._rendered_seq:
            self.post_message(self.JournalAdvanced(snap.journal_seq))

    def on_messages_screen_journal_advanced(self, _event: JournalAdvanced) -> None:
        self._catch_up()

    # ----- filters -----------------------------------------------------------------------

    def _matches(self) -> tuple[str, str, str]:
        return (str(self.query_one("#kind-filter", Select).value),
                self.query_one("#task-filter", Input).value.strip().lower(),
                self.query_one("#text-filter", Input).value.strip().lower())

    @staticmethod
    def _keep(entry: JournalEntry, kind: str, task: str, text: str) -> bool:
        if kind not in ("all", entry.kind):
            return False
        if task and task not in (entry.task_id or "").lower():
            return False
        if text:
            words = " ".join(filter(None, (entry.text, entry.old, entry.new))).lower()
            return text in words
        return True

    @on(Select.Changed, "#kind-filter")
    @on(Input.Changed, "#task-filter")
    @on(Input.Changed, "#text-filter")
    def _filters_changed(self) -> None:
        self._generation = -1
        self._catch_up()

    def action_filter(self) -> None:
        """Type a text filter."""
        self.query_one("#text-filter", Input).focus()

    def action_clear_filters(self) -> None:
        """Show every entry again."""
        self.query_one("#kind-filter", Select).value = "all"
        self.query_one("#task-filter", Input).value = ""
        self.query_one("#text-filter", Input).value = ""

    def action_leave_filter(self) -> None:
        """Back to the log."""
        self.query_one("#journal", RichLog).focus()

    # ----- drawing -----------------------------------------------------------------------

    def _catch_up(self) -> None:
        feed = self.orchestrator.feed
        journal = feed.journal
        log = self.query_one("#journal", RichLog)
        if journal.generation != self._generation:
            log.clear()
            self._generation, self._rendered_seq = journal.generation, 0
            self._shown = self._skipped = 0
        kind, task, text = self._matches()
        fresh = [entry for entry in journal.since(self._rendered_seq)
                 if self._keep(entry, kind, task, text)]
        self._rendered_seq = journal.seq
        if len(fresh) > BURST_LINES:
            self._skipped += len(fresh) - BURST_LINES
            log.write(Text(f"… {len(fresh) - BURST_LINES} earlier entries not drawn "
                           "(/state history --tasks lists them all)", style="dim"))
            fresh = fresh[-BURST_LINES:]
        colours = self.orchestrator.colours
        task_width = TASK_WIDTH if log.size.width >= WIDE else TASK_WIDTH * 2 // 3
        for entry in fresh:
            log.write(entry_line(entry, colours, task_width), expand=True)
        self._shown += len(fresh)
        self._status()

    def _status(self) -> None:
        feed = self.orchestrator.feed
        journal = feed.journal
        if feed.session_id is None:
            where = "no session yet: start one from the menu (m)"
        elif feed.live is not None:
            where = f"live log of {feed.session_id}"
        else:
            where = f"recorded transitions of {feed.session_id} (not run by this app)"
        parts = [where, f"{len(journal.entries)} entries", f"{self._shown} shown"]
        if journal.missed:
            parts.append(f"{journal.missed} older entries no longer kept by the engine")
        self.query_one("#journal-status", Static).update(Text(" · ".join(parts)))
