"""The live time remaining: the unfinished part of a plan replayed with predicted durations."""

from __future__ import annotations

import asyncio
import json
import random
import sys
from pathlib import Path

import pytest

from orchestrator_tui.core.models import IntentSpec, TaskSpec
from orchestrator_tui.core.plan import Plan
from orchestrator_tui.core.predict import Predictor, Sample, fit
from orchestrator_tui.core.remaining import (
    FLOOR_SECONDS,
    LiveRemaining,
    Remaining,
    remaining_time,
)
from orchestrator_tui.core.states import SessionState
from orchestrator_tui.engine.events import Control, Snapshot
from orchestrator_tui.engine.session import Engine, SessionRequest
from orchestrator_tui.headless import _render
from orchestrator_tui.views import clock, remaining_line, remaining_text
from tests.conftest import Run

SLEEP = "import time; time.sleep(60)"


def history() -> Predictor:
    """`work` takes about 10 s and `fast` about 2 s, over eight recorded runs."""
    rng = random.Random(7)
    samples = [Sample(kind, mean * rng.lognormvariate(0, 0.2), run=run)
               for run in range(8) for kind, mean in (("work", 10.0), ("fast", 2.0))
               for _ in range(3)]
    return fit(samples)


def diamond() -> Plan:
    """a -> (b, c, d) -> e, with f on its own."""
    def task(task_id: str, kind: str, *deps: str) -> TaskSpec:
        return TaskSpec(id=task_id, command=(kind,), depends_on=deps)
    return Plan(IntentSpec(name="diamond", tasks=(
        task("a", "work"), task("b", "work", "a"), task("c", "fast", "a"),
        task("d", "work", "a"), task("e", "fast", "b", "c", "d"), task("f", "fast"))))


def test_without_history_there_is_no_figure() -> None:
    assert remaining_time(diamond(), set(), {}, fit([]), 2) is None
    assert LiveRemaining(diamond(), fit([])).estimate(set(), {}, 2, 0.0) is None


def test_the_interval_holds_the_point_and_states_the_coverage() -> None:
    predictor = history()
    plan = diamond()
    for finished, running in ((set(), {}), ({"a"}, {"b": 3.0, "c": 30.0}),
                              ({"a", "b", "c", "d", "f"}, {"e": 0.5})):
        left = remaining_time(plan, finished, running, predictor, 2)
        assert left is not None
        assert 0 < left.low <= left.seconds <= left.high
        assert left.coverage == predictor.coverage == 0.8


def test_it_shrinks_as_tasks_finish_and_run() -> None:
    predictor, plan = history(), diamond()
    seen = []
    finished: set[str] = set()
    for task_id in plan.order:  # finished one by one, in an order the plan allows
        left = remaining_time(plan, finished, {}, predictor, 2)
        assert left is not None
        seen.append(left.seconds)
        finished.add(task_id)
    assert seen == sorted(seen, reverse=True) and seen[0] > seen[-1]
    assert remaining_time(plan, finished, {}, predictor, 2) == Remaining(0.0, 0.0, 0.0, 0.8)
    running = [remaining_time(plan, {"a"}, {"b": ran, "d": ran}, predictor, 2)
               for ran in (0.0, 2.0, 5.0, 9.0)]
    points = [left.seconds for left in running if left is not None]
    assert len(points) == 4 and points == sorted(points, reverse=True)
    assert points[0] > points[-1]


def test_the_bottleneck_is_the_biggest_task_left_on_the_critical_path() -> None:
    predictor, plan = history(), diamond()
    start = remaining_time(plan, set(), {}, predictor, 2)
    assert start is not None and start.bottleneck in ("a", "b", "d")  # the 10 s tasks
    assert start.bottleneck_seconds == pytest.approx(
        predictor.predict("work").point)  # type: ignore[union-attr]
    nearly = remaining_time(plan, {"a", "b", "c", "d", "f"}, {}, predictor, 2)
    assert nearly is not None and nearly.bottleneck == "e"  # all that is left
    assert nearly.to_dict()["bottleneck"] == "e"
    assert nearly.later(1.0).bottleneck == "e"


def test_a_running_task_never_needs_less_than_the_floor() -> None:
    predictor = history()
    plan = Plan(IntentSpec(name="one", tasks=(TaskSpec(id="x", command=("work",)),)))
    late = remaining_time(plan, set(), {"x": 10_000.0}, predictor, 1)
    assert late == Remaining(FLOOR_SECONDS, FLOOR_SECONDS, FLOOR_SECONDS, 0.8, "x", FLOOR_SECONDS)


def test_more_slots_never_take_longer_here() -> None:
    predictor, plan = history(), diamond()
    one = remaining_time(plan, set(), {}, predictor, 1)
    four = remaining_time(plan, set(), {}, predictor, 4)
    assert one is not None and four is not None and four.seconds < one.seconds


def test_running_tasks_keep_their_slots() -> None:
    """Two running `fast` tasks at one slot still run side by side: the slow `work` task
    that is only ready waits for them, whatever its bottom level."""
    predictor = history()
    plan = Plan(IntentSpec(name="three", tasks=(
        TaskSpec(id="slow", command=("work",)), TaskSpec(id="p", command=("fast",)),
        TaskSpec(id="q", command=("fast",)))))
    left = remaining_time(plan, set(), {"p": 0.0, "q": 0.0}, predictor, 1)
    fast, work = predictor.predict("fast"), predictor.predict("work")
    assert left is not None and fast is not None and work is not None
    assert left.seconds == pytest.approx(fast.point + work.point)


def test_subtasks_of_a_decomposition_count_only_while_they_run() -> None:
    predictor = history()
    plan = Plan(IntentSpec(name="parent", tasks=(
        TaskSpec(id="p", command=("work",), decompose=("p.sub.s",)),
        TaskSpec(id="p.sub.s", command=("work",)))))
    alone = remaining_time(plan, set(), {}, predictor, 2)
    work = predictor.predict("work")
    assert alone is not None and work is not None
    assert alone.seconds == pytest.approx(work.point)
    both = remaining_time(plan, set(), {"p.sub.s": 0.0}, predictor, 2)
    assert both is not None and both.seconds == pytest.approx(work.point)  # side by side


def test_the_live_forecast_counts_down_between_replays() -> None:
    predictor, plan = history(), diamond()
    live = LiveRemaining(plan, predictor, every=1.0)
    first = live.estimate(set(), {}, 2, 100.0)
    assert first == remaining_time(plan, set(), {}, predictor, 2)
    assert first is not None
    waiting = live.estimate({"a"}, {}, 2, 100.5)  # not replayed yet: counted down
    assert waiting is not None
    assert waiting.to_dict() == pytest.approx(first.later(0.5).to_dict())
    replayed = live.estimate({"a"}, {}, 2, 101.5)
    assert replayed == remaining_time(plan, {"a"}, {}, predictor, 2)
    assert replayed is not None and replayed.seconds < first.seconds
    assert Remaining(5.0, 2.0, 9.0, 0.8).later(3.0) == Remaining(2.0, 0.0, 6.0, 0.8)


def test_the_figures_as_text() -> None:
    assert [clock(v) for v in (0.2, 45.4, 190.0, 3_900.0)] == ["0s", "45s", "3m 10s",
                                                               "1h 05m"]
    left = Remaining(190.0, 125.0, 280.0, 0.8)
    assert remaining_text(left) == "~3m 10s (80%: 2m 05s - 4m 40s)"
    assert remaining_line(left) == "Remaining ~3m 10s (80%: 2m 05s - 4m 40s)"
    assert remaining_line(None) == "Remaining: no data yet"
    snap = Snapshot("sess-1", "EXECUTING", 3, {"running": 1}, (), 4, 0.0, 12.0,
                    remaining=left)
    assert "Remaining ~3m 10s (80%: 2m 05s - 4m 40s)" in _render(snap).renderables[0].plain
    bare = Snapshot("sess-1", "EXECUTING", 3, {"running": 1}, (), 4, 0.0, 12.0)
    assert "Remaining: no data yet" in _render(bare).renderables[0].plain


async def test_state_current_and_the_engine_show_it(workspace: Path, db_path: Path,
                                                    cli: Run) -> None:
    quick, hang = (sys.executable, "-c", "pass"), (sys.executable, "-c", SLEEP)
    hung = Plan(IntentSpec(name="hung", tasks=(TaskSpec(id="h1", command=hang),
                                               TaskSpec(id="h2", command=hang))))
    warm = Plan(IntentSpec(name="warm", tasks=tuple(
        TaskSpec(id=f"w{n}", command=quick) for n in range(3))))
    async with await Engine.open(db_path) as engine:
        for plan, expected in ((hung, "remaining: no data yet"), (warm, None),
                               (hung, "remaining: ~")):
            execution = await engine.start(SessionRequest(plan=plan, workspace=workspace,
                                                          workflow="test"))
            run = asyncio.create_task(engine.run(execution))
            if expected is None:
                assert await run == SessionState.COMPLETED
                continue
            while len(execution.snapshot().running) < 2:
                await asyncio.sleep(0.02)
            text = (await asyncio.to_thread(cli, "state", "current")).stdout
            data = json.loads((await asyncio.to_thread(cli, "state", "current",
                                                       "--json")).stdout)
            assert expected in text
            left = data["remaining"]
            if expected.endswith("~"):
                assert "(80%: " in text and execution.snapshot().remaining is not None
                assert left["low"] <= left["seconds"] <= left["high"]
                assert left["coverage"] == 0.8
            else:
                assert left is None and execution.snapshot().remaining is None
            execution.request(Control("abort", reason="test"))
            assert await run == SessionState.ABORTED
    ended = await asyncio.to_thread(cli, "state", "current")
    assert "remaining: none, the session has ended" in ended.stdout
    assert json.loads((await asyncio.to_thread(cli, "state", "current", "--json")
                       ).stdout)["remaining"] is None
