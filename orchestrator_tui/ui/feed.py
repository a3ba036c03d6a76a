"""Where the screens' data comes from: the live run of this app (its snapshots and journal), or
the database for a session run elsewhere or already finished.

The app's one 4 Hz timer asks `take_live()`; when there is no live run, it reads the database
at most once a second while the session is active (`read_database()`). The screens that show
the message bus read it through the app's reader as the snapshots arrive, at most once a
second (`wants_bus()`, `read_bus()`).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiosqlite

from orchestrator_tui.core.remaining import LiveRemaining
from orchestrator_tui.core.states import ACTIVE_SESSION_STATES
from orchestrator_tui.engine.bus import Bus
from orchestrator_tui.engine.events import Snapshot, TaskView
from orchestrator_tui.engine.execution import Execution
from orchestrator_tui.engine.remaining import live_remaining, remaining_of
from orchestrator_tui.store import queries
from orchestrator_tui.store.bus import Message
from orchestrator_tui.store.queries import SessionRow, TaskRow, open_attempt_pids
from orchestrator_tui.ui.host import RunHost
from orchestrator_tui.ui.journal import JournalStore, from_transition

DB_POLL_SECONDS = 1.0
"""How often a session run by another process is read from the database."""
BUS_POLL_SECONDS = 1.0
"""How often the focused session's messages are read while a screen shows them."""
BUS_LIST = 50
"""Newest messages and events kept for the messages screen."""


@dataclass(slots=True)
class BusView:
    """The focused session's messages by state and, when asked for, the newest of them."""

    counts: dict[str, int] = field(default_factory=dict)
    messages: list[Message] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    read: bool = False
    """Whether the bus has been read for this session yet."""


class Feed:
    """The focused session's latest snapshot and journal, from whichever source has them."""

    def __init__(self, host: RunHost, clock: Callable[[], float] = time.time) -> None:
        self.host = host
        self.clock = clock
        self.session_id: str | None = None
        self.latest: Snapshot | None = None
        self.session: SessionRow | None = None
        """The database row of the focused session, when it has been read."""
        self.tasks: dict[str, TaskRow] = {}
        """Task rows of the focused session, when it was read from the database."""
        self.journal = JournalStore()
        self.journal_fresh = False
        """Whether the journal of a session read from the database is as new as its rows."""
        self.next_read = 0.0
        self.bus = BusView()
        """What the message bus holds for the focused session (see `read_bus`)."""
        self.next_bus_read = 0.0
        self.forecaster: LiveRemaining | None = None
        """The time remaining of the focused session read from the database (loaded with
        its first read)."""
        self._forecast_for: str | None = None

    @property
    def live(self) -> Execution | None:
        """The focused session's execution, when this app runs it."""
        execution = self.host.execution
        if execution is not None and execution.session_id == self.session_id:
            return execution
        return None

    def focus(self, session_id: str | None) -> bool:
        """Follow another session; say whether it changed."""
        if session_id == self.session_id:
            return False
        self.session_id = session_id
        self.latest, self.session, self.tasks = None, None, {}
        self.journal.reset(session_id)
        self.journal_fresh = False
        self.next_read = 0.0
        self.bus, self.next_bus_read = BusView(), 0.0
        return True

    def wants_bus(self, now: float, *, force: bool = False) -> bool:
        """Whether the bus should be read now (at most once per `BUS_POLL_SECONDS`, unless
        `force`); a yes books the read, so the next ticks do not ask again."""
        if self.session_id is None or not (force or now >= self.next_bus_read):
            return False
        self.next_bus_read = now + BUS_POLL_SECONDS
        return True

    async def read_bus(self, bus: Bus, *, lists: bool) -> bool:
        """Read the focused session's message counts (and, with `lists`, its newest messages
        and events); say whether anything shown changed."""
        session_id = self.session_id
        if session_id is None:
            return False
        self.next_bus_read = self.clock() + BUS_POLL_SECONDS
        counts = await bus.counts(session_id)
        messages = await bus.messages(session_id=session_id, limit=BUS_LIST) if lists else []
        events = await bus.events(session_id=session_id, limit=BUS_LIST) if lists else []
        if session_id != self.session_id:
            return False  # the focus moved while reading
        old = self.bus
        new = BusView(counts, messages if lists else old.messages,
                      events if lists else old.events, True)
        changed = not old.read or (new.counts, [m.id for m in new.messages],
                                   [m.state for m in new.messages],
                                   [e["id"] for e in new.events]) != (
            old.counts, [m.id for m in old.messages], [m.state for m in old.messages],
            [e["id"] for e in old.events])
        self.bus = new
        return changed

    def take_live(self) -> Snapshot | None:
        """A new snapshot of the live run, or None when there is none or nothing can change."""
        live = self.live
        if live is None:
            return None
        last = self.latest
        if last is not None and last.state not in ACTIVE_SESSION_STATES \
                and live.session_state == last.state:
            return None  # finished and already shown: nothing moves any more
        snap = live.snapshot()
        if snap.journal_seq > self.journal.seq:
            self.journal.extend(live.journal_since(self.journal.seq))
        self.latest = snap
        return snap

    def wants_read(self, now: float) -> bool:
        """Whether the database should be read now for the focused session."""
        if self.session_id is None or self.live is not None or now < self.next_read:
            return False
        return self.latest is None or self.latest.state in ACTIVE_SESSION_STATES

    async def read_database(self, conn: aiosqlite.Connection, *,
                            with_journal: bool) -> Snapshot | None:
        """Build the focused session's snapshot from its rows (and its transitions)."""
        session_id = self.session_id
        if session_id is None:
            return None
        now = self.clock()
        self.next_read = now + DB_POLL_SECONDS
        session = await queries.find_session(conn, session_id)
        tasks = await queries.session_tasks(conn, session.id)
        pids = await open_attempt_pids(conn, session.id) \
            if session.state in ACTIVE_SESSION_STATES else {}
        if self._forecast_for != session.id:
            self.forecaster = await live_remaining(conn, session)
            self._forecast_for = session.id
        first = not self.journal.entries
        if with_journal or first:
            rows = await queries.history(conn, session.id, tasks=True)
            self.journal.extend((from_transition(row) for row in rows), numbered=False)
        self.journal_fresh = with_journal or (first and session.state not in
                                              ACTIVE_SESSION_STATES)
        if session_id != self.session_id:
            return None  # the focus moved while reading
        running = tuple(sorted(
            (TaskView(t.id, t.kind, t.state, t.attempts, t.started_at or session.created_at,
                      pids.get(t.id))
             for t in tasks if t.state in ("running", "paused")),
            key=lambda view: view.started_at))
        remaining = remaining_of(self.forecaster, tasks, session.parallel_limit, now) \
            if session.state in ACTIVE_SESSION_STATES else None
        snap = Snapshot(session.id, session.state, len(tasks), dict(Counter(t.state
                                                                             for t in tasks)),
                        running, session.parallel_limit, session.created_at,
                        session.finished_at or now, (), self.journal.seq, remaining)
        self.session, self.tasks, self.latest = session, {t.id: t for t in tasks}, snap
        return snap

    @property
    def state(self) -> str | None:
        """The focused session's state now: the live run's, else the last one read."""
        live = self.live
        if live is not None:
            return str(live.session_state)
        return self.latest.state if self.latest is not None else None

    def task_state(self, task_id: str) -> str | None:
        """The last known state of a task of the focused session."""
        row = self.tasks.get(task_id)
        if self.live is None and row is not None:
            return row.state
        return self.journal.task_states.get(task_id)
