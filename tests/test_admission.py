"""Resource admission: the pure selection (a property test on random workloads), the
`resources` setting, a task too big for the machine refused at planning, and the engine
never running more than the declared capacity on real processes."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator_tui.core.admission import (
    Admission,
    ResourceError,
    check_fits,
    fits,
    parse_resources,
    select,
    task_need,
)
from orchestrator_tui.core.errors import OrchestratorError
from orchestrator_tui.core.models import IntentSpec, TaskSpec
from orchestrator_tui.core.plan import Plan
from orchestrator_tui.core.states import SessionState
from orchestrator_tui.engine.session import Engine, SessionRequest
from orchestrator_tui.engine.settings import check, save_setting

NAMES = ("cpu", "memory_mb", "gpu")
needs = st.dictionaries(st.sampled_from(NAMES), st.integers(0, 4).map(float), max_size=3)


@settings(max_examples=300, deadline=None)
@given(capacity=st.fixed_dictionaries({n: st.integers(0, 8).map(float) for n in NAMES}),
       ready=st.lists(needs, max_size=12), running=st.lists(needs, max_size=6),
       slots=st.integers(0, 8))
def test_admission_never_exceeds_capacity_and_never_idles(
        capacity: dict[str, float], ready: list[dict[str, float]],
        running: list[dict[str, float]], slots: int) -> None:
    admission = Admission(dict(capacity))
    for need in running:
        if admission.fits(need):
            admission.hold(need)
    chosen = select(range(len(ready)), lambda i: ready[i], admission.free(), slots)
    for i in chosen:
        admission.hold(ready[i])
    for name in NAMES:
        assert admission.used.get(name, 0.0) <= capacity[name] + 1e-9
    assert len(chosen) <= slots
    if len(chosen) < slots:  # a free slot: nothing left waiting may fit what is free
        free = admission.free()
        assert not [i for i in range(len(ready)) if i not in chosen and fits(ready[i], free)]
    assert chosen == sorted(chosen)  # taken in policy order


def test_needs_and_declarations() -> None:
    assert task_need({}, {}) == {"cpu": 1.0}
    assert task_need({}, {"gpu": 1.0}) == {"gpu": 1.0}
    assert task_need({"cpu": 2.0}, {"gpu": 1.0}) == {"cpu": 2.0}
    assert parse_resources("gpu=1, llm_slots=4") == {"gpu": 1.0, "llm_slots": 4.0}
    assert parse_resources("none") == {}
    for bad in ("gpu", "gpu=-1", "gpu=x", "gpu=1,gpu=2", "../x=1"):
        with pytest.raises(ResourceError, match="resources"):
            parse_resources(bad, "setting resources")
    assert check("resources", "gpu=2") == "gpu=2"
    with pytest.raises(OrchestratorError, match="resources: gpu must be a number"):
        check("resources", "gpu=lots")
    assert check("pool_sizing", "dynamic") == "dynamic"
    with pytest.raises(OrchestratorError, match="pool_sizing"):
        check("pool_sizing", "huge")
    with pytest.raises(ResourceError, match=r"task 'train' needs gpu=2, more than this "
                                            r"machine's gpu=1"):
        check_fits("train", {"gpu": 2.0}, {"gpu": 1.0})
    with pytest.raises(ResourceError, match="settings set resources tpu=N"):
        check_fits("train", {"tpu": 1.0}, {"cpu": 4.0})


def holder(task_id: str, ledger: Path, **fields: object) -> TaskSpec:
    """A task that appends `+` when it starts and `-` when it ends, holding a while."""
    code = (f"import time; f = open({str(ledger)!r}, 'a', buffering=1); f.write('+'); "
            "time.sleep(0.15); f.write('-')")
    return TaskSpec(id=task_id, command=(sys.executable, "-c", code), **fields)  # type: ignore[arg-type]


async def test_engine_admits_only_what_fits(tmp_path: Path, workspace: Path) -> None:
    db = tmp_path / "state.db"
    ledger = tmp_path / "ledger"
    async with await Engine.open(db) as engine:
        await save_setting(db, "resources", "gpu=2")
        tasks = [holder(f"t{i}", ledger, resources={"gpu": 1.0}) for i in range(5)]
        tasks.append(holder("big", ledger, resources={"gpu": 2.0}))
        execution = await engine.start(SessionRequest(
            plan=Plan(IntentSpec(name="gpu", tasks=tuple(tasks))), workspace=workspace,
            workflow="t", parallel_limit=6))
        assert await engine.run(execution) == SessionState.COMPLETED
    depth = peak = 0
    for mark in ledger.read_text():
        depth += 1 if mark == "+" else -1
        peak = max(peak, depth)
    assert peak <= 2  # gpu=2: at most two gpu=1 tasks, or the gpu=2 task alone
    assert execution.admission is not None and execution.admission.used.get("gpu") == 0


async def test_a_task_bigger_than_the_machine_fails_at_planning(tmp_path: Path,
                                                                workspace: Path) -> None:
    db = tmp_path / "state.db"
    task = TaskSpec(id="train", command=("true",), resources={"gpu": 1.0})
    async with await Engine.open(db) as engine:
        with pytest.raises(ResourceError, match="task 'train' needs gpu=1"):
            await engine.start(SessionRequest(plan=Plan(IntentSpec(name="x", tasks=(task,))),
                                              workspace=workspace, workflow="t"))
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM sessions").fetchone() == (0,)
