"""Resource pressure: the pure escalation policy, and the engine easing off real processes
(tasks paused, pool shrunk, session paused with a checkpoint) and undoing it all."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator_tui.core.models import IntentSpec, TaskSpec
from orchestrator_tui.core.plan import Plan
from orchestrator_tui.core.pressure import (
    GB,
    MB,
    Action,
    PauseSession,
    PauseTasks,
    Pressure,
    PressurePolicy,
    ResumeTasks,
    RunningTask,
    SetLimit,
    Thresholds,
    Work,
    choose_to_pause,
    describe,
    is_high,
    is_low,
)
from orchestrator_tui.core.states import SessionState, TaskState
from orchestrator_tui.engine.events import Control
from orchestrator_tui.engine.pressure_monitor import MonitorConfig
from orchestrator_tui.engine.session import Engine, SessionRequest
from orchestrator_tui.engine.settings import save_setting

HIGH = Pressure(0.05, 10 * GB)
MID = Pressure(0.15, 10 * GB)
LOW = Pressure(0.50, 10 * GB)
DWELL = 5.0


# ----- the pure policy ---------------------------------------------------------------------


@dataclass
class Model:
    """The execution as the policy's actions change it."""

    running: dict[str, RunningTask]
    user_limit: int
    held: dict[str, RunningTask] = field(default_factory=dict)
    limit: int = 0
    session_paused: bool = False

    def work(self) -> Work:
        return Work(tuple(self.running.values()), tuple(self.held.values()),
                    self.limit or self.user_limit, self.user_limit)

    def apply(self, action: Action) -> None:
        if isinstance(action, PauseTasks):
            for tid in action.task_ids:
                self.held[tid] = self.running.pop(tid)
        elif isinstance(action, ResumeTasks):
            for tid in action.task_ids:
                self.running[tid] = self.held.pop(tid)
        elif isinstance(action, SetLimit):
            self.limit = action.limit
        else:
            self.session_paused = isinstance(action, PauseSession)
            for tid in getattr(action, "task_ids", ()):
                self.running[tid] = self.held.pop(tid)


tasks_strategy = st.lists(
    st.tuples(st.integers(0, 3), st.floats(0, 100, allow_nan=False), st.booleans()),
    min_size=0, max_size=8).map(lambda rows: {
        f"t{i}": RunningTask(f"t{i}", priority, bottom, pausable)
        for i, (priority, bottom, pausable) in enumerate(rows)})


@settings(max_examples=200, deadline=None)
@given(tasks_strategy)
def test_step_one_never_pauses_the_last_running_task(running: dict[str, RunningTask]) -> None:
    chosen, kept = choose_to_pause(tuple(running.values()))
    assert len(chosen) < max(1, len(running))
    assert kept is None or kept not in chosen
    assert all(running[tid].pausable for tid in chosen)
    if chosen:
        best = min(running.values(), key=lambda task: task.rank)
        assert kept == best.task_id
        assert all(running[tid].rank > best.rank for tid in chosen)


def test_step_one_pauses_lower_priorities_else_the_shortest_path() -> None:
    tasks = (RunningTask("a", 1, 5.0), RunningTask("b", 0, 9.0), RunningTask("c", 0, 1.0))
    assert choose_to_pause(tasks) == (("b", "c"), "a")
    same = (RunningTask("a", 0, 5.0), RunningTask("b", 0, 9.0), RunningTask("c", 0, 1.0))
    assert choose_to_pause(same) == (("c",), "b")
    assert choose_to_pause((RunningTask("a", 0, 1.0),)) == ((), "a")


@settings(max_examples=200, deadline=None)
@given(tasks_strategy, st.integers(1, 8), st.integers(1, 4))
def test_escalation_is_monotone_and_relaxing_restores_everything(
        running: dict[str, RunningTask], user_limit: int, levels: int) -> None:
    model = Model(dict(running), user_limit)
    policy = PressurePolicy(Thresholds(dwell=DWELL))
    now, limits, seen = 0.0, [user_limit], [0]
    while policy.level < levels:
        action = policy.step(HIGH, now, model.work())
        assert action is not None and action.level == policy.level == seen[-1] + 1
        model.apply(action)
        seen.append(policy.level)
        limits.append(model.limit or user_limit)
        assert policy.step(HIGH, now + DWELL / 2, model.work()) is None  # dwell holds
        now += DWELL
        if model.running or model.held:
            assert model.running or model.session_paused
    assert limits == sorted(limits, reverse=True) and min(limits) >= 1
    if levels >= 3:
        assert model.limit == 1
    assert model.session_paused == (levels == 4)
    assert policy.step(MID, now, model.work()) is None  # hysteresis: nothing changes
    while policy.level > 0:
        action = policy.step(LOW, now, model.work())
        assert action is not None and action.level == seen[-1] - 1 == policy.level
        model.apply(action)
        seen.append(policy.level)
        assert (model.limit or user_limit) >= 1
        now += DWELL
    assert model.limit in (0, user_limit) and not model.held and not model.session_paused
    assert sorted(model.running) == sorted(running)
    assert policy.step(LOW, now + DWELL, model.work()) is None


@settings(max_examples=150, deadline=None)
@given(tasks_strategy, st.integers(1, 6),
       st.lists(st.tuples(st.sampled_from([HIGH, MID, LOW]), st.integers(0, 7)), max_size=30))
def test_the_policy_never_holds_the_last_task_and_never_drops_below_one(
        running: dict[str, RunningTask], user_limit: int,
        script: list[tuple[Pressure, int]]) -> None:
    model = Model(dict(running), user_limit)
    policy = PressurePolicy(Thresholds(dwell=DWELL))
    for tick, (reading, finisher) in enumerate(script):
        live = sorted(model.running)  # a running task may end between two samples
        if live and finisher < len(live):
            del model.running[live[finisher]]
        action = policy.step(reading, tick * DWELL / 2, model.work())
        if action is not None:
            model.apply(action)
        assert (model.limit or user_limit) >= 1
        if model.held and policy.level < 4:
            assert model.running


def test_thresholds_have_hysteresis_and_readings_read_well() -> None:
    limits = Thresholds()
    assert is_high(Pressure(0.09, 10 * GB), limits) and is_high(Pressure(0.5, 400 * MB), limits)
    assert not is_high(MID, limits) and not is_low(MID, limits)
    assert not is_low(Pressure(0.5, 800 * MB), limits) and is_low(LOW, limits)
    assert is_low(Pressure(0.5, None), limits)
    loaded = Thresholds(load_high=2.0, load_low=1.0)
    assert is_high(Pressure(0.5, 10 * GB, 3.0), loaded)
    assert not is_low(Pressure(0.5, 10 * GB, 1.5), loaded)
    assert describe(Pressure(0.061, 320 * MB)) == "memory 6% available, disk 320 MB free"


# ----- the engine --------------------------------------------------------------------------


class Script:
    """A probe that returns what the test sets, and a clock the test moves."""

    def __init__(self) -> None:
        self.reading = LOW
        self.now = 0.0
        self.calls = 0

    def probe(self) -> Pressure:
        self.calls += 1
        return self.reading

    def clock(self) -> float:
        return self.now


def proc_state(pid: int) -> str:
    """The one-letter state of a process (`T` when stopped), or `gone`."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


async def wait_until(condition, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def rows(db: Path, sql: str, *params: object) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return list(conn.execute(sql, params))


def waiter(task_id: str, go: Path, priority: int = 0) -> TaskSpec:
    """A task that sleeps until the file `go` exists."""
    code = f"import os, time\nwhile not os.path.exists({str(go)!r}): time.sleep(0.05)"
    return TaskSpec(id=task_id, command=(sys.executable, "-c", code), priority=priority)


async def test_pressure_escalates_then_undoes_every_step(tmp_path: Path,
                                                         workspace: Path) -> None:
    go = tmp_path / "go"
    tasks = [waiter("a", go, 1), waiter("b", go, 1), waiter("c", go, 1), waiter("d", go, 0),
             waiter("e", go, 0)]
    db = tmp_path / "state.db"
    script = Script()
    async with await Engine.open(db) as engine:
        engine.pressure = MonitorConfig(script.probe, Thresholds(dwell=DWELL), 0.02,
                                        script.clock)
        execution = await engine.start(SessionRequest(
            plan=Plan(IntentSpec(name="t", tasks=tuple(tasks))), workspace=workspace,
            workflow="t", parallel_limit=4))
        run = asyncio.create_task(engine.run(execution))

        def pid(tid: str) -> int:
            view = next(v for v in execution.snapshot().running if v.task_id == tid)
            assert view.pid is not None
            return view.pid

        def states(*expected: str) -> bool:
            return [execution.states[t] for t in "abcd"] == list(expected)

        def notes() -> list[str]:
            return [n for n in execution.log if n.startswith("resources:")]

        await wait_until(lambda: len(execution.snapshot().running) == 4 and all(
            v.pid for v in execution.snapshot().running))
        pids = {tid: pid(tid) for tid in "abcd"}

        script.reading = HIGH  # 1: the lowest priority (d) pauses; a, b, c go on
        await wait_until(lambda: execution.states["d"] == TaskState.PAUSED)
        await wait_until(lambda: proc_state(pids["d"]) == "T")
        assert all(proc_state(pids[t]) in "SR" for t in "abc")
        assert states("running", "running", "running", "paused")
        assert notes() == ["resources: memory 5% available, disk 10.0 GB free; "
                           "paused d (priority 0)"]
        reasons = rows(db, "SELECT reason FROM transitions WHERE task_id = 'd' "
                           "AND to_state = 'paused'")
        assert reasons == [("memory pressure: paused, lower priority than a",)]

        script.now += DWELL  # 2: the pool shrinks to the running tasks less one
        await wait_until(lambda: execution.parallel_limit == 2)
        script.now += DWELL  # 3: one at a time
        await wait_until(lambda: execution.parallel_limit == 1)
        execution.request(Control("set-limit", "6"))  # the user's new limit waits
        await wait_until(lambda: execution.user_limit == 6)
        assert execution.parallel_limit == 1
        assert execution.states["e"] == TaskState.READY

        script.now += DWELL  # 4: checkpoint and pause the session
        await wait_until(lambda: execution.session_state == SessionState.PAUSED)
        await wait_until(lambda: all(proc_state(p) == "T" for p in pids.values()))
        await wait_until(lambda: rows(db, "SELECT count(*) FROM checkpoints "
                                          "WHERE session_id = ?", execution.session_id)
                         == [(1,)])
        reason = rows(db, "SELECT reason FROM transitions WHERE task_id IS NULL "
                          "AND to_state = 'PAUSED'")
        assert reason == [("resource exhaustion: memory 5% available, disk 10.0 GB free",)]

        script.reading = MID  # between the thresholds: nothing is undone
        script.now += DWELL
        calls = script.calls
        await wait_until(lambda: script.calls > calls + 3)
        assert execution.session_state == SessionState.PAUSED

        script.reading = LOW  # undo 4: the session resumes, d stays paused
        await wait_until(lambda: execution.session_state == SessionState.EXECUTING)
        await wait_until(lambda: all(proc_state(pids[t]) in "SR" for t in "abc"))
        assert proc_state(pids["d"]) == "T" and states("running", "running", "running",
                                                       "paused")
        script.now += DWELL  # undo 3
        await wait_until(lambda: execution.parallel_limit == 2)
        script.now += DWELL  # undo 2: the user's limit, as set during the pressure
        await wait_until(lambda: execution.parallel_limit == 6)
        script.now += DWELL  # undo 1: d runs again
        await wait_until(lambda: execution.states["d"] == TaskState.RUNNING)
        await wait_until(lambda: proc_state(pids["d"]) in "SR")
        assert len(notes()) == 8

        go.touch()
        final = await asyncio.wait_for(run, 30)
    assert final == SessionState.COMPLETED
    assert rows(db, "SELECT id, attempts, state FROM tasks ORDER BY id") == [
        (t, 1, "succeeded") for t in "abcde"]
    assert rows(db, "SELECT count(*) FROM attempts WHERE outcome = 'succeeded'") == [(5,)]
    d_path = [r[0] for r in rows(db, "SELECT to_state FROM transitions WHERE task_id = 'd' "
                                     "ORDER BY id")]
    assert d_path == ["ready", "running", "paused", "running", "succeeded"]


async def test_the_last_running_task_is_never_held(tmp_path: Path, workspace: Path) -> None:
    go, late = tmp_path / "go", tmp_path / "late"
    script = Script()
    async with await Engine.open(tmp_path / "state.db") as engine:
        engine.pressure = MonitorConfig(script.probe, Thresholds(dwell=DWELL), 0.02,
                                        script.clock)
        execution = await engine.start(SessionRequest(
            plan=Plan(IntentSpec(name="t", tasks=(waiter("a", go, 1), waiter("b", late)))),
            workspace=workspace, workflow="t", parallel_limit=2))
        run = asyncio.create_task(engine.run(execution))
        await wait_until(lambda: len(execution.snapshot().running) == 2 and all(
            v.pid for v in execution.snapshot().running))
        script.reading = HIGH
        await wait_until(lambda: execution.states["b"] == TaskState.PAUSED)
        go.touch()  # a ends: b is the last task and runs again under the same pressure
        await wait_until(lambda: execution.states["b"] == TaskState.RUNNING)
        assert any("resumed b (no other task was running)" in n for n in execution.log)
        late.touch()
        assert await asyncio.wait_for(run, 30) == SessionState.COMPLETED


async def test_the_setting_off_leaves_runs_alone(tmp_path: Path, workspace: Path) -> None:
    db = tmp_path / "state.db"
    script = Script()
    script.reading = HIGH
    async with await Engine.open(db) as engine:
        await save_setting(db, "pressure_policy", "off")
        engine.pressure = MonitorConfig(script.probe, Thresholds(dwell=0.0), 0.01,
                                        script.clock)
        execution = await engine.start(SessionRequest(
            plan=Plan(IntentSpec(name="t", tasks=(waiter("a", workspace / "app.py"),))),
            workspace=workspace, workflow="t", parallel_limit=2))
        assert await engine.run(execution) == SessionState.COMPLETED
    assert script.calls == 0
    assert not [n for n in execution.log if n.startswith("resources:")]
