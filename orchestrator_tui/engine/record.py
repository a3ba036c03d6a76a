"""What a session has done, as the engine records it: task states, rows, transitions and the
live journal. Every change goes through the state machines first, then is queued here, and
`flush` hands the changed rows to the writer in one block per statement. States go out as
their plain text, and the statements of the common rows (a new attempt, a task not yet
ended) bind no NULL: `sqlite3` offers every bound value that is not exactly an int, float,
str or bytes (an enum member, None) to its adapters first, which costs more than the binding.

The record also carries what the engine tells the message bus: events of the types some
agent listens to (`subscribe` sets them; anything else costs one set lookup and nothing is
written) and the hand-over of a finished task's messages; both go out with the next flush,
in the same group commit as the rows."""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from orchestrator_tui.core.states import SessionState, TaskState, check_session, check_task
from orchestrator_tui.engine.events import Attempt, JournalEntry, TaskRow
from orchestrator_tui.engine.runners.base import Outcome
from orchestrator_tui.store import bus_events, bus_rules, records
from orchestrator_tui.store.writer import Writer

JOURNAL_SIZE = 5000
FINAL_SESSION = (SessionState.COMPLETED, SessionState.FAILED, SessionState.ABORTED)


class SessionRecord:
    """The in-memory truth of one session's states, and the rows still to be written."""

    def __init__(self, session_id: str, boot_id: str, task_ids: list[str],
                 session_state: SessionState,
                 task_states: Mapping[str, TaskState] | None = None,
                 attempts: Mapping[str, int] | None = None) -> None:
        self.session_id = session_id
        self.boot_id = boot_id
        self.session_state = session_state
        self.states: dict[str, TaskState] = dict.fromkeys(task_ids, TaskState.PENDING)
        self.states.update(task_states or {})
        self.rows: dict[str, TaskRow] = {tid: TaskRow() for tid in task_ids}
        for tid, count in (attempts or {}).items():
            self.rows[tid].attempts = count
        self.counts: dict[str, int] = {}
        for state in self.states.values():
            self.counts[state] = self.counts.get(state, 0) + 1
        self.log: deque[str] = deque(maxlen=500)
        """Notes worth a person's attention: failures, control outcomes, deadlocks."""
        self.journal: deque[JournalEntry] = deque(maxlen=JOURNAL_SIZE)
        """Every state change and note, numbered, newest last (bounded)."""
        self.seq = 0
        self._dirty_tasks: set[str] = set()
        self._dirty_attempts: dict[tuple[str, int], Attempt] = {}
        self._transitions: list[tuple[str, str | None, str | None, str, str, float]] = []
        self._session_row: tuple[str, float, bool, float, str] | None = None
        self.subscribed: frozenset[str] = frozenset()
        """The event types some active agent listens to (`*`: all of them)."""
        self._every_event = False
        self._bus_ops: list[tuple[str, tuple[Any, ...]]] = []
        self.first_started: dict[str, float] = {}
        """When each task's first attempt (in this process) started."""

    def subscribe(self, types: Iterable[str]) -> None:
        """Publish from now on only events of these types (`*`: every type)."""
        self.subscribed = frozenset(types)
        self._every_event = "*" in self.subscribed

    def wants(self, type: str) -> bool:
        """Whether some agent listens to events of `type`."""
        return self._every_event or type in self.subscribed

    def publish(self, type: str, payload: dict[str, Any], now: float | None = None) -> None:
        """Queue an engine event for the next flush when some agent listens to its type."""
        if not (self._every_event or type in self.subscribed):
            return
        text = json.dumps(payload, default=str)
        self._bus_ops += bus_events.event_statements(
            bus_rules.ENGINE, type, text, session_id=self.session_id,
            now=time.time() if now is None else now)

    def hand_over(self, agent: str, targets: Iterable[str], since: float, now: float) -> None:
        """Queue copies of the messages `agent` got since `since` and has not acknowledged,
        one set for each agent of `targets` (see `store.bus_events.HAND_OVER`)."""
        self._bus_ops += [(bus_events.HAND_OVER, (target, now, agent, since, self.session_id))
                          for target in targets]

    def set_task(self, tid: str, new: TaskState, reason: str, now: float) -> None:
        """Move a task to `new` (raising `IllegalTransition` first if it may not)."""
        old = self.states[tid]
        check_task(tid, old, new)
        self.states[tid] = new
        self.counts[old] -= 1
        if not self.counts[old]:
            del self.counts[old]
        self.counts[new] = self.counts.get(new, 0) + 1
        self.rows[tid].updated_at = now
        self._dirty_tasks.add(tid)
        self._transitions.append((self.session_id, tid, old.value, new.value, reason, now))
        self._journal("task", tid, old, new, reason, now)

    def start_task(self, tid: str, now: float) -> int:
        """Record a new attempt of a ready task as running; return its number."""
        row = self.rows[tid]
        row.attempts += 1
        row.started_at, row.finished_at = now, None
        self.first_started.setdefault(tid, now)
        self.set_task(tid, TaskState.RUNNING, f"attempt {row.attempts} started", now)
        return row.attempts

    def finish_task(self, tid: str, new: TaskState, outcome: Outcome, reason: str,
                    now: float) -> None:
        """Record the end of a task with what its last attempt reported."""
        row = self.rows[tid]
        row.exit_code, row.result, row.error = outcome.exit_code, outcome.result, outcome.error
        row.finished_at = now
        self.set_task(tid, new, reason, now)
        if new != TaskState.SUCCEEDED:
            self.note(f"{tid} {new}: {reason}", tid)

    def touch_attempt(self, tid: str, attempt: Attempt) -> None:
        """Mark an attempt's row as changed."""
        self._dirty_attempts[(tid, attempt.number)] = attempt

    def set_session(self, new: SessionState, reason: str, now: float) -> None:
        """Move the session to `new` (raising `IllegalTransition` first if it may not); the
        row is written with its transition, in the same batch."""
        check_session(self.session_id, self.session_state, new)
        self._session_row = (new.value, now, new in FINAL_SESSION, now, self.session_id)
        self._transitions.append((self.session_id, None, self.session_state.value, new.value,
                                  reason, now))
        self._journal("session", None, self.session_state, new, reason, now)
        if self._every_event or "state_changed" in self.subscribed:
            self.publish("state_changed", {"session": self.session_id,
                                           "from": self.session_state, "to": new,
                                           "reason": reason}, now)
        self.session_state = new

    def note(self, text: str, task_id: str | None = None, *, log: bool = True) -> None:
        """Add a note to the journal, and to the log unless `log` is False (for the steady
        stream of what agents report, which would drown the log's failures)."""
        if log:
            self.log.append(text)
        self._journal("note", task_id, None, None, text, time.time())

    def _queue_tasks(self, writer: Writer) -> None:
        """Queue the changed task rows, those without an outcome yet (not started, or
        running) through statements that write their empty columns as NULL themselves; the
        rows of each statement go as one block, which the writer runs as one `executemany`."""
        sid = self.session_id
        fresh: list[tuple[object, ...]] = []
        started: list[tuple[object, ...]] = []
        ended: list[tuple[object, ...]] = []
        for tid in self._dirty_tasks:
            row = self.rows[tid]
            state = self.states[tid].value
            if not row.ended:
                if row.started_at is None:
                    fresh.append((state, row.attempts, row.updated_at, sid, tid))
                else:
                    started.append((state, row.attempts, row.started_at, row.updated_at, sid,
                                    tid))
            else:
                ended.append((state, row.attempts, row.exit_code, row.result, row.error,
                              row.started_at, row.finished_at, row.updated_at, sid, tid))
        writer.add_rows(records.UPDATE_TASK, ended)
        writer.add_rows(records.UPDATE_FRESH_TASK, fresh)
        writer.add_rows(records.UPDATE_STARTED_TASK, started)

    def journal_since(self, seq: int) -> list[JournalEntry]:
        """Journal entries numbered after `seq` that are still kept, oldest first."""
        if seq >= self.seq:
            return []
        newer = self.seq - seq
        entries = list(self.journal)
        return entries[-newer:] if newer < len(entries) else entries

    def _journal(self, kind: str, task_id: str | None, old: str | None, new: str | None,
                 text: str, at: float) -> None:
        self.seq += 1
        self.journal.append(JournalEntry(self.seq, at, kind, task_id, old, new, text))

    def flush(self, writer: Writer) -> bool:
        """Queue every row changed since the last flush, one block per statement; say
        whether there was any."""
        if not (self._dirty_attempts or self._dirty_tasks or self._transitions
                or self._bus_ops):
            return False
        sid = self.session_id
        if self._session_row is not None:
            writer.add(records.SET_SESSION_STATE, self._session_row)
            self._session_row = None
        inserts: list[tuple[object, ...]] = []
        upserts: list[tuple[object, ...]] = []
        updates: list[tuple[object, ...]] = []
        agents: list[tuple[object, ...]] = []
        for (tid, number), att in self._dirty_attempts.items():
            out, limit = att.outcome, att.timeout
            if att.queued:
                updates.append((att.pid, att.process_start, att.finished_at, att.verdict,
                                out.exit_code if out else None, out.stdout if out else None,
                                out.stderr if out else None, out.output_bytes if out else None,
                                att.input_bytes, sid, tid, number))
            elif att.only_started:  # the common case
                att.queued = True
                inserts.append((sid, tid, number, self.boot_id, att.started_at,
                                limit.seconds if limit else None, limit.runs if limit else None,
                                att.input_bytes))
            else:
                att.queued = True
                upserts.append((
                    sid, tid, number, self.boot_id, att.pid, att.process_start,
                    att.started_at, att.finished_at, att.verdict,
                    out.exit_code if out else None, out.stdout if out else None,
                    out.stderr if out else None, out.output_bytes if out else None,
                    limit.seconds if limit else None, limit.runs if limit else None,
                    att.input_bytes))
            if att.runner is not None or (out is not None and out.runner is not None):
                agents.append(agent_row(sid, tid, number, att))
        writer.add_rows(records.INSERT_ATTEMPT, inserts)
        writer.add_rows(records.UPSERT_ATTEMPT, upserts)
        writer.add_rows(records.UPDATE_ATTEMPT, updates)  # after the new rows
        writer.add_rows(records.SET_ATTEMPT_AGENT, agents)  # after them too: every row exists
        self._queue_tasks(writer)
        writer.add_rows(records.INSERT_TRANSITION, self._transitions)
        for statement, params in self._bus_ops:  # after the rows they describe
            writer.add(statement, params)
        self._bus_ops.clear()
        self._dirty_attempts.clear()
        self._dirty_tasks.clear()
        self._transitions.clear()
        return True


def agent_row(session_id: str, task_id: str, number: int,
              attempt: Attempt) -> tuple[object, ...]:
    """The parameters of `SET_ATTEMPT_AGENT`: the outcome's figures once it has ended, else
    what the running attempt has reported so far."""
    out = attempt.outcome
    if out is None or out.runner is None:
        return (attempt.runner, attempt.agent_session, None, None, None, None, session_id,
                task_id, number)
    return (out.runner, out.agent_session or attempt.agent_session, out.tokens_in,
            out.tokens_out, out.cost_usd, out.turns, session_id, task_id, number)
