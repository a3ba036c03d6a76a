"""Messages: the live log of the focused session (state changes and notes), filterable by kind,
task or agent, and text. A session not run by this app shows its recorded transitions. Under
the log, the newest messages and events of the agents' bus for the session (read as
snapshots arrive, at most once a second).

New entries are announced with a `JournalAdvanced` message that replaces any older one still
queued, so a burst of entries costs one redraw; the log keeps at most `LOG_LINES` lines.
"""

from __future__ import annotations

import json
from functools import partial
from typing import Any, ClassVar

from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Input, RichLog, Select, Static

from orchestrator_tui.engine.events import JournalEntry, Snapshot
from orchestrator_tui.store.bus import Message as BusMessage
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
BUS_ROWS = 6
"""Bus rows shown when the panel's height is not known yet."""
PAYLOAD_CHARS = 60


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


def short_payload(payload: Any, limit: int = PAYLOAD_CHARS) -> str:
    """A JSON payload on one line, cut to `limit` characters."""
    text = payload if isinstance(payload, str) else json.dumps(payload)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def bus_rows(messages: list[BusMessage], events: list[dict[str, Any]],
             limit: int) -> list[tuple[float, tuple[str, ...]]]:
    """The newest `limit` messages and events, oldest first, as (time, cells): time, what,
    sender -> recipient, type, priority, state, payload."""
    rows: list[tuple[float, tuple[str, ...]]] = [
        (m.created_at, (stamp(m.created_at)[11:19], f"#{m.id}",
                        f"{m.sender} → {m.agent or m.recipient}", m.type, m.priority, m.state,
                        short_payload(m.payload))) for m in messages]
    for event in events:
        listeners = int(event["subscribers"])
        rows.append((float(event["created_at"]), (
            stamp(event["created_at"])[11:19], "event",
            f"{event['source']} → {listeners} listener{'s' if listeners != 1 else ''}",
            str(event["type"]), "-", "published", short_payload(event["payload"]))))
    rows.sort(key=lambda row: row[0])
    return rows[-limit:] if limit > 0 else []


def bus_table(messages: list[BusMessage], events: list[dict[str, Any]], limit: int) -> Table | Text:
    """The bus panel's content: a table of the newest messages and events."""
    rows = bus_rows(messages, events, limit)
    if not rows:
        return Text("No messages or events on the bus for this session yet "
                    "(agents use `orchestrator comm send`).", style="dim")
    table = Table.grid(padding=(0, 1), expand=True)
    table.add_column(width=8, no_wrap=True, style="dim")
    table.add_column(width=6, no_wrap=True)
    table.add_column(ratio=2, no_wrap=True, overflow="ellipsis", style="bold")
    table.add_column(ratio=2, no_wrap=True, overflow="ellipsis")
    table.add_column(width=8, no_wrap=True)
    table.add_column(width=12, no_wrap=True)
    table.add_column(ratio=3, no_wrap=True, overflow="ellipsis", style="dim")
    for _, cells in rows:
        table.add_row(*cells)
    return table


class MessagesScreen(ModeScreen):
    """The journal of the focused session, with filters, and the session's bus traffic."""

    DEFAULT_CSS = """
    MessagesScreen #bus-list {
        height: 8;
        border: round $primary 60%;
        padding: 0 1;
    }
    MessagesScreen.-short #bus-list {
        height: 5;
    }
    """

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
        bus = Static("", id="bus-list")
        bus.border_title = "BUS"
        yield bus
        yield Static("", id="journal-status")

    def on_mount(self) -> None:
        self.query_one("#journal", RichLog).focus()

    def refresh_data(self) -> None:
        self.orchestrator.want_journal()
        self.call_after_refresh(self._catch_up)  # once the log knows its width
        self._want_bus(force=True)

    def watch_snapshot(self, snap: Snapshot | None) -> None:
        if snap is not None and snap.journal_seq > self._rendered_seq:
            self.post_message(self.JournalAdvanced(snap.journal_seq))
        self._want_bus()

    # ----- the bus -----------------------------------------------------------------------

    def _want_bus(self, *, force: bool = False) -> None:
        """Read the bus when due (or now, with `force`)."""
        app = self.orchestrator
        if app.feed.wants_bus(app.clock(), force=force):
            app.work(partial(self._read_bus, redraw=force), group="bus",
                     description="read the message bus")

    async def _read_bus(self, *, redraw: bool = False) -> None:
        """Read the bus; redraw the panel when it changed (or when `redraw`)."""
        bus = await self.orchestrator.reader.bus()
        if bus is not None and (await self.orchestrator.feed.read_bus(bus, lists=True)
                                or redraw):
            self._show_bus()

    def _show_bus(self) -> None:
        view = self.orchestrator.feed.bus
        panel = self.query_one("#bus-list", Static)
        height = panel.content_size.height
        panel.update(bus_table(view.messages, view.events, height if height > 0 else BUS_ROWS))
        total = sum(view.counts.values())
        panel.border_subtitle = (f"{total} message{'s' if total != 1 else ''} in this "
                                 "session · newest last")

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
