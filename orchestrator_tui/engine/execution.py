"""One session's run: the dispatch loop that claims ready tasks, starts them and records ends.

Durability: a task's `running` state and attempt row are committed before its process
starts; a completion is committed in the same transaction that makes its dependents ready,
before any of them starts. Everything else is group-committed by the writer.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections import deque
from collections.abc import Coroutine, Mapping
from typing import Any

from orchestrator_tui.core.errors import OrchestratorError, StoreError
from orchestrator_tui.core.plan import Plan
from orchestrator_tui.core.policy import Candidate, ReadyQueue, free_slots
from orchestrator_tui.core.states import (
    DONE_TASK_STATES,
    SessionState,
    TaskState,
)
from orchestrator_tui.engine.events import (
    WAKE,
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
from orchestrator_tui.engine.record import SessionRecord
from orchestrator_tui.engine.runners.base import Handle, Job, Outcome, Runner
from orchestrator_tui.store import records
from orchestrator_tui.store.writer import Writer

T, S = TaskState, SessionState
RETRY_BASE_DELAY = 0.5
RETRY_MAX_DELAY = 30.0
PROCESS_START_DELAY = 0.05


class Execution:
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
                    committed.add_done_callback(functools.partial(self._launch, started))
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

    def _launch(self, tids: list[str], committed: asyncio.Future[None]) -> None:
        """Start the attempts whose `running` rows were just committed (or, if that commit
        failed, none: `_check_commit` reports the failure).

        Commands of one batch are started together by their runner's own thread and then
        followed by callbacks; other runners (python callables, anything that must await
        to start) each get a task.
        """
        if self._fatal:
            return
        batches: dict[Any, list[tuple[str, Attempt, Job]]] = {}
        for tid in tids:
            attempt = self._running[tid]
            if self._aborting:
                self._ended(tid, attempt.number, Outcome(
                    succeeded=False, error="cancelled before it started", cancelled=True))
                continue
            try:
                runner, job = self.jobs.job(self.plan.tasks[tid], attempt.number)
            except Exception as error:  # a runner's own failure is the task's failure
                self._ended(tid, attempt.number, Outcome(succeeded=False,
                                                         error=start_error(error)))
                continue
            if job.stdin is None and hasattr(runner, "spawn_many"):
                batches.setdefault(runner, []).append((tid, attempt, job))
            else:
                self._track(self._run_attempt(tid, attempt, runner, job), f"task {tid}")
        for runner, batch in batches.items():
            self._track(self._spawn_batch(runner, batch), "spawn")

    def _track(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._watchers.add(task)
        task.add_done_callback(self._watchers.discard)

    async def _spawn_batch(self, runner: Any, batch: list[tuple[str, Attempt, Job]]) -> None:
        try:
            handles = await runner.spawn_many([job for _, _, job in batch])
        except Exception as error:  # the runner itself failed: every attempt fails with it
            handles = [error] * len(batch)
        for (tid, attempt, _), handle in zip(batch, handles, strict=True):
            if isinstance(handle, Exception):
                self._ended(tid, attempt.number, Outcome(succeeded=False,
                                                         error=start_error(handle)))
                continue
            self._started(tid, attempt, handle)
            handle.on_done(functools.partial(self._ended, tid, attempt.number))

    async def _run_attempt(self, tid: str, attempt: Attempt, runner: Runner, job: Job) -> None:
        """Start one attempt with an async runner and report how it ended, whatever happens."""
        try:
            handle = await runner.start(job)
            self._started(tid, attempt, handle)
            outcome = await handle.wait()
        except asyncio.CancelledError:
            raise
        except Exception as error:  # a runner's own failure is the task's failure
            outcome = Outcome(succeeded=False, error=start_error(error)
                              if attempt.handle is None else f"{type(error).__name__}: {error}")
        self._ended(tid, attempt.number, outcome)

    def _started(self, tid: str, attempt: Attempt, handle: Handle) -> None:
        attempt.handle = handle
        if handle.pid is not None:
            attempt.pid = handle.pid
            self.record.touch_attempt(tid, attempt)
            # Reading a start time blocks while the child is still in exec: it is read by
            # one sweep a moment later, for the processes that still live (a process gone by
            # then needs no finding after a crash). The pid goes with the next batch.
            self._unsettled.append((tid, attempt))
            if self._settle_timer is None:
                self._settle_timer = asyncio.get_running_loop().call_later(
                    PROCESS_START_DELAY, self._settle)
        if self._aborting:
            self._launch_terminate(tid, handle)
        elif self._paused and handle.pause():
            attempt.paused = True
            self.record.set_task(tid, T.PAUSED, "session paused", time.time())

    def _ended(self, tid: str, number: int, outcome: Outcome) -> None:
        self._events.put_nowait(Completion(tid, number, outcome))

    def _settle(self) -> None:
        """Record the start times of processes that outlived `PROCESS_START_DELAY`."""
        self._settle_timer = None
        horizon = time.time() - PROCESS_START_DELAY
        noted = False
        while self._unsettled and self._unsettled[0][1].started_at <= horizon:
            tid, attempt = self._unsettled.popleft()
            if attempt.finished_at is None and attempt.handle is not None:
                attempt.process_start = attempt.handle.process_start
                self.record.touch_attempt(tid, attempt)
                noted = True
        if noted:
            self._events.put_nowait(WAKE)
        if self._unsettled:
            self._settle_timer = asyncio.get_running_loop().call_later(
                PROCESS_START_DELAY, self._settle)

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

    def _launch_terminate(self, tid: str, handle: Handle) -> None:
        task = asyncio.get_running_loop().create_task(handle.terminate(self.grace),
                                                      name=f"terminate {tid}")
        self._watchers.add(task)
        task.add_done_callback(self._watchers.discard)

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
        self.record.set_session(new, reason, now, self.writer)

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



def start_error(error: Exception) -> str:
    """What to tell the user about a task that could not start."""
    if isinstance(error, OSError):
        what = f"cannot start: {error.strerror or error}"
        return what + (f" ({error.filename})" if error.filename else "")
    if isinstance(error, OrchestratorError):
        return f"cannot start: {error}"
    return f"cannot start: {type(error).__name__}: {error}"
