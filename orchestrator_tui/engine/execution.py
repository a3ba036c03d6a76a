"""One session's run: the dispatch loop that claims ready tasks, starts them and records ends.

Durability: a task's `running` state and attempt row are committed before its process
starts; a completion is committed in the same transaction that makes its dependents ready,
before any of them starts. Everything else is group-committed by the writer.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping

from orchestrator_tui.core.errors import OrchestratorError, StoreError
from orchestrator_tui.core.plan import Plan
from orchestrator_tui.core.policy import Candidate, ReadyQueue, free_slots
from orchestrator_tui.core.pressure import (
    Action,
    PauseSession,
    PauseTasks,
    Pressure,
    ResumeSession,
    ResumeTasks,
    RunningTask,
    SetLimit,
    Work,
    describe,
)
from orchestrator_tui.core.recovery_policy import (
    Decompose,
    Escalate,
    Fallback,
    GiveUp,
    PauseForUser,
    RetrySame,
    Step,
)
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
from orchestrator_tui.engine.failure_recovery import FailureRecovery
from orchestrator_tui.engine.jobs import JobFactory
from orchestrator_tui.engine.launch import AttemptLauncher
from orchestrator_tui.engine.record import SessionRecord
from orchestrator_tui.engine.runners.base import Handle, Outcome
from orchestrator_tui.store import crashpoints, records
from orchestrator_tui.store.backup import rescue_path
from orchestrator_tui.store.writer import Writer

T, S = TaskState, SessionState
Checkpointer = Callable[[str, str], Awaitable[str]]
"""Takes a checkpoint of the session given a name and a reason; returns its id."""


class Execution(AttemptLauncher):
    """Runs one session's plan to its end, or until it is paused, aborted or crashes."""

    def __init__(self, *, session_id: str, plan: Plan, writer: Writer, jobs: JobFactory,
                 parallel_limit: int, session_state: SessionState = S.PLANNING,
                 task_states: Mapping[str, TaskState] | None = None,
                 attempts: Mapping[str, int] | None = None,
                 estimates: Mapping[str, float] | None = None, grace: float = 5.0,
                 boot_id: str = "",
                 success_rates: Mapping[str, tuple[int, int]] | None = None) -> None:
        self.session_id = session_id
        self.boot_id = boot_id
        self.plan = plan
        self.writer = writer
        self.jobs = jobs
        self.parallel_limit = max(1, parallel_limit)
        self.user_limit = self.parallel_limit
        """The limit the user asked for; `parallel_limit` is lower while resources are short."""
        self._pressure_limit: int | None = None
        self._pressure_held: set[str] = set()
        """Running tasks paused because resources are short."""
        self._pressure_session = False
        """Whether the pause of the session is the resource pressure's."""
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
        self.failure_recovery = FailureRecovery(plan, jobs.registry, success_rates)
        """What was tried for failed tasks; `success_rates` rank fallback agents."""
        self.started_at = time.time()
        jobs.listener = self._agent_event
        self.checkpoint: Checkpointer | None = None
        """Takes an automatic checkpoint (name, reason) before each phase and on pause; the
        engine sets it unless the user turned `auto_checkpoints` off."""
        self._phases_begun: set[str] = set()
        self._held: dict[str, list[str]] = {}
        """Ready tasks of a phase whose checkpoint is being taken, by phase."""

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

    def running_handles(self) -> list[Handle]:
        """The handles of the attempts running now (to stop them when the app quits)."""
        return [attempt.handle for attempt in self._running.values()
                if attempt.handle is not None]

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
        crashpoints.reached("completing")
        tid, outcome, now = event.task_id, event.outcome, time.time()
        attempt = self._running.pop(tid, None)
        if attempt is None or attempt.number != event.attempt:
            return
        self._pressure_held.discard(tid)
        attempt.verdict = "succeeded" if outcome.succeeded else "cancelled" \
            if outcome.cancelled else "failed"
        attempt.finished_at, attempt.outcome = now, outcome
        self.record.touch_attempt(tid, attempt)
        record = self.record
        if self.states[tid] == T.PAUSED:
            record.set_task(tid, T.RUNNING, "ended while paused", now)
        if outcome.succeeded:
            record.finish_task(tid, T.SUCCEEDED, outcome, outcome.result or "exit code 0", now)
            self._release_dependents(tid, f"dependencies met ({tid} succeeded)", now)
            if (agent := self.failure_recovery.switched_to(tid)) is not None:
                record.note(f"recovery: {tid} succeeded with {agent}", tid)
        elif outcome.cancelled or self._aborting:
            record.finish_task(tid, T.CANCELLED, outcome, outcome.error or "cancelled", now)
        elif not self.jobs.workspace.is_dir():
            self._workspace_gone(tid, now)
        else:
            self.jobs.last_errors[tid] = outcome.error
            step = self.failure_recovery.next_step(tid, event.attempt)
            self._recover(tid, step, outcome.error or "failed", event.attempt, now, outcome)
        if tid in self.failure_recovery.parent_of and not self._aborting:
            self._subtask_ended(tid, now)

    # ----- recovery of failed tasks (see core.recovery_policy) ---------------------------

    def _recover(self, tid: str, step: Step, error: str, attempt: int, now: float,
                 outcome: Outcome | None) -> None:
        """Apply one recovery step to a task that failed (RUNNING), or to a decomposed
        parent whose decomposition failed (RETRYING); each step writes one note."""
        while isinstance(step, Fallback | Escalate):
            try:
                self.jobs.rebind(tid, step.agent)
                break
            except OrchestratorError as problem:
                self.record.note(f"recovery: {tid} cannot run with {step.agent}: {problem}",
                                 tid)
                if isinstance(step, Escalate):
                    step = GiveUp(f"cannot escalate to {step.agent}")
                else:
                    self.failure_recovery.unusable(tid, step.agent)
                    step = self.failure_recovery.next_step(tid, attempt)
        quiet = isinstance(step, GiveUp) and self.failure_recovery.config is None \
            and not self.failure_recovery.progress(tid).decomposition
        if not quiet:
            self.record.note(self.failure_recovery.describe(tid, step, error, attempt), tid)
        if isinstance(step, RetrySame):
            self.record.set_task(tid, T.RETRYING, f"{error}; retry in {step.delay:g} s", now)
            loop = asyncio.get_running_loop()
            self._retry_timers[tid] = loop.call_later(step.delay, self._events.put_nowait,
                                                      RetryDue(tid))
        elif isinstance(step, Fallback | Escalate):
            how = "falls back to" if isinstance(step, Fallback) else "escalates to"
            self.writer.add(records.SET_TASK_AGENT, (step.agent, now, self.session_id, tid))
            if self.states[tid] == T.RUNNING:
                self.record.set_task(tid, T.RETRYING, f"{error}; {how} {step.agent}", now)
            self.record.set_task(tid, T.READY, f"{step.agent} takes over", now)
            self._push(tid)
        elif isinstance(step, Decompose):
            self.record.set_task(tid, T.RETRYING, f"{error}; its decomposition runs instead: "
                                                  + ", ".join(step.subtasks), now)
            for sub in step.subtasks:
                self._waiting[sub] -= 1
                if self._waiting[sub] == 0 and self.states[sub] == T.PENDING:
                    self.record.set_task(sub, T.READY, f"{tid} failed; its decomposition runs",
                                         now)
                    self._push(sub)
            self._check_decomposition(tid, now)
        else:
            self._fail(tid, error, outcome, now)
            if isinstance(step, PauseForUser):
                self.request(Control("pause", reason=step.why))

    def _fail(self, tid: str, error: str, outcome: Outcome | None, now: float) -> None:
        """The task has failed for good: its dependents are skipped."""
        if self.states[tid] == T.RETRYING:  # a parent whose decomposition failed
            row = self.record.rows[tid]
            row.error, row.finished_at = error, now
            self.record.set_task(tid, T.CANCELLED, f"failed; {error}", now)
        else:
            assert outcome is not None
            self.record.finish_task(tid, T.FAILED, outcome, error, now)
        self._failures.append(tid)
        self._skip_waiting_on(tid, f"dependency {tid} failed", now)

    def _release_dependents(self, tid: str, reason: str, now: float) -> None:
        """`tid` is done with (succeeded, or recovered by its decomposition): its dependents
        may become ready, and its decomposition's subtasks are not needed."""
        parent_of = self.failure_recovery.parent_of
        for dependent in self.plan.graph.succ[tid]:
            if parent_of and parent_of.get(dependent) == tid:
                if self.states[dependent] == T.PENDING:
                    self.record.set_task(dependent, T.SKIPPED, f"not needed: {tid} succeeded",
                                         now)
                continue
            self._waiting[dependent] -= 1
            if self._waiting[dependent] == 0 and self.states[dependent] == T.PENDING:
                self.record.set_task(dependent, T.READY, reason, now)
                self._push(dependent)

    def _subtask_ended(self, sub: str, now: float) -> None:
        parent = self.failure_recovery.parent_of[sub]
        if self.failure_recovery.progress(parent).decomposition == "running":
            self._check_decomposition(parent, now)

    def _check_decomposition(self, parent: str, now: float) -> None:
        """When all of a parent's subtasks succeeded, they stand in for it; when one failed,
        the parent's recovery goes on."""
        subtasks = self.plan.tasks[parent].decompose
        failed = next((sub for sub in subtasks
                       if self.states[sub] in (T.FAILED, T.SKIPPED, T.CANCELLED)), None)
        progress = self.failure_recovery.progress(parent)
        if failed is not None:
            progress.decomposition = "failed"
            for sub in subtasks:
                if self.states[sub] == T.PENDING:
                    self.record.set_task(sub, T.SKIPPED, f"the decomposition of {parent} "
                                                         f"failed at {failed}", now)
            cause = self.record.rows[failed].error or self.states[failed]
            attempt = self.record.rows[parent].attempts
            self._recover(parent, self.failure_recovery.next_step(parent, attempt),
                          f"its decomposition failed at {failed}: {cause}", attempt, now, None)
        elif all(self.states[sub] == T.SUCCEEDED for sub in subtasks):
            progress.decomposition = "recovered"
            error = self.jobs.last_errors.get(parent) or "failed"
            row = self.record.rows[parent]
            row.result, row.finished_at = f"{error}; recovered by its decomposition", now
            self.record.set_task(parent, T.CANCELLED, "failed; recovered by its decomposition "
                                                      f"({', '.join(subtasks)} succeeded)", now)
            self.record.note(f"recovery: {parent} failed; recovered by its decomposition "
                             f"({len(subtasks)} subtask(s) succeeded)", parent)
            self._release_dependents(
                parent, f"dependencies met ({parent} recovered by its decomposition)", now)

    def _skip_waiting_on(self, tid: str, reason: str, now: float) -> None:
        """Skip the tasks still pending that wait on `tid`, directly or not (ready ones are
        queued already and run)."""
        for dependent in _descendants(self.plan, tid):
            if self.states[dependent] == T.PENDING:
                self.record.set_task(dependent, T.SKIPPED, reason, now)

    def _recovered_decompositions(self) -> set[str]:
        """On a resumed run: the parents recovered by their decomposition, whose dependents
        wait for them no longer."""
        recovered = set()
        for task in self.plan.tasks.values():
            if task.decompose and self.states[task.id] == T.CANCELLED and all(
                    self.states[sub] == T.SUCCEEDED for sub in task.decompose):
                recovered.add(task.id)
                self.failure_recovery.progress(task.id).decomposition = "recovered"
                for dependent in self.plan.graph.succ[task.id]:
                    if dependent not in task.decompose:
                        self._waiting[dependent] -= 1
        return recovered

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
            if self.checkpoint is not None:
                self._track(self._take_checkpoint("pause", "on pause"), "checkpoint on pause")
            stopped = 0
            for tid, attempt in self._running.items():
                if not attempt.paused and attempt.handle is not None and attempt.handle.pause():
                    attempt.paused = True
                    stopped += 1
                    self.record.set_task(tid, T.PAUSED, "session paused", now)
            return f"paused; {stopped} agent process group(s) stopped"
        if action == "resume":
            if not self._paused:
                return f"not resumed: session is {self.session_state}"
            if not self.jobs.workspace.is_dir():
                return (f"refused: the workspace {self.jobs.workspace} is still missing; "
                        "bring it back first, or abort")
            self._paused = False
            self._pressure_session = False
            self._set_session(S.EXECUTING, event.reason, now)
            for tid, attempt in self._running.items():
                if attempt.paused and attempt.handle is not None \
                        and tid not in self._pressure_held:
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
            self.user_limit = limit
            self.writer.add(records.SET_SESSION_LIMIT, (limit, now, self.session_id))
            if self._pressure_limit is not None and limit > self._pressure_limit:
                self.parallel_limit = self._pressure_limit
                return (f"parallel limit set to {limit}; {self._pressure_limit} until "
                        "resources recover")
            self.parallel_limit = limit
            return f"parallel limit set to {limit}"
        return f"refused: unknown action {action!r}"

    # ----- resource pressure (see core.pressure) ----------------------------------------

    def pressure_work(self) -> Work | None:
        """What the pressure policy acts on, or None while it must not act (the user paused
        the session, it is aborting or waiting for decisions)."""
        if self._aborting or not (self.session_state == S.EXECUTING
                                  or (self._paused and self._pressure_session)):
            return None
        running, held = [], []
        for tid, attempt in self._running.items():
            handle = attempt.handle
            view = RunningTask(tid, self.plan.tasks[tid].priority, self._bottom[tid],
                               handle is not None and handle.pid is not None)
            if tid in self._pressure_held:
                held.append(view)
            elif not attempt.paused and self.states[tid] == T.RUNNING:
                running.append(view)
        return Work(tuple(running), tuple(held), self.parallel_limit, self.user_limit)

    def apply_pressure(self, action: Action, reading: Pressure, cause: str) -> str:
        """Carry out one step of the pressure policy; `cause` names the resource short
        (`memory`, `disk`, ...). Writes one note and returns its text."""
        now = time.time()
        if isinstance(action, PauseTasks):
            done = self._pressure_pause(action, cause, now)
        elif isinstance(action, ResumeTasks):
            done = self._pressure_resume(action, now)
        elif isinstance(action, SetLimit):
            old, self.parallel_limit = self.parallel_limit, action.limit
            self._pressure_limit = None if action.restored else action.limit
            done = f"parallel limit {old} -> {action.limit}" + (
                " (your limit again)" if action.restored
                else " (one task at a time)" if action.limit == 1 else "")
        elif isinstance(action, PauseSession):
            outcome = self._apply_control(
                Control("pause", reason=f"resource exhaustion: {describe(reading)}"), now)
            self._pressure_session = outcome.startswith("paused")
            done = f"session {outcome}"
        else:
            assert isinstance(action, ResumeSession)
            if self._pressure_session and self._paused:
                done = "session " + self._apply_control(
                    Control("resume", reason=f"resources recovered: {describe(reading)}"), now)
            else:
                done = "the session was resumed already"
            self._pressure_session = False
        text = f"resources: {describe(reading)}; {done}"
        self.record.note(text, action.task_ids[0] if isinstance(action, PauseTasks | ResumeTasks)
                         and len(action.task_ids) == 1 else None)
        self._events.put_nowait(WAKE)
        return text

    def _pressure_pause(self, action: PauseTasks, cause: str, now: float) -> str:
        paused = []
        for tid in action.task_ids:
            attempt = self._running.get(tid)
            if attempt is None or attempt.paused or self.states[tid] != T.RUNNING \
                    or attempt.handle is None or not attempt.handle.pause():
                continue
            attempt.paused = True
            self._pressure_held.add(tid)
            self.record.set_task(tid, T.PAUSED, f"{cause} pressure: paused, lower priority "
                                                f"than {action.kept}", now)
            paused.append(f"{tid} (priority {self.plan.tasks[tid].priority})")
        if not paused:
            return f"nothing to pause ({action.kept or 'no task'} keeps running)"
        return "paused " + ", ".join(paused)

    def _pressure_resume(self, action: ResumeTasks, now: float) -> str:
        resumed = []
        for tid in action.task_ids:
            if tid not in self._pressure_held:
                continue
            self._pressure_held.discard(tid)
            attempt = self._running.get(tid)
            if attempt is None or not attempt.paused or attempt.handle is None or self._paused:
                continue  # a paused session resumes it with the others
            attempt.handle.resume()
            attempt.paused = False
            self.record.set_task(tid, T.RUNNING, "resources recovered: resumed"
                                 if action.level == 0 else "resumed: no other task runs", now)
            resumed.append(tid)
        if not resumed:
            return "nothing to resume"
        return "resumed " + ", ".join(resumed) + (
            "" if action.level == 0 else " (no other task was running)")

    # ----- ending ------------------------------------------------------------------------

    def _final_state(self) -> SessionState | None:
        if self._running or self._retry_timers:
            return None
        if self._aborting:
            return S.ABORTED
        if len(self._ready) or self._paused or self._held:
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

    def _workspace_gone(self, tid: str, now: float) -> None:
        """A task failed because its workspace disappeared (deleted, unmounted): not its
        fault. It waits to run again, and the session pauses until the folder is back."""
        self.record.set_task(tid, T.READY, "its workspace disappeared; it runs again when "
                                           "the workspace is back", now)
        self._push(tid)
        if not self._paused and self.session_state == S.EXECUTING:
            self._paused = True
            reason = (f"the workspace {self.jobs.workspace} is gone (deleted or unmounted): "
                      "bring it back, then resume; or abort")
            self._set_session(S.PAUSED, reason, now)
            self.record.note(reason)
            if not self.writer.path.exists():
                self._track(self._rescue_database(), "rescue the database")

    async def _rescue_database(self) -> None:
        """The database file went with the workspace: save what it holds before the user
        loses it with this process."""
        try:
            target = await asyncio.to_thread(rescue_path, self.session_id)
            await self.writer.copy_to(target)
            self.record.note(f"the database {self.writer.path} was deleted with the "
                             f"workspace; everything recorded is saved in {target}: carry on "
                             f"with `--db {target}`")
        except (OSError, sqlite3.Error, StoreError) as error:
            self.record.note(f"the database {self.writer.path} was deleted and could not be "
                             f"saved elsewhere: {error}")

    # ----- automatic checkpoints ---------------------------------------------------------

    async def _begin_phase(self, phase: str) -> None:
        """Checkpoint before the first task of `phase` starts, then let its tasks run."""
        await self._take_checkpoint(f"phase-{phase}", f"phase {phase} begins")
        self._phases_begun.add(phase)
        for tid in self._held.pop(phase, []):
            if self.states[tid] == T.READY:
                self._push(tid)
        self._events.put_nowait(WAKE)

    async def _take_checkpoint(self, name: str, reason: str) -> None:
        """Commit what is pending, then checkpoint; a failure is noted, not fatal."""
        assert self.checkpoint is not None
        try:
            await self._commit()
            taken = await self.checkpoint(name, reason)
            self.record.note(f"checkpoint {taken}: {reason}")
        except Exception as error:  # the run goes on without this checkpoint
            self.record.note(f"no checkpoint ({reason}): {error}")

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
        phase = task.phase
        if phase is not None and self.checkpoint is not None and \
                phase not in self._phases_begun:
            held = self._held.setdefault(phase, [])
            held.append(tid)
            if len(held) == 1:
                self._track(self._begin_phase(phase), f"checkpoint before phase {phase}")
            return
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
        recovered = self._recovered_decompositions()
        for tid, state in list(self.states.items()):
            if state in (T.FAILED, T.SKIPPED, T.CANCELLED) and tid not in recovered:
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


