"""One session's run: the dispatch loop that claims ready tasks, starts them and records ends.

Durability: a task's `running` state and attempt row are committed before its process
starts; a completion is committed in the same transaction that makes its dependents ready,
before any of them starts. Everything else is group-committed by the writer.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Mapping

from orchestrator_tui.core.errors import StoreError
from orchestrator_tui.core.plan import Plan
from orchestrator_tui.core.policy import Candidate, ReadyQueue, free_slots
from orchestrator_tui.core.states import (
    DONE_TASK_STATES,
    SessionState,
    TaskState,
)
from orchestrator_tui.engine.events import (
    Attempt,
    Completion,
    Control,
    Event,
    Fatal,
    JournalEntry,
    RetryDue,
    Snapshot,
    TaskView,
    Wake,
)
from orchestrator_tui.engine.jobs import JobFactory
from orchestrator_tui.engine.launch import AttemptLauncher
from orchestrator_tui.engine.record import SessionRecord
from orchestrator_tui.store import records
from orchestrator_tui.store.writer import Writer

T, S = TaskState, SessionState
RETRY_BASE_DELAY = 0.5
RETRY_MAX_DELAY = 30.0


class Execution(AttemptLauncher):
    """Runs one session's plan to its end, or until it is paused, aborted or crashes."""

    def __init__(self, *, session_id: str, plan: Plan, writer: Writer, jobs: JobFactory,
                 parallel_limit: int, session_state: SessionState = S.PLANNING,
                 task_states: Mapping[str, TaskState] | None = None,
                 attempts: Mapping[str, int] | None = None,
                 estimates: Mapping[str, float] | None = None, grace: float = 5.0,
                 boot_id: str = "") -> None:
        self.session_id = session_id
        self.boot_id = boot_id
        self.plan = plan
        self.writer = writer
        self.jobs = jobs
        self.parallel_limit = max(1, parallel_limit)
        self.max_concurrent = plan.intent.max_concurrent
        self.record = SessionRecord(session_id, boot_id, list(plan.tasks), session_state,
                                    task_states, attempts)
        self.states = self.record.states
        self.counts = self.record.counts
        self.grace = grace
        self._bottom = plan.bottom_levels(estimates)
        self._ready = ReadyQueue()
        self._running: dict[str, Attempt] = {}
        self._waiting: dict[str, int] = {}
        self._events: asyncio.Queue[Event] = asyncio.Queue()
        self._retry_timers: dict[str, asyncio.TimerHandle] = {}
        self._watchers: set[asyncio.Task[None]] = set()
        self._paused = session_state == S.PAUSED
        self._aborting = False
        self._fatal = False
        self._unsettled: deque[tuple[str, Attempt]] = deque()
        self._settle_timer: asyncio.TimerHandle | None = None
        self._failures: list[str] = []
        self.started_at = time.time()
        jobs.listener = self._agent_event

    # ----- public ------------------------------------------------------------------------

    def request(self, control: Control) -> None:
        """Hand a control request to the loop (from this process)."""
        self._events.put_nowait(control)

    def snapshot(self) -> Snapshot:
        """The current state, cheap enough to take several times a second."""
        running = tuple(
            TaskView(tid, self.plan.tasks[tid].kind, self.states[tid], att.number,
                     att.started_at, att.handle.pid if att.handle else None)
            for tid, att in self._running.items())
        return Snapshot(self.session_id, self.session_state, len(self.plan.tasks),
                        dict(self.counts), running, self.parallel_limit, self.started_at,
                        time.time(), tuple(self.log)[-20:], self.record.seq)

    @property
    def session_state(self) -> SessionState:
        """Where the session is now."""
        return self.record.session_state

    @property
    def log(self) -> deque[str]:
        """Notes worth a person's attention: failures, control outcomes, deadlocks."""
        return self.record.log

    def journal_since(self, seq: int) -> list[JournalEntry]:
        """Journal entries numbered after `seq` that are still kept, oldest first."""
        return self.record.journal_since(seq)

    def output_tail(self, task_id: str) -> tuple[str, str] | None:
        """What a running command task has written so far (stdout, stderr), if it is one."""
        attempt = self._running.get(task_id)
        tail = getattr(attempt.handle, "tail", None) if attempt else None
        return tail() if callable(tail) else None

    async def run(self) -> SessionState:
        """Execute until every task is done, the session is aborted, or nothing can run."""
        now = time.time()
        for tid in self.plan.order:
            self._waiting[tid] = sum(1 for dep in self.plan.graph.pred[tid]
                                     if self.states[dep] != T.SUCCEEDED)
        if self.session_state in (S.PLANNING, S.RECOVERING):
            self._set_session(S.EXECUTING, "plan ready" if self.session_state == S.PLANNING
                              else "recovered", now)
        self._skip_after_failed_dependencies(now)
        for tid in self.plan.order:
            state = self.states[tid]
            if state == T.PENDING and self._waiting[tid] == 0:
                self.record.set_task(tid, T.READY, "dependencies met", now)
            if self.states[tid] == T.READY:
                self._push(tid)
        await self._commit()
        try:
            return await self._loop()
        finally:
            for timer in self._retry_timers.values():
                timer.cancel()
            if self._settle_timer is not None:
                self._settle_timer.cancel()
            for watcher in list(self._watchers):
                watcher.cancel()

    # ----- the loop ----------------------------------------------------------------------

    async def _loop(self) -> SessionState:
        while True:
            started = self._dispatch()
            if self.record.flush(self.writer) or started:
                # Processes start once their `running` rows are committed; the loop goes on
                # meanwhile, so the next batch fills while this one is written.
                committed = asyncio.ensure_future(self.writer.commit())
                committed.add_done_callback(self._check_commit)
                if started:
                    self._launch(started, committed)
            final = self._final_state()
            if final is not None:
                return await self._finish(final)
            event = await self._events.get()
            self._handle(event)
            while not self._events.empty():
                self._handle(self._events.get_nowait())

    def _dispatch(self) -> list[str]:
        if self._paused or self._aborting:
            return []
        slots = free_slots(len(self._running), self.parallel_limit, self.max_concurrent)
        if not slots or not len(self._ready):
            return []
        now = time.time()
        started = []
        for candidate in self._ready.take(slots):
            tid = candidate.task_id
            attempt = self._running[tid] = Attempt(self.record.start_task(tid, now), now)
            self.record.touch_attempt(tid, attempt)
            started.append(tid)
        return started

    # ----- events ------------------------------------------------------------------------

    def _handle(self, event: Event) -> None:
        if isinstance(event, Fatal):
            raise event.error
        if isinstance(event, Wake):
            return
        if isinstance(event, Completion):
            self._complete(event)
        elif isinstance(event, RetryDue):
            self._retry_timers.pop(event.task_id, None)
            if self.states[event.task_id] == T.RETRYING and not self._aborting:
                self.record.set_task(event.task_id, T.READY, "retry backoff over", time.time())
                self._push(event.task_id)
        else:
            self._control(event)

    def _complete(self, event: Completion) -> None:
        tid, outcome, now = event.task_id, event.outcome, time.time()
        attempt = self._running.pop(tid, None)
        if attempt is None or attempt.number != event.attempt:
            return
        attempt.verdict = "succeeded" if outcome.succeeded else "cancelled" \
            if outcome.cancelled else "failed"
        attempt.finished_at, attempt.outcome = now, outcome
        self.record.touch_attempt(tid, attempt)
        record = self.record
        if self.states[tid] == T.PAUSED:
            record.set_task(tid, T.RUNNING, "ended while paused", now)
        if outcome.succeeded:
            record.finish_task(tid, T.SUCCEEDED, outcome, outcome.result or "exit code 0", now)
            for dependent in self.plan.graph.succ[tid]:
                self._waiting[dependent] -= 1
                if self._waiting[dependent] == 0 and self.states[dependent] == T.PENDING:
                    record.set_task(dependent, T.READY, f"dependencies met ({tid} succeeded)",
                                    now)
                    self._push(dependent)
        elif outcome.cancelled or self._aborting:
            record.finish_task(tid, T.CANCELLED, outcome, outcome.error or "cancelled", now)
        elif event.attempt <= self.plan.tasks[tid].retries:
            self.jobs.last_errors[tid] = outcome.error
            delay = min(RETRY_MAX_DELAY, RETRY_BASE_DELAY * 2 ** (event.attempt - 1))
            self.record.set_task(tid, T.RETRYING, f"{outcome.error}; retry in {delay:g} s", now)
            loop = asyncio.get_running_loop()
            self._retry_timers[tid] = loop.call_later(delay, self._events.put_nowait,
                                                      RetryDue(tid))
        else:
            self.record.finish_task(tid, T.FAILED, outcome, outcome.error or "failed", now)
            self._failures.append(tid)
            self._skip_dependents(tid, now)

    def _control(self, event: Control) -> None:
        now = time.time()
        outcome = self._apply_control(event, now)
        self.record.note(f"{event.action}: {outcome}")
        if event.control_id is not None:
            self.writer.add(records.HANDLE_CONTROL, (now, outcome, event.control_id))

    def _apply_control(self, event: Control, now: float) -> str:
        action = event.action
        if action == "pause":
            if self._paused or self.session_state != S.EXECUTING:
                return f"not paused: session is {self.session_state}"
            self._paused = True
            self._set_session(S.PAUSED, event.reason, now)
            stopped = 0
            for tid, attempt in self._running.items():
                if attempt.handle is not None and attempt.handle.pause():
                    attempt.paused = True
                    stopped += 1
                    self.record.set_task(tid, T.PAUSED, "session paused", now)
            return f"paused; {stopped} agent process group(s) stopped"
        if action == "resume":
            if not self._paused:
                return f"not resumed: session is {self.session_state}"
            self._paused = False
            self._set_session(S.EXECUTING, event.reason, now)
            for tid, attempt in self._running.items():
                if attempt.paused and attempt.handle is not None:
                    attempt.handle.resume()
                    attempt.paused = False
                    self.record.set_task(tid, T.RUNNING, "session resumed", now)
            return "resumed"
        if action == "abort":
            if self._aborting:
                return "already aborting"
            self._aborting = True
            self._paused = False
            for timer in self._retry_timers.values():
                timer.cancel()
            self._retry_timers.clear()
            for watcher_tid, attempt in self._running.items():
                if attempt.handle is not None:
                    self._launch_terminate(watcher_tid, attempt.handle)
            return f"aborting; {len(self._running)} running task(s) terminated"
        if action in ("retry", "skip"):
            return self._decide(action, event.argument or "", now)
        if action == "set-limit":
            try:
                limit = int(event.argument or "")
            except ValueError:
                return f"refused: parallel limit must be a whole number, not {event.argument!r}"
            if limit < 1:
                return "refused: parallel limit must be at least 1"
            self.parallel_limit = limit
            self.writer.add(records.SET_SESSION_LIMIT, (limit, now, self.session_id))
            return f"parallel limit set to {limit}"
        return f"refused: unknown action {action!r}"

    # ----- ending ------------------------------------------------------------------------

    def _final_state(self) -> SessionState | None:
        if self._running or self._retry_timers:
            return None
        if self._aborting:
            return S.ABORTED
        if len(self._ready) or self._paused:
            return None  # paused, or the next dispatch starts what is ready
        if all(state in DONE_TASK_STATES for state in self.states.values()):
            return S.FAILED if self._failures or self.counts.get(T.FAILED) else S.COMPLETED
        if self.counts.get(T.INTERRUPTED):
            self._await_decisions()
            return None
        blocked = [tid for tid, state in self.states.items() if state not in DONE_TASK_STATES]
        self.record.note("nothing can run, nothing is running, work remains: "
                  + ", ".join(blocked[:20]))
        return S.FAILED

    async def _finish(self, final: SessionState) -> SessionState:
        now = time.time()
        if final == S.ABORTED:
            for tid, state in self.states.items():
                if state not in DONE_TASK_STATES:
                    self.record.set_task(tid, T.CANCELLED, "session aborted", now)
            reason = "aborted by the user"
        elif final == S.COMPLETED:
            reason = f"all {len(self.states)} tasks succeeded"
        else:
            failed = [tid for tid, s in self.states.items() if s == T.FAILED]
            blocked = [tid for tid, s in self.states.items() if s not in DONE_TASK_STATES]
            reason = (f"failed: {', '.join(failed[:10])}" if failed
                      else f"nothing can run: {', '.join(blocked[:10])}")
        self._set_session(final, reason, now)
        await self._commit()
        return final

    # ----- decisions on interrupted tasks ------------------------------------------------

    def _await_decisions(self) -> None:
        """Nothing else can run: pause until the user decides on the interrupted tasks."""
        if self._paused:
            return
        waiting = [tid for tid, state in self.states.items() if state == T.INTERRUPTED]
        self._paused = True
        self._set_session(S.PAUSED, f"waiting for your decision on interrupted task(s) "
                                    f"{', '.join(waiting[:10])}: retry or skip each "
                                    "(`orchestrator task retry|skip TASK`), or abort",
                          time.time())

    def _decide(self, action: str, tid: str, now: float) -> str:
        """The user's decision on an interrupted task: run it again, or skip it."""
        if self.states.get(tid) != T.INTERRUPTED:
            state = self.states.get(tid)
            return f"refused: task {tid!r} is {state or 'unknown'}, not interrupted"
        if action == "retry":
            self.record.set_task(tid, T.READY, "retry decided by the user", now)
            if self._waiting[tid] == 0:
                self._push(tid)
        else:
            self.record.set_task(tid, T.SKIPPED, "skip decided by the user", now)
            self._skip_dependents(tid, now)
        if self._paused and self.session_state == S.PAUSED and \
                (action == "retry" or not self.counts.get(T.INTERRUPTED)):
            self._paused = False
            self._set_session(S.EXECUTING, f"{action} of {tid} decided by the user", now)
        return f"{tid}: {'will run again' if action == 'retry' else 'skipped'}"

    # ----- bookkeeping -------------------------------------------------------------------

    def _push(self, tid: str) -> None:
        task = self.plan.tasks[tid]
        self._ready.push(Candidate.of(tid, task.priority, self._bottom[tid],
                                      self.plan.position[tid]))

    def _check_commit(self, committed: asyncio.Future[None]) -> None:
        if not committed.cancelled() and committed.exception() is not None:
            error = committed.exception()
            assert isinstance(error, StoreError)
            self._fatal = True
            self._events.put_nowait(Fatal(error))

    def _set_session(self, new: SessionState, reason: str, now: float) -> None:
        self.record.set_session(new, reason, now)

    async def _commit(self) -> None:
        """Queue every changed row, then wait for the group commit that holds them."""
        self.record.flush(self.writer)
        await self.writer.commit()

    def _skip_dependents(self, tid: str, now: float) -> None:
        for dependent in _descendants(self.plan, tid):
            if self.states[dependent] in (T.PENDING, T.READY):
                self.record.set_task(dependent, T.SKIPPED, f"dependency {tid} failed", now)

    def _skip_after_failed_dependencies(self, now: float) -> None:
        for tid, state in list(self.states.items()):
            if state in (T.FAILED, T.SKIPPED, T.CANCELLED):
                self._skip_dependents(tid, now)


def _descendants(plan: Plan, tid: str) -> list[str]:
    seen: set[str] = set()
    stack = [tid]
    order = []
    succ = plan.graph.succ
    while stack:
        for nxt in succ[stack.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                order.append(nxt)
                stack.append(nxt)
    return order


