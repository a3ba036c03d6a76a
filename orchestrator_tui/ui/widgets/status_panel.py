"""The top of the dashboard: session state and id, elapsed time, overall progress, counts."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.widgets import Label, ProgressBar, Static

from orchestrator_tui.core.states import ACTIVE_SESSION_STATES
from orchestrator_tui.engine.events import Snapshot
from orchestrator_tui.ui.format import counts_line, done_count, elapsed_text, show, styled_state
from orchestrator_tui.views import seconds


class StatusPanel(Vertical):
    """State, session, progress bar and task counts of the focused session."""

    snapshot: reactive[Snapshot | None] = reactive(None, init=False, repaint=False)
    """The session at the last tick (bound to the dashboard's snapshot)."""

    def compose(self) -> ComposeResult:
        yield Static("No session yet: choose an operation on the menu (m).", id="state-line")
        with Horizontal(id="progress-row"):
            yield Label("Progress: ", id="progress-label")
            yield ProgressBar(total=1, show_eta=False, id="overall")
            yield Label("", id="done-label")
        yield Static("", id="counts-line")

    def on_mount(self) -> None:
        self.query_one("#progress-row").display = False

    def watch_snapshot(self, snap: Snapshot | None) -> None:
        if snap is None:
            return
        row = self.query_one("#progress-row")
        if not row.display:
            row.display = True
        colours = getattr(self.app, "colours", {})
        took = snap.taken_at - snap.started_at
        elapsed = elapsed_text(took) if snap.state in ACTIVE_SESSION_STATES else seconds(took)
        line = Text.assemble("State: ", styled_state(snap.state, colours, session=True),
                             "  |  Session: ", (snap.session_id, "bold"),
                             f"  |  Elapsed: {elapsed}")
        show(self.query_one("#state-line", Static), line)
        done = done_count(snap.counts)
        self.query_one("#overall", ProgressBar).update(total=max(snap.total, 1), progress=done)
        show(self.query_one("#done-label", Label), f"  {done}/{snap.total} tasks finished")
        show(self.query_one("#counts-line", Static), Text(counts_line(snap.counts)))
