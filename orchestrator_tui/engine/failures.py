"""What happens when a task fails after its retries: the recovery matrix's fallback,
decomposition and escalation steps (see `core.recovery_policy`)."""

from __future__ import annotations

import asyncio

from orchestrator_tui.core.errors import OrchestratorError
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
    SessionState,
    TaskState,
)
from orchestrator_tui.engine.events import (
    Control,
    RetryDue,
)
from orchestrator_tui.engine.execution_base import ExecutionParts
from orchestrator_tui.engine.runners.base import Outcome
from orchestrator_tui.store import records

T, S = TaskState, SessionState


class FailureHandling(ExecutionParts):
    """The part of an execution that applies recovery steps (a mixin of `Execution`)."""

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
            self._agent_of[tid] = step.agent
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
        for dependent in self.plan.descendants(tid):
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
