"""One agent in detail: its state, its attempts with timings from the attempts table, and the
tail of its output (live while it runs in this app, else as recorded)."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, ClassVar, cast

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label, Log, Static

from orchestrator_tui.core.timeouts import Timeout
from orchestrator_tui.store.queries import AttemptRow, task_attempts
from orchestrator_tui.ui.format import FINISHED, styled_state
from orchestrator_tui.views import seconds, stamp

if TYPE_CHECKING:
    from orchestrator_tui.ui.app import OrchestratorApp

OUTPUT_LINES = 400
"""Lines of output shown (the engine keeps the last 256 KiB of each stream)."""
REFRESH_SECONDS = 0.5


def output_text(stdout: str, stderr: str, *, live: bool = True) -> str:
    """Both streams as one text, stderr marked, cut to the last OUTPUT_LINES lines."""
    text = stdout.rstrip("\n")
    if stderr.strip():
        text += ("\n" if text else "") + "── stderr ──\n" + stderr.rstrip("\n")
    lines = text.splitlines()
    if not lines:
        return "(no output yet)" if live else "(it wrote nothing)"
    return "\n".join(lines[-OUTPUT_LINES:])


def timeout_text(row: AttemptRow) -> str | None:
    """The time limit of an attempt and where it came from, or None without one."""
    if row.timeout is None:
        return None
    return (f"Time limit of attempt {row.attempt}: {row.timeout:g} s, "
            f"{Timeout(row.timeout, row.timeout_runs).describe()}")


class DetailsScreen(ModalScreen[None]):
    """The selected agent: state, attempts and timings, output tail."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,Q,d,D", "close", "Close"),
    ]

    def __init__(self, session_id: str, task_id: str) -> None:
        super().__init__()
        self.session_id, self.task_id = session_id, task_id
        self._shown_output: str | None = None
        self._settled = False

    @property
    def orchestrator(self) -> OrchestratorApp:
        """The app, typed."""
        return cast("OrchestratorApp", self.app)

    def compose(self) -> ComposeResult:
        with Vertical(id="details", classes="dialog"):
            yield Static("", id="details-title")
            yield DataTable(id="attempts", cursor_type="none", zebra_stripes=True)
            yield Static("", id="details-timeout")
            yield Label("Output", id="output-label")
            yield Log(id="output", max_lines=OUTPUT_LINES * 2, auto_scroll=True)
            yield Label("Esc closes", id="details-hint")

    def on_mount(self) -> None:
        table = self.query_one("#attempts", DataTable)
        for label in ("Attempt", "Outcome", "PID", "Started", "Took", "Exit"):
            table.add_column(label, key=label.lower())
        self.query_one("#details", Vertical).border_title = f"AGENT {self.task_id}"
        self.query_one("#details-timeout").display = False
        self._refresh()
        self.set_interval(REFRESH_SECONDS, self._refresh)

    def action_close(self) -> None:
        """Back to the dashboard."""
        self.dismiss(None)

    def _refresh(self) -> None:
        app = self.orchestrator
        state = app.feed.task_state(self.task_id) or "unknown"
        snap = app.feed.latest
        view = next((v for v in snap.running if v.task_id == self.task_id), None) \
            if snap is not None else None
        if view is not None:
            state = view.state
        kind = app.feed.live.plan.tasks[self.task_id].kind if app.feed.live and \
            self.task_id in app.feed.live.plan.tasks else ""
        title = Text.assemble(styled_state(state, app.colours), "  ", (self.task_id, "bold"),
                              f"  kind {kind}" if kind else "", f"  session {self.session_id}")
        self.query_one("#details-title", Static).update(title)
        live = app.feed.live
        tail = live.output_tail(self.task_id) if live is not None else None
        if tail is not None:
            self.query_one("#output-label", Label).update("Output (live tail)")
            self._show_output(output_text(*tail))
        if self._settled:
            return  # finished and read: nothing changes any more
        app.work(partial(self._load_attempts, tail is None), group=f"details-{self.task_id}",
                 description=f"read the attempts of {self.task_id}")

    async def _load_attempts(self, with_output: bool) -> None:
        conn = await self.orchestrator.reader.get()
        if conn is None:
            return
        rows = await task_attempts(conn, self.session_id, self.task_id)
        if not self.is_mounted:
            return
        self._show_attempts(rows)
        done = self.orchestrator.feed.task_state(self.task_id) in FINISHED
        self._settled = done and with_output and bool(rows) and rows[-1].finished_at is not None
        if with_output and rows:
            last = rows[-1]
            self.query_one("#output-label", Label).update(
                f"Output of attempt {last.attempt} (as recorded)")
            self._show_output(output_text(last.stdout or "", last.stderr or "", live=False))

    def _show_attempts(self, rows: list[AttemptRow]) -> None:
        table = self.query_one("#attempts", DataTable)
        now = self.orchestrator.clock()
        for row in rows:
            took = (row.finished_at or now) - row.started_at
            cells = (str(row.attempt), row.outcome or "running", str(row.pid or "-"),
                     stamp(row.started_at)[11:], seconds(took),
                     "-" if row.exit_code is None else str(row.exit_code))
            key = str(row.attempt)
            if key in table.rows:
                for column, value in zip(("attempt", "outcome", "pid", "started", "took",
                                          "exit"), cells, strict=True):
                    table.update_cell(key, column, value)
            else:
                table.add_row(*cells, key=key)
        limit = timeout_text(rows[-1]) if rows else None
        line = self.query_one("#details-timeout", Static)
        line.display = limit is not None
        if limit is not None:
            line.update(limit)

    def _show_output(self, text: str) -> None:
        if text == self._shown_output:
            return
        self._shown_output = text
        log = self.query_one("#output", Log)
        log.clear()
        log.write(text)
