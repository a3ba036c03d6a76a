"""The engine's facade: open the database, start sessions, run them, take control requests."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import aiosqlite

from orchestrator_tui.core.errors import StoreError
from orchestrator_tui.core.models import TaskSpec
from orchestrator_tui.core.plan import Plan
from orchestrator_tui.core.predict import Predictor, kind_counts, task_estimates, task_key
from orchestrator_tui.core.recovery_policy import uses_history
from orchestrator_tui.core.refine import refine
from orchestrator_tui.core.remaining import LiveRemaining
from orchestrator_tui.core.states import SessionState, TaskState
from orchestrator_tui.core.timeouts import Timeout, TimeoutRule
from orchestrator_tui.engine.checkpoints import create_checkpoint
from orchestrator_tui.engine.dispatch import check_mode, resource_admission
from orchestrator_tui.engine.events import Control
from orchestrator_tui.engine.execution import Execution
from orchestrator_tui.engine.jobs import JobFactory
from orchestrator_tui.engine.pool_monitor import PoolConfig, watch_pool
from orchestrator_tui.engine.pressure_monitor import MonitorConfig, watch
from orchestrator_tui.engine.processes import process_start_time
from orchestrator_tui.engine.recovery import Settled, leftover_pids, settle, stop_leftovers
from orchestrator_tui.engine.registry import Registry
from orchestrator_tui.engine.runners.ray_runner import RayRunner, executor_runner
from orchestrator_tui.engine.settings import effective
from orchestrator_tui.store import bus_events, queries, records
from orchestrator_tui.store.backup import DEFAULT_EVERY_MINUTES, DEFAULT_KEEP, auto_backup
from orchestrator_tui.store.database import connect
from orchestrator_tui.store.integrity import check_file
from orchestrator_tui.store.queries import SessionRow
from orchestrator_tui.store.writer import Writer

DEFAULT_PARALLEL_LIMIT = 4
CONTROL_POLL_SECONDS = 0.1
HEARTBEAT_SECONDS = 2.0


def new_session_id() -> str:
    """A short, unique, readable session id."""
    return "sess-" + uuid.uuid4().hex[:8]


@dataclass(frozen=True, slots=True)
class SessionRequest:
    """What to run: a plan, where, from which workflow file, how wide."""

    plan: Plan
    workspace: Path
    workflow: str
    parallel_limit: int | None = None
    registry: Registry | None = None
    ray: RayRunner | None = None
    """Run every task as a Ray task through this runner (the `ray` executor)."""
    mode: str = "list"
    """`list` (a task starts once its dependencies are done) or `levels` (level by level)."""


class Engine:
    """One engine start (a boot): a writer, a reader, and the sessions it runs."""

    def __init__(self, db_path: Path, reader: aiosqlite.Connection, writer: Writer,
                 boot_id: str) -> None:
        self.db_path = db_path
        self.reader = reader
        """The engine's own read connection (the writer has its own)."""
        self.writer = writer
        self.boot_id = boot_id
        self.executions: dict[str, Execution] = {}
        self.notes: list[str] = []
        """What the start did that a person may want to know (the backup taken, or why not)."""
        self._heartbeat: asyncio.Task[None] | None = None
        self.pressure = MonitorConfig()
        """How runs watch memory and disk (see `engine.pressure_monitor`)."""
        self.pool = PoolConfig()
        """How runs size their pool (see `engine.pool_monitor`)."""
        self.timeout_rule = TimeoutRule()
        """How a timeout is learned for tasks whose workflow sets none."""

    @classmethod
    async def open(cls, db_path: Path, *, backup_every_minutes: float = DEFAULT_EVERY_MINUTES,
                   keep_backups: int = DEFAULT_KEEP) -> Engine:
        """Open (creating or migrating) the database, check it, back it up when the newest
        backup is older than `backup_every_minutes`, and record this engine's boot.

        Raises:
            StoreError: the database is damaged (`DatabaseCorrupt`, naming the ways out),
                busy, read-only or newer; nothing was written to it then.
        """
        writer = Writer(db_path)  # first: it checks its settings before anything opens
        reader = await connect(db_path)
        notes: list[str] = []
        try:
            report = await asyncio.to_thread(check_file, db_path)
            if not report.ok:
                raise report.as_error()
            try:
                taken = await asyncio.to_thread(auto_backup, db_path,
                                                every_minutes=backup_every_minutes,
                                                keep=keep_backups)
                if taken is not None:
                    notes.append(f"backup written: {taken.path}")
            except StoreError as error:  # a run is still safe without a fresh backup
                notes.append(f"no backup this time: {error}")
            await writer.start()
            boot_id = uuid.uuid4().hex
            now = time.time()
            pid = os.getpid()
            writer.add(records.INSERT_ENGINE,
                       (boot_id, pid, process_start_time(pid) or now, now, now))
            await writer.commit()
        except BaseException:
            with contextlib.suppress(Exception):
                await writer.close()
            await reader.close()
            raise
        engine = cls(db_path, reader, writer, boot_id)
        engine.notes = notes
        engine._heartbeat = asyncio.get_running_loop().create_task(engine._beat())
        return engine

    async def close(self) -> None:
        """Commit what is pending and close the connections (the reader even when that last
        commit fails, say on a full disk; its error is raised then)."""
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
        self.writer.add(records.ENGINE_STOPPED, (time.time(), self.boot_id))
        try:
            await self.writer.close()
        finally:
            await self.reader.close()

    async def __aenter__(self) -> Engine:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def default_parallel_limit(self) -> int:
        """The user's stored parallel limit, else the built-in default."""
        stored = await queries.setting(self.reader, "parallel_limit")
        return int(stored) if stored and stored.isdigit() else DEFAULT_PARALLEL_LIMIT

    async def start(self, request: SessionRequest) -> Execution:
        """Record a new session (IDLE -> PLANNING) with its tasks, ready to run."""
        plan = request.plan
        limit = request.parallel_limit or await self.default_parallel_limit()
        session_id = new_session_id()
        jobs = JobFactory(session_id=session_id, intent=plan.intent.name,
                          workspace=request.workspace, db_path=self.db_path,
                          registry=request.registry,
                          settings=await queries.settings(self.reader), ray=request.ray)
        jobs.bind_all(plan)
        resource_admission(plan, jobs)  # a task needing more than the machine has fails here
        check_mode(request.mode)
        now = time.time()
        w = self.writer
        plan_json = records.to_json(plan.to_dict())
        w.add(records.INSERT_SESSION, (
            session_id, plan.intent.name, request.workflow, str(request.workspace),
            SessionState.PLANNING, plan_json, records.plan_hash(plan_json), limit,
            plan.intent.max_concurrent, self.boot_id, now, now, request.mode))
        records.transition(w, session_id, None, None, SessionState.IDLE, "session created", now)
        records.transition(w, session_id, None, SessionState.IDLE, SessionState.PLANNING,
                           f"planning intent {plan.intent.name} ({len(plan)} tasks)", now)
        records.insert_tasks(w, session_id, (
            (task.id, task.kind, task.agent, TaskState.PENDING, jobs.idempotent(task))
            for task in plan.tasks.values()), now)
        await w.commit()
        predictor, samples = await self._history()
        execution = Execution(session_id=session_id, plan=plan, writer=w, jobs=jobs,
                              parallel_limit=limit, boot_id=self.boot_id,
                              success_rates=await self._success_rates(plan), mode=request.mode,
                              estimates=await self.policy_durations(plan, limit, request.mode,
                                                                    predictor))
        self._arm_history(execution, predictor, samples)
        self._arm_checkpoints(execution, request.workspace, jobs.settings)
        self.executions[session_id] = execution
        return execution

    def _arm_checkpoints(self, execution: Execution, workspace: Path,
                         settings: Mapping[str, str]) -> None:
        """Give the execution its automatic checkpoints, unless the user turned them off."""
        if effective(settings, "auto_checkpoints") == "off":
            return

        async def checkpoint(name: str, reason: str) -> str:
            row = await create_checkpoint(self.db_path, workspace, execution.session_id, name,
                                          reason)
            return row.id
        execution.checkpoint = checkpoint

    async def _history(self, before: float | None = None) -> tuple[Predictor, int]:
        """The duration predictor fitted on attempts that ended before `before`, and its
        number of samples."""
        from orchestrator_tui.engine.learning import load_predictor  # it needs this module

        return await load_predictor(self.reader, before)

    def _arm_history(self, execution: Execution, predictor: Predictor, samples: int) -> None:
        """Give the execution what history predicts: its time remaining and, unless the
        user turned `learned_timeouts` off, timeouts for tasks whose workflow sets none."""
        if not samples:
            return
        execution.remaining = LiveRemaining(execution.plan, predictor)
        if effective(execution.jobs.settings, "learned_timeouts") == "off":
            return
        rule, intent = self.timeout_rule, execution.plan.intent.name
        counts = kind_counts(execution.plan)

        def learned_timeout(task: TaskSpec) -> Timeout | None:
            return rule.seed(predictor.predict(task.kind, task=task_key(intent, task.id),
                                               count=counts[task.kind]))

        execution.jobs.learned_timeout = learned_timeout

    async def learned_durations(self, plan: Plan, predictor: Predictor | None = None,
                                ) -> dict[str, float] | None:
        """Each task's predicted seconds from recorded history (all of it unless a fitted
        `predictor` is given), for the policy's longest remaining path (None without any
        history: every task then counts alike)."""
        if predictor is None:
            predictor, _ = await self._history()
        points = {tid: estimate.point
                  for tid, estimate in task_estimates(plan, predictor).items() if estimate}
        return points or None

    async def policy_durations(self, plan: Plan, parallel_limit: int, mode: str,
                               predictor: Predictor | None = None,
                               ) -> Mapping[str, float] | None:
        """The durations whose bottom levels order the policy: the learned ones, refined by
        replaying the plan in simulation (`core.refine`, off the event loop); None without
        history."""
        learned = await self.learned_durations(plan, predictor)
        if learned is None:
            return None
        return await asyncio.to_thread(refine, plan, learned, parallel_limit, mode=mode)

    async def _success_rates(self, plan: Plan) -> dict[str, tuple[int, int]] | None:
        """The agents' recorded success, read once when the plan's recovery ranks
        fallback agents by it."""
        if not uses_history(plan.intent):
            return None
        return await queries.agent_success_rates(self.reader)

    async def recover(self, session: SessionRow, registry: Registry | None, *,
                      keep_paused: bool = False) -> tuple[Execution, Settled]:
        """Take over a session whose engine is gone (see `engine.recovery`), ready to run.

        `keep_paused`: a session that was PAUSED stays paused (the app brings it back as it
        was); otherwise it carries on.
        """
        stopped = await asyncio.to_thread(stop_leftovers, session.id,
                                          await leftover_pids(self.reader, session.id))
        settled = await self.writer.call(functools.partial(
            settle, session=session, boot_id=self.boot_id, keep_paused=keep_paused))
        settled.stopped = stopped
        plan = settled.plan
        settings = await queries.settings(self.reader)
        jobs = JobFactory(session_id=session.id, intent=plan.intent.name,
                          workspace=Path(session.workspace), db_path=self.db_path,
                          registry=registry, settings=settings,
                          ray=executor_runner(settings))
        jobs.bind_all(plan)
        paused = keep_paused and session.state == SessionState.PAUSED
        state = SessionState.PAUSED if paused else SessionState.PLANNING \
            if session.state == SessionState.PLANNING else SessionState.RECOVERING
        predictor, samples = await self._history(before=session.created_at)
        execution = Execution(session_id=session.id, plan=plan, writer=self.writer, jobs=jobs,
                              parallel_limit=session.parallel_limit, session_state=state,
                              task_states=settled.states, attempts=settled.attempts,
                              mode=session.mode or "list",
                              boot_id=self.boot_id,
                              success_rates=await self._success_rates(plan),
                              estimates=await self.policy_durations(
                                  plan, session.parallel_limit, session.mode or "list",
                                  predictor))
        self._arm_history(execution, predictor, samples)
        execution.record.note(settled.summary())
        self._arm_checkpoints(execution, Path(session.workspace), jobs.settings)
        self.executions[session.id] = execution
        return execution, settled

    async def run(self, execution: Execution) -> SessionState:
        """Run a session to its end, obeying control requests from other processes and,
        unless the `pressure_policy` setting is off, easing off when resources run short."""
        loop = asyncio.get_running_loop()
        helpers = [loop.create_task(self._poll_controls(execution))]
        if effective(execution.jobs.settings, "pressure_policy") == "on":
            helpers.append(loop.create_task(watch(execution, self.pressure)))
        dynamic = effective(execution.jobs.settings, "pool_sizing") == "dynamic"
        if dynamic or execution.admission is not None:
            helpers.append(loop.create_task(watch_pool(execution, self.pool, dynamic=dynamic)))
        try:
            execution.record.subscribe(await self._subscribed_types())
            return await execution.run()
        finally:
            for helper in helpers:
                helper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await helper
            self.executions.pop(execution.session_id, None)

    async def _poll_controls(self, execution: Execution) -> None:
        seen: set[int] = set()
        while True:
            rows = self.writer.peek(queries.OPEN_CONTROLS, (execution.session_id,)) or []
            for row in (queries.ControlRow(*values) for values in rows):
                if row.id not in seen:
                    seen.add(row.id)
                    execution.request(Control(row.action, row.argument, row.id,
                                              reason=f"{row.action} requested from the CLI"))
            await asyncio.sleep(CONTROL_POLL_SECONDS)

    async def _subscribed_types(self) -> list[str]:
        """The event types some active agent listens to (read once a heartbeat)."""
        async with self.reader.execute(bus_events.SUBSCRIBED_TYPES) as cursor:
            return [str(row[0]) for row in await cursor.fetchall()]

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            self.writer.add(records.ENGINE_HEARTBEAT, (time.time(), self.boot_id))
            with contextlib.suppress(Exception):
                await self.writer.commit()
            if self.executions:  # agents register while sessions run: follow them
                with contextlib.suppress(Exception):
                    types = await self._subscribed_types()
                    for execution in list(self.executions.values()):
                        execution.record.subscribe(types)
