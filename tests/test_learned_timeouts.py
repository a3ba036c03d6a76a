"""Timeouts learned from recorded durations, for tasks whose workflow sets none."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import pytest

from orchestrator_tui.core.models import IntentSpec, TaskSpec
from orchestrator_tui.core.plan import Plan
from orchestrator_tui.core.predict import Estimate
from orchestrator_tui.core.states import SessionState
from orchestrator_tui.core.timeouts import Timeout, TimeoutRule, choose_timeout
from orchestrator_tui.engine.session import Engine, SessionRequest
from orchestrator_tui.engine.settings import check, save_setting

QUICK = (sys.executable, "-c", "pass")
HANG = (sys.executable, "-c", "import time; time.sleep(60)")
QUICK_RULE = TimeoutRule(factor=4.0, slack=0.0)
"""Four times the slow end of quick runs: rounded up to the shortest limit, 1 s."""


def plan_of(*tasks: TaskSpec, name: str = "job") -> Plan:
    return Plan(IntentSpec(name=name, tasks=tasks))


async def run(engine: Engine, plan: Plan, workspace: Path) -> tuple[str, SessionState]:
    execution = await engine.start(SessionRequest(plan=plan, workspace=workspace,
                                                  workflow="test", parallel_limit=3))
    return execution.session_id, await engine.run(execution)


async def record_quick_runs(engine: Engine, workspace: Path, count: int) -> None:
    """History: `count` quick successful runs of this interpreter, the hung task's kind."""
    warm = plan_of(*(TaskSpec(id=f"warm-{n}", command=QUICK) for n in range(count)),
                   name="warm")
    assert (await run(engine, warm, workspace))[1] == SessionState.COMPLETED


def attempts(db: Path, session_id: str) -> list[tuple[str, float | None, int | None, str]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT task_id, timeout, timeout_runs, outcome FROM attempts "
                            "WHERE session_id = ? ORDER BY task_id, attempt",
                            (session_id,)).fetchall()


def reasons(db: Path, session_id: str, task_id: str) -> list[tuple[str, str]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT to_state, reason FROM transitions WHERE session_id = ? "
                            "AND task_id = ? ORDER BY id", (session_id, task_id)).fetchall()


def test_the_rule_is_generous_and_needs_the_kinds_own_history() -> None:
    rule = TimeoutRule()
    own = Estimate(point=2.0, low=1.5, high=3.0, n=12, basis="kind")
    assert rule.seed(own) == Timeout(123.0, 12)  # 3 s + two minutes
    long = Estimate(point=200.0, low=150.0, high=300.2, n=5, basis="kind")
    assert rule.seed(long) == Timeout(1201.0, 5)  # four times 300.2 s, rounded up
    assert rule.seed(Estimate(2.0, 1.5, 3.0, n=4, basis="kind")) is None  # too few runs
    assert rule.seed(Estimate(2.0, 1.5, 3.0, n=0, basis="global")) is None  # not its own
    assert rule.seed(Estimate(2.0, 1.5, 3.0, n=6, basis="task")) == Timeout(123.0, 6)
    assert rule.seed(None) is None
    assert Timeout(123.0, 12).describe() == "learned from 12 runs"
    assert Timeout(600.0).describe() == "set by the workflow"
    assert choose_timeout(600.0, Timeout(123.0, 12)) == Timeout(600.0)  # explicit wins
    assert choose_timeout(None, Timeout(123.0, 12)) == Timeout(123.0, 12)
    assert choose_timeout(None, None) is None


def test_the_setting_is_validated() -> None:
    assert check("learned_timeouts", "off") == "off"
    with pytest.raises(Exception, match="learned_timeouts must be one of on, off"):
        check("learned_timeouts", "sometimes")


async def test_history_times_out_a_hanging_command(tmp_path: Path, workspace: Path) -> None:
    db = tmp_path / "state.db"
    async with await Engine.open(db) as engine:
        engine.timeout_rule = QUICK_RULE
        await record_quick_runs(engine, workspace, 6)
        session_id, final = await run(engine, plan_of(TaskSpec(id="hang", command=HANG,
                                                               retries=1)), workspace)
    assert final == SessionState.FAILED
    assert attempts(db, session_id) == [("hang", 1.0, 6, "failed"), ("hang", 1.0, 6, "failed")]
    said = reasons(db, session_id, "hang")
    limit = "timed out after 1 s (learned from 6 runs)"
    assert ("retrying", f"{limit}; retry in 0.5 s") in said  # the same retry rules
    assert said[-1] == ("failed", limit)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT error FROM tasks WHERE session_id = ?",
                            (session_id,)).fetchall() == [(limit,)]


async def test_an_explicit_timeout_wins(tmp_path: Path, workspace: Path) -> None:
    db = tmp_path / "state.db"
    async with await Engine.open(db) as engine:
        await record_quick_runs(engine, workspace, 5)
        session_id, final = await run(engine, plan_of(
            TaskSpec(id="explicit", command=QUICK, timeout=30.0),
            TaskSpec(id="learned", command=QUICK)), workspace)
    assert final == SessionState.COMPLETED
    (explicit, learned) = attempts(db, session_id)
    assert explicit == ("explicit", 30.0, None, "succeeded")
    assert learned[0] == "learned" and learned[2] == 5 and 120.0 < learned[1] <= 125.0


async def test_without_enough_history_there_is_no_timeout(tmp_path: Path,
                                                          workspace: Path) -> None:
    db = tmp_path / "state.db"
    async with await Engine.open(db) as engine:
        session_id, _ = await run(engine, plan_of(TaskSpec(id="bare", command=QUICK)),
                                  workspace)
        assert attempts(db, session_id) == [("bare", None, None, "succeeded")]
        await record_quick_runs(engine, workspace, 3)  # 4 runs in all: one too few
        session_id, _ = await run(engine, plan_of(TaskSpec(id="bare", command=QUICK)),
                                  workspace)
    assert attempts(db, session_id) == [("bare", None, None, "succeeded")]


async def test_the_setting_turns_them_off(tmp_path: Path, workspace: Path) -> None:
    db = tmp_path / "state.db"
    async with await Engine.open(db) as engine:
        await record_quick_runs(engine, workspace, 6)
    await save_setting(db, "learned_timeouts", "off")
    async with await Engine.open(db) as engine:
        execution = await engine.start(SessionRequest(
            plan=plan_of(TaskSpec(id="bare", command=QUICK)), workspace=workspace,
            workflow="test"))
        assert execution.jobs.learned_timeout is None
        assert execution.remaining is not None  # the forecast does not depend on it
        assert await engine.run(execution) == SessionState.COMPLETED
    assert attempts(db, execution.session_id) == [("bare", None, None, "succeeded")]
