"""Starting attempts once their `running` rows are committed, and reporting how they end.

Commands of one batch are started right after the commit that recorded them, by the
thread that wrote it (usually the event loop's own), then followed by callbacks; other
runners (python callables, anything that must await to start) each get a task. Whatever
happens, every attempt ends with a `Completion` event for the loop.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections import deque
from collections.abc import Coroutine
from typing import Any

from orchestrator_tui.core.errors import OrchestratorError
from orchestrator_tui.core.plan import Plan
from orchestrator_tui.core.states import TaskState
from orchestrator_tui.engine.events import WAKE, Attempt, Completion, Event
from orchestrator_tui.engine.jobs import JobFactory
from orchestrator_tui.engine.record import SessionRecord
from orchestrator_tui.engine.runners import agent_events
from orchestrator_tui.engine.runners.base import Handle, Job, Outcome, Runner
from orchestrator_tui.store import crashpoints
from orchestrator_tui.store.writer import Writer

PROCESS_START_DELAY = 0.05
"""Seconds after which a still-living process has its start time recorded."""


class AttemptLauncher:
    """The part of an execution that starts attempts (a mixin of `Execution`)."""

    plan: Plan
    jobs: JobFactory
    writer: Writer
    record: SessionRecord
    grace: float
    _running: dict[str, Attempt]
    _events: asyncio.Queue[Event]
    _watchers: set[asyncio.Task[None]]
    _aborting: bool
    _paused: bool
    _fatal: bool
    _unsettled: deque[tuple[str, Attempt]]
    _settle_timer: asyncio.TimerHandle | None

    def _launch(self, tids: list[str], committed: asyncio.Future[None]) -> None:
        """Arrange for the attempts just dispatched to start once their `running` rows are
        committed: commands straight after that commit, by the thread that wrote it, the rest
        from the commit's callback. If the commit fails nothing starts (the commit's own
        callback reports the failure)."""
        commands: dict[Any, list[tuple[str, Attempt, Job]]] = {}
        later: list[tuple[str, Attempt, Runner, Job]] = []
        for tid in tids:
            attempt = self._running[tid]
            try:
                runner, job = self.jobs.job(self.plan.tasks[tid], attempt.number)
            except Exception as error:  # a runner's own failure is the task's failure
                self._ended(tid, attempt.number, Outcome(succeeded=False,
                                                         error=start_error(error)))
                continue
            # Written with the attempt's next row (its pid, or how it ended).
            attempt.input_bytes = job.input_bytes
            if job.stdin is None and hasattr(runner, "launch_all"):
                commands.setdefault(runner, []).append((tid, attempt, job))
            else:
                later.append((tid, attempt, runner, job))
        for runner, batch in commands.items():
            launch = functools.partial(launch_batch, runner, [job for _, _, job in batch])
            spawned = self.writer.then(launch)
            spawned.add_done_callback(functools.partial(self._spawned, runner, batch))
        if later:
            committed.add_done_callback(functools.partial(self._start_tasks, later))

    def _start_tasks(self, entries: list[tuple[str, Attempt, Runner, Job]],
                     committed: asyncio.Future[None]) -> None:
        if committed.cancelled() or committed.exception() is not None:
            return
        for tid, attempt, runner, job in entries:
            if self._aborting:
                self._ended(tid, attempt.number, Outcome(
                    succeeded=False, error="cancelled before it started", cancelled=True))
                continue
            self._track(self._run_attempt(tid, attempt, runner, job), f"task {tid}")

    def _track(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._watchers.add(task)
        task.add_done_callback(self._watchers.discard)

    def _spawned(self, runner: Any, batch: list[tuple[str, Attempt, Job]],
                 spawned: asyncio.Future[list[Any]]) -> None:
        """The commands of a batch have been started (or the commit before them failed)."""
        if spawned.cancelled() or spawned.exception() is not None:
            return
        loop = spawned.get_loop()
        for (tid, attempt, job), item in zip(batch, spawned.result(), strict=True):
            if isinstance(item, Exception):
                self._ended(tid, attempt.number, Outcome(succeeded=False,
                                                         error=start_error(item)))
                continue
            handle = runner.handle(job, item, loop)
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
            # The pid and the start time are written by one sweep a moment later, for the
            # processes that still live (reading a start time blocks while the child is still
            # in exec), or with the attempt's end. Most commands end within that moment: a
            # row of its own for each pid would be a third write per task. A process started
            # just before a crash is found by its `ORCHESTRATOR_SESSION` variable.
            self._unsettled.append((tid, attempt))
            if self._settle_timer is None:
                self._settle_timer = asyncio.get_running_loop().call_later(
                    PROCESS_START_DELAY, self._settle)
        if self._aborting:
            self._launch_terminate(tid, handle)
        elif self._paused and handle.pause():
            attempt.paused = True
            self.record.set_task(tid, TaskState.PAUSED, "session paused", time.time())

    def _ended(self, tid: str, number: int, outcome: Outcome) -> None:
        self._events.put_nowait(Completion(tid, number, outcome))

    def _agent_event(self, tid: str, number: int, runner: str,
                     event: agent_events.AgentEvent) -> None:
        """An agent CLI reported something: a journal note for the task; its session id goes
        into the attempt's row as soon as it is known, so a later attempt can resume it."""
        attempt = self._running.get(tid)
        if attempt is None or attempt.number != number:
            return
        self.record.note(agent_events.describe(runner, event), tid, log=False)
        if isinstance(event, agent_events.Started) and event.session_id \
                and attempt.agent_session != event.session_id:
            attempt.runner, attempt.agent_session = runner, event.session_id
            self.record.touch_attempt(tid, attempt)
            self._events.put_nowait(WAKE)

    def _settle(self) -> None:
        """Record the pids and start times of processes that outlived
        `PROCESS_START_DELAY`."""
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

    def _launch_terminate(self, tid: str, handle: Handle) -> None:
        self._track(handle.terminate(self.grace), f"terminate {tid}")


def launch_batch(runner: Any, jobs: list[Job]) -> list[Any]:
    """Right after the commit of their `running` rows, in the thread that wrote it: start the
    commands of a batch (the crash points `claimed` and `started` are on either side)."""
    crashpoints.reached("claimed")
    started: list[Any] = runner.launch_all(jobs)
    crashpoints.reached("started")
    return started


def start_error(error: Exception) -> str:
    """What to tell the user about a task that could not start."""
    if isinstance(error, OSError):
        what = f"cannot start: {error.strerror or error}"
        return what + (f" ({error.filename})" if error.filename else "")
    if isinstance(error, OrchestratorError):
        return f"cannot start: {error}"
    return f"cannot start: {type(error).__name__}: {error}"
