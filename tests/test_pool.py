"""Dynamic pool sizing: the pure rule, and a real run whose pool grows and shrinks as a
scripted load says, within the user's limit, with a note per change; pressure wins."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path

from orchestrator_tui.core.models import IntentSpec, TaskSpec
from orchestrator_tui.core.plan import Plan
from orchestrator_tui.core.pool import Load, PoolWork, Resize, next_size
from orchestrator_tui.core.pressure import Pressure, SetLimit
from orchestrator_tui.core.states import SessionState
from orchestrator_tui.engine.events import Control
from orchestrator_tui.engine.pool_monitor import PoolConfig
from orchestrator_tui.engine.session import Engine, SessionRequest
from orchestrator_tui.engine.settings import save_setting

ROOM = Load(cpu_idle=0.6, memory_available=0.5, load_per_core=0.3)
BUSY = Load(cpu_idle=0.02, memory_available=0.5, load_per_core=1.8)
CALM = Load(cpu_idle=0.15, memory_available=0.5, load_per_core=0.9)


def test_the_rule() -> None:
    assert next_size(PoolWork(4, 8, 4, 12), ROOM) == Resize(
        4, 5, "CPU 60% idle, memory 50% available and 12 tasks ready")
    assert str(next_size(PoolWork(4, 8, 4, 12), ROOM)) == (
        "pool: 4 -> 5, CPU 60% idle, memory 50% available and 12 tasks ready")
    assert next_size(PoolWork(8, 8, 8, 12), ROOM) is None  # the user's limit is the ceiling
    assert next_size(PoolWork(4, 8, 4, 0), ROOM) is None  # no work waits
    assert next_size(PoolWork(4, 8, 2, 3), ROOM) is None  # slots are free already
    assert next_size(PoolWork(4, 8, 4, 3), Load(0.6, 0.2, 0.3)) is None  # memory short
    assert next_size(PoolWork(4, 8, 4, 3), BUSY) == Resize(
        4, 3, "CPU saturated (2% idle, load 1.80 per core)")
    assert next_size(PoolWork(4, 8, 4, 3), Load(0.5, 0.5, 1.6)) is not None  # load alone
    assert next_size(PoolWork(1, 8, 1, 3), BUSY) is None  # never below one
    assert next_size(PoolWork(4, 8, 4, 3), CALM) is None  # neither room nor saturation
    assert next_size(PoolWork(6, 3, 3, 3), ROOM) == Resize(6, 3, "your limit is 3")


def waiter(task_id: str, go: Path) -> TaskSpec:
    code = f"import os, time\nwhile not os.path.exists({str(go)!r}): time.sleep(0.02)"
    return TaskSpec(id=task_id, command=(sys.executable, "-c", code))


async def wait_until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_the_pool_follows_the_load(tmp_path: Path, workspace: Path) -> None:
    db = tmp_path / "state.db"
    go = tmp_path / "go"
    load = [ROOM]
    async with await Engine.open(db) as engine:
        await save_setting(db, "pool_sizing", "dynamic")
        await save_setting(db, "pressure_policy", "off")
        engine.pool = PoolConfig(probe=lambda: load[0], interval=0.02)
        execution = await engine.start(SessionRequest(
            plan=Plan(IntentSpec(name="p", tasks=tuple(waiter(f"t{i}", go)
                                                       for i in range(8)))),
            workspace=workspace, workflow="t", parallel_limit=5))
        run = asyncio.create_task(engine.run(execution))

        def running() -> int:
            return len(execution.snapshot().running)

        await wait_until(lambda: execution.parallel_limit == 5 and running() == 5)
        load[0] = BUSY
        await wait_until(lambda: execution.parallel_limit == 1)
        assert running() == 5  # shrinking stops new starts; it never kills a task
        notes = [n for n in execution.log if n.startswith("pool:")]
        assert notes[-1] == "pool: 2 -> 1, CPU saturated (2% idle, load 1.80 per core)"
        assert any(n.endswith("tasks ready") and "-> 5, CPU 60% idle" in n for n in notes)

        load[0] = ROOM  # pressure holds the limit: the pool waits for it
        execution.apply_pressure(SetLimit(1, 3), Pressure(0.05, None), "memory")
        await asyncio.sleep(0.2)
        assert execution.pool_work() is None and execution.parallel_limit == 1
        execution.apply_pressure(SetLimit(5, 0, restored=True), Pressure(0.5, None), "memory")
        assert execution.pool_work() is not None

        execution.request(Control("set-limit", "3"))  # the user's limit is the ceiling
        await wait_until(lambda: execution.user_limit == 3)
        go.write_text("")
        assert await run == SessionState.COMPLETED
    assert all(int(n.split("-> ")[1].split(",")[0]) <= 5
               for n in execution.log if n.startswith("pool:"))
