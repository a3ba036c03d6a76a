"""Forecasts, patterns, agent performance and success metrics from recorded history."""

from __future__ import annotations

import asyncio
import itertools
import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest

from orchestrator_tui.core.patterns import error_signature, percentile, usual_next
from orchestrator_tui.core.plan import Plan
from orchestrator_tui.core.workflow import build_plan, parse_workflow
from orchestrator_tui.engine import learning
from orchestrator_tui.engine.learning import past_predictions, predict_plan
from orchestrator_tui.engine.patterns import agent_performance, patterns, success_metrics
from orchestrator_tui.store.database import connect
from orchestrator_tui.store.learning import attempt_samples

WORKFLOW = """
intents:
  ship:
    tasks:
      - {id: a, agent: alpha}
      - {id: b, agent: beta, depends_on: [a]}
      - {id: c, agent: gamma}
"""


def ship_plan() -> Plan:
    return build_plan(parse_workflow(WORKFLOW, source="wf.yaml"), "ship")


def migrated(path: Path) -> Path:
    async def create() -> None:
        await (await connect(path)).close()
    asyncio.run(create())
    return path


class History:
    """Writes sessions, tasks and attempts the way the engine records them."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(migrated(path), isolation_level=None)
        self.count = 0
        self.clock = 1_000_000.0

    def session(self, intent: str, tasks: Sequence[tuple[str, str, float, str]], *,
                plan: Plan | None = None, limit: int = 2, workspace: str = "ws",
                state: str | None = None, span: float | None = None) -> str:
        """One finished session; each task (id, agent, seconds, state) has one attempt."""
        self.count += 1
        sid = f"sess-{self.count:04d}"
        start = self.clock
        ends = []
        for task_id, agent, took, task_state in tasks:
            outcome = "succeeded" if task_state == "succeeded" else "failed"
            error = None if task_state == "succeeded" else f"exit 2 at /tmp/x{self.count}/a.py"
            self.db.execute("INSERT INTO tasks (session_id, id, kind, agent, state, attempts, "
                            "error, started_at, finished_at, updated_at) VALUES "
                            "(?, ?, ?, ?, ?, 1, ?, ?, ?, ?)",
                            (sid, task_id, agent, agent, task_state, error, start, start + took,
                             start + took))
            self.db.execute("INSERT INTO attempts (session_id, task_id, attempt, boot_id, "
                            "started_at, finished_at, outcome, tokens_in, tokens_out) VALUES "
                            "(?, ?, 1, 'boot', ?, ?, ?, 10, 5)",
                            (sid, task_id, start, start + took, outcome))
            ends.append(start + took)
        finish = span + start if span is not None else max(ends, default=start)
        final = state or ("COMPLETED" if all(t[3] == "succeeded" for t in tasks) else "FAILED")
        self.db.execute("INSERT INTO sessions (id, intent, workflow, workspace, state, plan, "
                        "parallel_limit, created_at, updated_at, finished_at) VALUES "
                        "(?, ?, 'wf', ?, ?, ?, ?, ?, ?, ?)",
                        (sid, intent, workspace, final,
                         json.dumps(plan.to_dict()) if plan else "{}", limit, start, finish,
                         finish))
        self.clock = finish + 10
        return sid


def read(path: Path, query):  # type: ignore[no-untyped-def]
    async def go():  # type: ignore[no-untyped-def]
        conn = await connect(path)
        try:
            return await query(conn)
        finally:
            await conn.close()
    return asyncio.run(go())


def test_no_history_means_no_figures(tmp_path: Path) -> None:
    db = migrated(tmp_path / "state.db")
    result = read(db, lambda conn: predict_plan(conn, ship_plan()))
    assert result.samples == 0 and result.eta is None and result.eta_low is None
    assert result.success_probability is None and result.bottleneck is None
    assert all(task.estimate is None and task.runs == 0 for task in result.tasks)
    assert read(db, agent_performance) == []
    assert read(db, past_predictions) == []
    metrics = read(db, success_metrics)
    assert [m.value for m in metrics] == [None] * 5
    assert all("not yet known" in m.basis for m in metrics)
    found = read(db, lambda conn: patterns(conn, "ship"))
    assert found.sessions == 0 and found.next_intents == [] and found.parallel_limit is None


def test_forecast_replays_the_schedule_with_predicted_durations(tmp_path: Path) -> None:
    history = History(tmp_path / "state.db")
    for _ in range(5):
        history.session("ship", [("a", "alpha", 10.0, "succeeded"),
                                 ("b", "beta", 20.0, "succeeded"),
                                 ("c", "gamma", 5.0, "succeeded")], plan=ship_plan())
    history.session("ship", [("c", "gamma", 1.0, "failed")])
    result = read(tmp_path / "state.db",
                  lambda conn: predict_plan(conn, ship_plan(), 2))
    assert result.samples == 15 and result.parallel_limit == 2
    by_id = {task.task_id: task for task in result.tasks}
    assert [by_id[t].estimate.n for t in "abc"] == [5, 5, 5]  # type: ignore[union-attr]
    assert result.eta is not None and result.eta_low is not None and result.eta_high is not None
    assert result.eta_low <= result.eta <= result.eta_high
    assert 25 < result.eta < 35  # a then b (10 + 20 s), c beside them
    assert result.bottleneck == "b"
    assert result.success_probability == pytest.approx((6 / 7) * (6 / 7) * (6 / 8))
    assert result.success_tasks == 3
    one_at_a_time = read(tmp_path / "state.db", lambda conn: predict_plan(conn, ship_plan(), 1))
    assert one_at_a_time.eta is not None and one_at_a_time.eta > result.eta


def test_predictions_improve_as_a_stable_agent_gets_more_history(tmp_path: Path) -> None:
    history = History(tmp_path / "state.db")
    for _ in range(12):
        history.session("other", [("x", "slowpoke", 200.0, "succeeded")])
    errors = []
    for _ in range(10):
        history.session("ship", [("a", "alpha", 10.0, "succeeded")])
        result = read(tmp_path / "state.db", lambda conn: predict_plan(conn, ship_plan(), 2))
        estimate = next(t.estimate for t in result.tasks if t.task_id == "a")
        assert estimate is not None
        errors.append(abs(estimate.point - 10.0))
    assert all(later <= earlier for earlier, later in itertools.pairwise(errors))
    assert errors[-1] < errors[0]


def test_the_predictor_learns_from_the_newest_attempts_only(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """However long the history, a start reads and fits a bounded part of it: the latest."""
    history = History(tmp_path / "state.db")
    for _ in range(3):
        history.session("other", [("x", "slowpoke", 200.0, "succeeded")])
    for _ in range(2):
        history.session("fan", [(f"t{i}", "fan", 2.0, "succeeded") for i in range(2)],
                        plan=fan_plan(2))
    monkeypatch.setattr(learning, "NEWEST_ATTEMPTS", 4)
    predictor, samples = read(tmp_path / "state.db", learning.load_predictor)
    assert samples == 4 and predictor.kinds == ["fan"]  # slowpoke's runs are older
    rows = read(tmp_path / "state.db",
                lambda conn: attempt_samples(conn, newest=5))
    assert [row.kind for row in rows] == ["slowpoke", "fan", "fan", "fan", "fan"]  # oldest first
    assert [row.kind_count for row in rows] == [1, 2, 2, 2, 2]
    assert len(read(tmp_path / "state.db", attempt_samples)) == 7  # all, when not bounded


def fan_plan(width: int) -> Plan:
    tasks = "".join(f"      - {{id: t{i}, agent: fan}}\n" for i in range(width))
    return build_plan(parse_workflow(f"intents:\n  fan:\n    tasks:\n{tasks}",
                                     source="wf.yaml"), "fan")


def test_predictions_follow_how_many_tasks_of_an_agent_a_plan_has(tmp_path: Path) -> None:
    """Each task of `fan` takes 2 s per task of `fan` in its session (they share a disk)."""
    history = History(tmp_path / "state.db")
    for width in [2, 4, 8, 16] * 2:
        history.session("fan", [(f"t{i}", "fan", 2.0 * width, "succeeded")
                                for i in range(width)], plan=fan_plan(width))
    for width in (4, 16):
        result = read(tmp_path / "state.db",
                      lambda conn, width=width: predict_plan(conn, fan_plan(width), 4))
        assert all(task.estimate is not None
                   and task.estimate.point == pytest.approx(2.0 * width, rel=0.1)
                   for task in result.tasks)


def test_past_predictions_use_only_earlier_history(tmp_path: Path) -> None:
    history = History(tmp_path / "state.db")
    tasks = [("a", "alpha", 10.0, "succeeded"), ("b", "beta", 20.0, "succeeded"),
             ("c", "gamma", 5.0, "succeeded")]
    first = history.session("ship", tasks, plan=ship_plan())
    second = history.session("ship", tasks, plan=ship_plan())
    third = history.session("ship", tasks, plan=ship_plan(), span=45.0)
    past = read(tmp_path / "state.db", past_predictions)
    assert [p.session_id for p in past] == [third, second]  # the first had no history
    assert first not in {p.session_id for p in past}
    assert past[0].samples == 6 and past[1].samples == 3
    assert past[0].actual == pytest.approx(45.0) and past[1].actual == pytest.approx(20.0)
    assert all(p.low <= p.predicted <= p.high for p in past)


def test_patterns_next_intents_failures_and_limit(tmp_path: Path) -> None:
    history = History(tmp_path / "state.db")
    history.session("analyze", [("a", "alpha", 1.0, "failed")], limit=3)
    history.session("fix", [("a", "alpha", 1.0, "succeeded")])
    history.session("analyze", [("a", "alpha", 1.0, "failed")], limit=3)
    history.session("fix", [("a", "alpha", 1.0, "succeeded")])
    history.session("analyze", [("a", "alpha", 1.0, "succeeded")], limit=6)
    history.session("build", [("a", "alpha", 1.0, "succeeded")])
    history.session("analyze", [("a", "alpha", 1.0, "succeeded")], workspace="elsewhere")
    found = read(tmp_path / "state.db", lambda conn: patterns(conn, "analyze"))
    assert found.sessions == 4 and len(found.recent) == 4
    assert found.next_intents == [("fix", 2), ("build", 1)]
    assert found.failures == {"alpha": [("exit <n> at <path>", 2)]}
    assert found.parallel_limit == (3, 2)


def test_agent_performance_and_metrics(tmp_path: Path) -> None:
    history = History(tmp_path / "state.db")
    for took in (1.0, 2.0, 3.0, 4.0):
        history.session("ship", [("a", "alpha", took, "succeeded")], limit=1)
    history.session("ship", [("a", "alpha", 9.0, "failed")], limit=1)
    (row,) = read(tmp_path / "state.db", agent_performance)
    assert (row.agent, row.runs, row.successes, row.timed) == ("alpha", 5, 4, 4)
    assert row.median_seconds == pytest.approx(2.5)
    assert row.p90_seconds == pytest.approx(percentile([1.0, 2.0, 3.0, 4.0], 0.9))
    assert row.tokens == 75 and row.cost_usd is None
    metrics = {m.name: m for m in read(tmp_path / "state.db", success_metrics)}
    success = metrics["execution success rate"]
    assert success.value == pytest.approx(0.8) and success.met is False
    assert "4 of 5" in success.basis
    assert metrics["parallel efficiency W/(P*M)"].value == pytest.approx(1.0)
    assert metrics["cache hit rate"].value is None
    assert metrics["agent generation time"].value is None
    reduction = metrics["time reduction after learning"]
    assert reduction.value == pytest.approx(1 - 3.5 / 1.5)  # later runs were slower


def test_time_reduction_compares_runs_of_the_same_plan(tmp_path: Path) -> None:
    history = History(tmp_path / "state.db")
    for plan, took in ((ship_plan(), 10.0), (ship_plan(), 10.0), (fan_plan(2), 2.0),
                       (fan_plan(2), 2.0)):  # one intent, but the plan changed
        history.session("ship", [("a", "alpha", took, "succeeded")], plan=plan)
    metrics = {m.name: m for m in read(tmp_path / "state.db", success_metrics)}
    assert metrics["time reduction after learning"].value is None
    for took in (8.0, 6.0):
        history.session("ship", [("a", "alpha", took, "succeeded")], plan=ship_plan())
    reduction = {m.name: m for m in read(tmp_path / "state.db", success_metrics)}[
        "time reduction after learning"]
    assert reduction.value == pytest.approx(1 - 7.0 / 10.0)  # 10, 10 | 8, 6: the same plan
    assert reduction.basis == "later vs earlier half of the runs of 1 plan(s)"


def test_error_signatures_and_sequences() -> None:
    assert error_signature("exit 2 at /tmp/a/b.py line 7\nmore") == \
        error_signature("exit 13 at /home/u/c.py line 99")
    assert error_signature("") == "(no error text)"
    assert usual_next(["a", "b", "a", "b", "a", "c"], "a") == [("b", 2), ("c", 1)]
    assert percentile([], 0.5) is None


async def slow_step(context: object) -> str:
    await asyncio.sleep(0.3)
    return "slow"


async def quick_step(context: object) -> str:
    return "quick"


async def test_learned_durations_order_the_policy(tmp_path: Path) -> None:
    from orchestrator_tui.core.models import IntentSpec, TaskSpec
    from orchestrator_tui.engine.session import Engine, SessionRequest

    workspace = tmp_path / "repo"
    workspace.mkdir()
    here = "tests.test_learning"
    plan = Plan(IntentSpec(name="pair", tasks=(  # the quick one first in the file
        TaskSpec(id="quick", python=f"{here}:quick_step"),
        TaskSpec(id="slow", python=f"{here}:slow_step"))))
    async with await Engine.open(tmp_path / "state.db") as engine:
        assert await engine.learned_durations(plan) is None  # no history: no figures
        first = await engine.start(SessionRequest(plan=plan, workspace=workspace,
                                                  workflow="pair", parallel_limit=1))
        await engine.run(first)
        learned = await engine.learned_durations(plan)
        assert learned is not None and learned["slow"] > learned["quick"]
        second = await engine.start(SessionRequest(plan=plan, workspace=workspace,
                                                   workflow="pair", parallel_limit=1))
        await engine.run(second)
    with sqlite3.connect(tmp_path / "state.db") as conn:
        order = [row[0] for row in conn.execute(
            "SELECT task_id FROM attempts WHERE session_id = ? ORDER BY started_at, id",
            (second.session_id,))]
        first_order = [row[0] for row in conn.execute(
            "SELECT task_id FROM attempts WHERE session_id = ? ORDER BY started_at, id",
            (first.session_id,))]
    assert first_order == ["quick", "slow"]  # file order without history
    assert order == ["slow", "quick"]  # the longer task first once it is known
