"""Choosing what starts: free slots, declared resources, per-agent limits, work stealing
between agents that share a capability, a barrier per level in `levels` mode, and the
pool's size."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping

import psutil

from orchestrator_tui.core.admission import (
    Admission,
    Need,
    check_fits,
    fits,
    machine_capacity,
    normalise,
    parse_resources,
    task_need,
)
from orchestrator_tui.core.errors import OrchestratorError
from orchestrator_tui.core.plan import Plan
from orchestrator_tui.core.policy import Candidate, free_slots
from orchestrator_tui.core.pool import PoolWork, Resize
from orchestrator_tui.core.simulate import MODES
from orchestrator_tui.core.states import (
    DONE_TASK_STATES,
    SessionState,
    TaskState,
)
from orchestrator_tui.core.stealing import AgentSlots, Queued, Steal, plan_steals
from orchestrator_tui.engine.events import (
    WAKE,
    Attempt,
)
from orchestrator_tui.engine.execution_base import ExecutionParts
from orchestrator_tui.engine.jobs import JobFactory
from orchestrator_tui.store import records

T, S = TaskState, SessionState
STOLEN = "stolen from"
"""The words of a stolen task's `running` transition between the thief and the victim."""


class Dispatcher(ExecutionParts):
    """The part of an execution that claims ready tasks (a mixin of `Execution`)."""

    def _dispatch(self) -> list[str]:
        if self._paused or self._aborting:
            return []
        slots = free_slots(len(self._running), self.parallel_limit, self.max_concurrent)
        if not slots or not len(self._ready):
            return []
        now = time.time()
        if self.admission is not None or self._agent_limits or self.mode == "levels":
            return self._dispatch_constrained(slots, now)
        started = []
        for candidate in self._ready.take(slots):
            tid = candidate.task_id
            attempt = self._running[tid] = Attempt(self.record.start_task(tid, now), now,
                                                   timeout=self.jobs.timeout(self.plan.tasks[tid]))
            self.record.touch_attempt(tid, attempt)
            started.append(tid)
        return started

    def _dispatch_constrained(self, slots: int, now: float) -> list[str]:
        """Dispatch under resources, per-agent limits, stealing and the level barrier: in
        policy order, each task that may start now starts; then idle agents steal."""
        ordered = self._ready.take(len(self._ready))
        level = self._barrier_level() if self.mode == "levels" else None
        free = self.admission.free() if self.admission is not None else None
        agent_free = {name: limit - sum(1 for a in self._agent_running.values() if a == name)
                      for name, limit in self._agent_limits.items()}
        chosen: list[tuple[str, Need, str | None]] = []
        kept: dict[str, Candidate] = {}
        queues: dict[str, list[Queued]] = {}
        for candidate in ordered:
            tid = candidate.task_id
            kept[tid] = candidate
            if len(chosen) >= slots or (level is not None and self.plan.levels[tid] != level):
                continue
            agent = self._agent_of[tid]
            if agent is not None and agent_free.get(agent, 1) < 1:
                queues.setdefault(agent, []).append(
                    Queued(tid, self._bottom[tid], self.plan.position[tid]))
                continue
            need = self._need(tid, agent)
            if free is not None and not fits(need, free):
                continue
            chosen.append((tid, need, None))
            _take(free, need)
            if agent in agent_free:
                agent_free[agent] -= 1
        if queues and len(chosen) < slots:
            self._steal(queues, agent_free, free, slots, chosen, now)
        if not chosen and not self._running:
            # Capacity measured since planning may have shrunk below every need: never
            # leave the session with nothing running while a task of its level waits.
            first = next((c for c in ordered if level is None
                          or self.plan.levels[c.task_id] == level), None)
            if first is not None:
                agent = self._agent_of[first.task_id]
                chosen.append((first.task_id, self._need(first.task_id, agent), None))
        started = []
        for tid, need, victim in chosen:
            del kept[tid]
            if victim is None:
                number = self.record.start_task(tid, now)
            else:
                number = self._start_stolen(tid, victim, now)
            attempt = self._running[tid] = Attempt(number, now,
                                                   timeout=self.jobs.timeout(self.plan.tasks[tid]))
            self.record.touch_attempt(tid, attempt)
            self._hold_slot(tid, need)
            started.append(tid)
        for candidate in kept.values():
            self._ready.push(candidate)
        return started

    def _steal(self, queues: dict[str, list[Queued]], agent_free: dict[str, int],
               free: Need | None, slots: int, chosen: list[tuple[str, Need, str | None]],
               now: float) -> None:
        """Idle agents take queued tasks of agents they can stand in for (into `chosen`)."""
        for steal in plan_steals(queues, self._agent_slots(agent_free, slots - len(chosen))):
            if len(chosen) >= slots:
                break
            need = self._need(steal.task_id, steal.thief)
            if free is not None and not fits(need, free):
                continue
            if not self._rebind_stolen(steal, now):
                continue
            chosen.append((steal.task_id, need, steal.victim))
            _take(free, need)
            if steal.thief in agent_free:
                agent_free[steal.thief] -= 1

    def _barrier_level(self) -> int:
        """The lowest level with a task not done (one whose decomposition runs instead of
        it does not hold the barrier)."""
        while self._level < len(self._levels) and all(
                self.states[tid] in DONE_TASK_STATES for tid in self._levels[self._level]):
            self._level += 1
        progress = self.failure_recovery.progress
        for level in range(self._level, len(self._levels)):
            for tid in self._levels[level]:
                if self.states[tid] not in DONE_TASK_STATES and not (
                        self.states[tid] == T.RETRYING and self.plan.tasks[tid].decompose
                        and progress(tid).decomposition == "running"):
                    return level
        return len(self._levels)

    def _need(self, tid: str, agent: str | None) -> Need:
        """What a task needs when `agent` runs it."""
        if self.admission is None:
            return {}
        return task_need(self.plan.tasks[tid].resources, _agent_resources(self.jobs, agent))

    def _hold_slot(self, tid: str, need: Need) -> None:
        if self.admission is not None:
            self.admission.hold(need)
            self._held_needs[tid] = need
        agent = self._agent_of[tid]
        if agent is not None and agent in self._agent_limits:
            self._agent_running[tid] = agent

    def _release_slot(self, tid: str) -> None:
        need = self._held_needs.pop(tid, None)
        if need is not None and self.admission is not None:
            self.admission.release(need)
        self._agent_running.pop(tid, None)

    def _agent_slots(self, agent_free: Mapping[str, int], slots: int) -> dict[str, AgentSlots]:
        """The plan's agents as stealing sees them; an agent without a limit has every free
        slot of the session."""
        agents: dict[str, AgentSlots] = {}
        for name in {a for a in self._agent_of.values() if a is not None}:
            try:
                spec = self.jobs.registry.get(name)
            except OrchestratorError:
                continue
            agents[name] = AgentSlots(name, frozenset(spec.capabilities), spec.runner,
                                      agent_free.get(name, slots), spec.archived)
        return agents

    def _rebind_stolen(self, steal: Steal, now: float) -> bool:
        """Bind a stolen task to its thief; False (with a note) when the thief cannot run
        it."""
        try:
            self.jobs.rebind(steal.task_id, steal.thief)
        except OrchestratorError as problem:
            self.record.note(f"steal: {steal.thief} cannot run {steal.task_id}: {problem}",
                             steal.task_id)
            return False
        self._agent_of[steal.task_id] = steal.thief
        self.writer.add(records.SET_TASK_AGENT, (steal.thief, now, self.session_id,
                                                 steal.task_id))
        self.steals[steal.thief] = self.steals.get(steal.thief, 0) + 1
        return True

    def _start_stolen(self, tid: str, victim: str, now: float) -> int:
        """Start a stolen task; its `running` transition names thief and victim, which is
        how `parallel status` counts steals from the database."""
        row = self.record.rows[tid]
        row.attempts += 1
        row.started_at, row.finished_at = now, None
        thief = self._agent_of[tid]
        self.record.set_task(tid, T.RUNNING, f"attempt {row.attempts} started by {thief}, "
                                             f"{STOLEN} {victim}'s queue", now)
        self.record.note(f"steal: {thief} took {tid} from {victim}'s queue", tid)
        return row.attempts

    # ----- resources and the pool's size -------------------------------------------------

    def refresh_capacity(self, memory_available_mb: float) -> None:
        """The machine's available memory, sampled again: capacity is it plus what the
        running tasks declared (a `memory_mb` the user set in `resources` stays)."""
        admission = self.admission
        if admission is None or "memory_mb" in self._custom_resources():
            return
        admission.capacity["memory_mb"] = memory_available_mb + admission.used.get(
            "memory_mb", 0.0)
        self._events.put_nowait(WAKE)

    def _custom_resources(self) -> Need:
        return parse_resources(self.jobs.settings.get("resources", ""))

    def pool_work(self) -> PoolWork | None:
        """What dynamic pool sizing sizes, or None while it must not act: the pool is
        fixed, the session is not executing, or resource pressure holds the limit (pressure
        wins)."""
        if not self.pool_dynamic or self.session_state != S.EXECUTING or self._aborting \
                or self._pressure_limit is not None or self._pressure_held:
            return None
        return PoolWork(self.parallel_limit, self.user_limit, len(self._running),
                        len(self._ready))

    def start_pool(self, size: int) -> None:
        """Let the load size the pool from now on, starting at `size` (pressure's limit, if
        any, stays until resources recover)."""
        self.pool_dynamic = True
        if self._pressure_limit is None:
            self.parallel_limit = max(1, min(size, self.user_limit))

    def resize_pool(self, resize: Resize) -> str:
        """Apply a pool size the load asked for; writes one note and returns its text."""
        self.parallel_limit = max(1, min(resize.new, self.user_limit))
        text = str(resize)
        self.record.note(text)
        self._events.put_nowait(WAKE)
        return text


def check_mode(mode: str) -> str:
    """`mode` if the execution knows it; else an error naming the modes."""
    if mode not in MODES:
        raise OrchestratorError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
    return mode


def _take(free: Need | None, need: Need) -> None:
    if free is not None:
        for name, amount in need.items():
            free[name] = free.get(name, 0.0) - amount


def _agent_resources(jobs: JobFactory, agent: str | None) -> Need:
    if agent is None:
        return {}
    try:
        spec = jobs.registry.get(agent)
    except OrchestratorError:
        return {}
    return normalise(spec.resources, f"agent {agent} ({spec.path}): resources")


def resource_admission(plan: Plan, jobs: JobFactory) -> Admission | None:
    """The admission of a plan's tasks: None when neither a task, its agent nor the user's
    `resources` setting declares resources. Raises ResourceError, naming the task and the
    resource, when a task needs more than this machine has at all."""
    if jobs.ray is not None:
        return None  # Ray places (and queues) tasks by the cluster's own resources
    custom = parse_resources(jobs.settings.get("resources", ""))
    agents = {t.agent for t in plan.tasks.values() if t.agent is not None}
    declared = bool(custom) or any(t.resources for t in plan.tasks.values()) or any(
        _agent_resources(jobs, agent) for agent in agents)
    if not declared:
        return None
    capacity = machine_capacity(os.cpu_count() or 1,
                                psutil.virtual_memory().available / 2**20, custom)
    for task in plan.tasks.values():
        where = f"task {task.id!r} of intent {plan.intent.name!r}: resources"
        need = task_need(normalise(task.resources, where), _agent_resources(jobs, task.agent))
        check_fits(task.id, need, capacity)
    return Admission(capacity)


def agent_limits(plan: Plan, jobs: JobFactory) -> dict[str, int]:
    """The `max_concurrent` of the plan's agents that set one (a whole number, 1 or more;
    anything else is ignored)."""
    limits: dict[str, int] = {}
    for agent in {t.agent for t in plan.tasks.values() if t.agent is not None}:
        try:
            value = jobs.registry.get(agent).extra.get("max_concurrent")
        except OrchestratorError:
            continue
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            limits[agent] = value
    return limits
