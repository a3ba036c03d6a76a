"""One session's run: the dispatch loop that claims ready tasks, starts them and records ends.

Durability: a task's `running` state and attempt row are committed before its process
starts; a completion is committed in the same transaction that makes its dependents ready,
before any of them starts. Everything else is group-committed by the writer.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import deque
from collections.abc import Mapping

from orchestrator_tui.core.admission import (
    Need,
)
from orchestrator_tui.core.errors import StoreError
from orchestrator_tui.core.plan import Plan
from orchestrator_tui.core.policy import Candidate, ReadyQueue
from orchestrator_tui.core.remaining import LiveRemaining, Remaining
from orchestrator_tui.core.states import (
    DONE_TASK_STATES,
    SessionState,
    TaskState,
)
from orchestrator_tui.engine.dispatch import (
    Dispatcher,
    agent_limits,
    check_mode,
    resource_admission,
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
from orchestrator_tui.engine.execution_base import Checkpointer
from orchestrator_tui.engine.failure_recovery import FailureRecovery
from orchestrator_tui.engine.failures import FailureHandling
from orchestrator_tui.engine.jobs import JobFactory
from orchestrator_tui.engine.launch import AttemptLauncher
from orchestrator_tui.engine.record import SessionRecord
from orchestrator_tui.engine.runners.base import Handle
from orchestrator_tui.engine.steering import Steering
from orchestrator_tui.store import crashpoints
from orchestrator_tui.store.writer import Writer

T, S = TaskState, SessionState
RESULT_CHARS = 2000
"""Most characters of a result or error carried by a task event."""


class Execution(Dispatcher, FailureHandling, Steering, AttemptLauncher):
    """Runs one session's plan to its end, or until it is paused, aborted or crashes."""

    def __init__(self, *, session_id: str, plan: Plan, writer: Writer, jobs: JobFactory,
                 parallel_limit: int, session_state: SessionState = S.PLANNING,
                 task_states: Mapping[str, TaskState] | None = None,
                 attempts: Mapping[str, int] | None = None,
                 estimates: Mapping[str, float] | None = None, grace: float = 5.0,
                 boot_id: str = "",
                 success_rates: Mapping[str, tuple[int, int]] | None = None,
                 mode: str = "list") -> None:
        self.mode = check_mode(mode)
        """`list`: a task starts once its dependencies are done; `levels`: only tasks of
        the lowest unfinished level start (a barrier per level)."""
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
        self.remaining: LiveRemaining | None = None
        """The time left, from history recorded before the session (the engine sets it
        when there is any); snapshots carry its figures."""
        self._init_scheduling(plan, jobs)

    def _init_scheduling(self, plan: Plan, jobs: JobFactory) -> None:
        """Resources, per-agent limits and queues, the pool and the levels."""
        self.admission = resource_admission(plan, jobs)
        """The resources tasks need and the machine has; None when nothing declares any
        (then only the parallel limit counts)."""
        self._held_needs: dict[str, Need] = {}
        self._agent_of: dict[str, str | None] = {t.id: t.agent for t in plan.tasks.values()}
        self._agent_limits = agent_limits(plan, jobs)
        self._agent_running: dict[str, str] = {}
        """The agent each running task holds a slot of."""
        self.steals: dict[str, int] = {}
        """How many tasks each agent took from another's queue."""
        self.pool_dynamic = False
        """Whether the pool's size follows the machine's load (`engine.pool_monitor`)."""
        self._levels: list[list[str]] = [[] for _ in range(plan.level_count)]
        for tid in plan.order:
            self._levels[plan.levels[tid]].append(tid)
        self._level = 0

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
        now = time.time()
        return Snapshot(self.session_id, self.session_state, len(self.plan.tasks),
                        dict(self.counts), running, self.parallel_limit, self.started_at,
                        now, tuple(self.log)[-20:], self.record.seq, self._remaining(now))

    def _remaining(self, now: float) -> Remaining | None:
        """The predicted time left now (None: no data yet)."""
        if self.remaining is None:
            return None
        counted = self.remaining.counted_down(now)
        if counted is not None:
            return counted
        finished = {tid for tid, state in self.states.items() if state in DONE_TASK_STATES}
        running = {tid: now - att.started_at for tid, att in self._running.items()}
        return self.remaining.estimate(finished, running, self.parallel_limit, now)

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
        pred = self.plan.graph.pred
        succeeded = {tid for tid, state in self.states.items() if state == T.SUCCEEDED}
        for tid in self.plan.order:
            deps = pred[tid]
            self._waiting[tid] = len(deps) - len(succeeded.intersection(deps)) \
                if succeeded else len(deps)
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
        try:  # the loop's first batch commits these rows, before anything starts
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
                committed = self.writer.committed()
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
        if attempt is not None:
            self._release_slot(tid)
        if attempt is None or attempt.number != event.attempt:
            return
        if outcome.timed_out and attempt.timeout is not None and attempt.timeout.learned:
            outcome = dataclasses.replace(
                outcome, error=f"{outcome.error} ({attempt.timeout.describe()})")
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
            if record.subscribed:
                record.publish("task_completed", {
                    "task": tid, "agent": self._agent_of.get(tid), "attempt": event.attempt,
                    "result": (outcome.result or "")[:RESULT_CHARS]}, now)
            if self._agent_of.get(tid) is not None:
                self._hand_over(tid, now)
            self._release_dependents(tid, f"dependencies met ({tid} succeeded)", now)
            if (agent := self.failure_recovery.switched_to(tid)) is not None:
                record.note(f"recovery: {tid} succeeded with {agent}", tid)
        elif outcome.cancelled or self._aborting:
            record.finish_task(tid, T.CANCELLED, outcome, outcome.error or "cancelled", now)
        elif outcome.lost:  # the machine running it went away: as after a crash
            again = self.jobs.idempotent(self.plan.tasks[tid])
            record.set_task(tid, T.READY if again else T.INTERRUPTED,
                            f"{outcome.error}; " + ("it runs again (idempotent)" if again else
                                                    "not idempotent: waits for your decision"),
                            now)
            if again:
                self._push(tid)
        elif not self.jobs.workspace.is_dir():
            self._workspace_gone(tid, now)
        else:
            self.jobs.last_errors[tid] = outcome.error
            agent_before = self._agent_of.get(tid)
            step = self.failure_recovery.next_step(tid, event.attempt)
            self._recover(tid, step, outcome.error or "failed", event.attempt, now, outcome)
            if record.subscribed:
                failure = {"task": tid, "agent": agent_before, "attempt": event.attempt,
                           "error": (outcome.error or "failed")[:RESULT_CHARS],
                           "state": self.states[tid], "next_agent": self._agent_of.get(tid)}
                record.publish("task_failed", failure, now)
                if agent_before is not None:  # the same failure, for who follows agents
                    record.publish("agent_failed", failure, now)
        if tid in self.failure_recovery.parent_of and not self._aborting:
            self._subtask_ended(tid, now)

    def _hand_over(self, tid: str, now: float) -> None:
        """Offer the messages the task's agent got while the task ran, and has not
        acknowledged, to the agents of its dependents (other than itself): copies, one per
        agent (see `store.bus_events.HAND_OVER`)."""
        agent = self._agent_of[tid]
        parent_of = self.failure_recovery.parent_of
        targets = sorted({target for dep in self.plan.graph.succ[tid]
                          if (target := self._agent_of.get(dep)) is not None
                          and target != agent and parent_of.get(dep) != tid})
        if targets and agent is not None:
            since = self.record.first_started.get(tid, self.record.rows[tid].started_at or now)
            self.record.hand_over(agent, targets, since, now)

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
        for dependent in self.plan.descendants(tid):
            if self.states[dependent] in (T.PENDING, T.READY):
                self.record.set_task(dependent, T.SKIPPED, f"dependency {tid} failed", now)

    def _skip_after_failed_dependencies(self, now: float) -> None:
        recovered = self._recovered_decompositions()
        for tid, state in list(self.states.items()):
            if state in (T.FAILED, T.SKIPPED, T.CANCELLED) and tid not in recovered:
                self._skip_dependents(tid, now)
