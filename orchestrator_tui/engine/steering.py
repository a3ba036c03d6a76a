"""Steering a running session: pause, resume, abort and set-limit requests, decisions on
interrupted tasks, resource pressure, a vanished workspace, and automatic checkpoints."""

from __future__ import annotations

import asyncio
import sqlite3
import time

from orchestrator_tui.core.errors import StoreError
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
from orchestrator_tui.core.states import (
    SessionState,
    TaskState,
)
from orchestrator_tui.engine.events import (
    WAKE,
    Control,
)
from orchestrator_tui.engine.execution_base import ExecutionParts
from orchestrator_tui.store import records
from orchestrator_tui.store.backup import rescue_path

T, S = TaskState, SessionState


class Steering(ExecutionParts):
    """The part of an execution that answers requests and conditions (a mixin of `Execution`)."""

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
            if self.pool_dynamic and limit > self.parallel_limit:
                return (f"parallel limit set to {limit}; the pool grows to it while the "
                        "machine has room")
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
            elif (not attempt.paused and self.states[tid] == T.RUNNING) or self._paused:
                running.append(view)  # (a paused session's tasks resume with it)
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
            if action.task_ids:
                done += "; " + self._pressure_resume(ResumeTasks(action.task_ids, action.level),
                                                     now)
            self._pressure_session = False
        text = f"resources: {describe(reading)}; {done}"
        self.record.publish("resource_alert", {"cause": cause, "reading": describe(reading),
                                               "action": done}, now)
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
