"""The log of the focused session, bounded in memory: journal entries of a live run, or the
transitions recorded in the database for a session this app does not run."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from orchestrator_tui.engine.events import JournalEntry
from orchestrator_tui.store.queries import TransitionRow

JOURNAL_LIMIT = 20_000
"""Entries kept in memory; older ones are dropped (the database keeps every transition)."""


def from_transition(row: TransitionRow) -> JournalEntry:
    """A recorded transition as a journal entry (its row id as the sequence number)."""
    kind = "task" if row.task_id else "session"
    return JournalEntry(row.id, row.at, kind, row.task_id, row.from_state, row.to_state,
                        row.reason)


class JournalStore:
    """Journal entries of one session, newest last, with the last state seen of each task."""

    def __init__(self, limit: int = JOURNAL_LIMIT) -> None:
        self.entries: deque[JournalEntry] = deque(maxlen=limit)
        self.session_id: str | None = None
        self.seq = 0
        """The number of the newest entry held."""
        self.missed = 0
        """Entries the source no longer kept when they were asked for."""
        self.generation = 0
        """Bumped on every reset, so that views know to redraw from scratch."""
        self.task_states: dict[str, str] = {}

    def reset(self, session_id: str | None) -> None:
        """Start over for another session."""
        self.entries.clear()
        self.session_id = session_id
        self.seq = self.missed = 0
        self.task_states.clear()
        self.generation += 1

    def extend(self, entries: Iterable[JournalEntry], *, numbered: bool = True) -> int:
        """Add entries newer than those held; return how many were added.

        Args:
            entries: oldest first.
            numbered: the source numbers entries 1, 2, 3... (a live journal), so a gap means
                entries it no longer kept; recorded transitions are not numbered that way.
        """
        added = 0
        for entry in entries:
            if entry.seq <= self.seq:
                continue
            if numbered and entry.seq > self.seq + 1:
                self.missed += entry.seq - self.seq - 1
            self.entries.append(entry)
            self.seq = entry.seq
            if entry.kind == "task" and entry.task_id and entry.new:
                self.task_states[entry.task_id] = entry.new
            added += 1
        return added

    def since(self, seq: int) -> list[JournalEntry]:
        """Entries held that are newer than `seq`, oldest first."""
        newer: list[JournalEntry] = []
        for entry in reversed(self.entries):
            if entry.seq <= seq:
                break
            newer.append(entry)
        newer.reverse()
        return newer
