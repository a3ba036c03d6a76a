"""The Ray executor on a real Ray: a workflow of commands on `ray.init(num_cpus=2)`, pause,
resume and abort of remote processes, placement by custom resources, and a three-node
`Cluster` losing a worker node mid-run."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from orchestrator_tui.core.models import IntentSpec, TaskSpec
from orchestrator_tui.core.plan import Plan
from orchestrator_tui.core.states import SessionState
from orchestrator_tui.engine.events import Control
from orchestrator_tui.engine.execution import Execution
from orchestrator_tui.engine.runners.ray_runner import MISSING, RayHandle, RayRunner
from orchestrator_tui.engine.session import Engine, SessionRequest

ray = pytest.importorskip("ray")
cluster_utils = pytest.importorskip("ray.cluster_utils")

PY = sys.executable
LOCAL = "local"


def cmd(task_id: str, code: str, **fields: object) -> TaskSpec:
    return TaskSpec(id=task_id, command=(PY, "-c", code), **fields)  # type: ignore[arg-type]


def rows(db: Path, sql: str, *params: object) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return list(conn.execute(sql, params))


async def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


def proc_state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """One local Ray for the module's single-node tests."""
    ray.shutdown()
    ray.init(num_cpus=2, resources={"special": 1}, include_dashboard=False,
             log_to_driver=False)
    yield
    ray.shutdown()


async def start(engine: Engine, workspace: Path, tasks: list[TaskSpec],
                parallel: int = 4) -> Execution:
    plan = Plan(IntentSpec(name="t", tasks=tuple(tasks)))
    return await engine.start(SessionRequest(plan=plan, workspace=workspace, workflow="t",
                                             parallel_limit=parallel, ray=RayRunner()))


async def test_a_workflow_of_commands_runs_as_ray_tasks(
        local_ray: None, tmp_path: Path, workspace: Path) -> None:
    tasks = [cmd("a", "print('hello from a')"),
             cmd("b", "import sys; print('to err', file=sys.stderr)", depends_on=("a",)),
             cmd("c", "print('partial'); raise SystemExit(3)", depends_on=("a",)),
             cmd("slow", "import time; time.sleep(30)", timeout=1.0),
             cmd("special", "print('placed')", resources={"special": 1, "cpu": 0.5}),
             TaskSpec(id="py", python="orchestrator_tui.engine.runners.python:noop")]
    db = tmp_path / "state.db"
    async with await Engine.open(db) as engine:
        execution = await start(engine, workspace, tasks)
        final = await asyncio.wait_for(engine.run(execution), 60)
    assert final == SessionState.FAILED
    assert execution.states == {"a": "succeeded", "b": "succeeded", "c": "failed",
                                "slow": "failed", "special": "succeeded", "py": "succeeded"}
    found = {r[0]: r[1:] for r in rows(
        db, "SELECT task_id, exit_code, stdout, stderr FROM attempts")}
    assert found["a"] == (0, "hello from a\n", "")
    assert found["b"] == (0, "", "to err\n")
    assert found["c"][:2] == (3, "partial\n")
    results = dict(rows(db, "SELECT id, COALESCE(result, '') || COALESCE(error, '') "
                            "FROM tasks"))
    assert "ray node" in results["a"] and "hello from a" in results["a"]
    assert "exit code 3" in results["c"]
    assert "timed out after 1 s" in results["slow"]


async def test_pause_resume_and_abort_reach_the_remote_processes(
        local_ray: None, tmp_path: Path, workspace: Path) -> None:
    marks = tmp_path / "pids"
    marks.mkdir()
    sleeper = (f"import os, time; open(os.path.join({str(marks)!r}, "
               "os.environ['ORCHESTRATOR_TASK']), 'w').write(str(os.getpid())); "
               "time.sleep(60)")
    async with await Engine.open(tmp_path / "state.db") as engine:
        execution = await start(engine, workspace, [cmd("one", sleeper), cmd("two", sleeper)])
        run = asyncio.create_task(engine.run(execution))
        await wait_until(lambda: len(list(marks.iterdir())) == 2
                         and all(p.read_text() for p in marks.iterdir()))
        pids = [int(p.read_text()) for p in marks.iterdir()]
        handles = [a.handle for a in execution._running.values()]
        assert all(isinstance(h, RayHandle) and h.pid is None for h in handles)
        assert sorted(h.remote_pid for h in handles) == sorted(pids)  # type: ignore[union-attr]

        execution.request(Control("pause"))
        await wait_until(lambda: all(proc_state(pid) == "T" for pid in pids))
        execution.request(Control("resume"))
        await wait_until(lambda: all(proc_state(pid) in "SR" for pid in pids))
        execution.request(Control("abort"))
        final = await asyncio.wait_for(run, 30)
    assert final == SessionState.ABORTED
    assert execution.states == {"one": "cancelled", "two": "cancelled"}
    for pid in pids:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"


def test_without_ray_the_cli_names_what_to_install(workspace: Path) -> None:
    code = ("import sys; sys.modules['ray'] = None; from orchestrator_tui.cli import main; "
            "sys.exit(main(['run', 'analyze', '--executor', 'ray']))")
    done = subprocess.run([PY, "-c", code], cwd=workspace, capture_output=True, text=True,
                          timeout=60, check=False, env={**os.environ, "ORCHESTRATOR_DB": str(
                              workspace / "state.db")})
    assert done.returncode == 2
    assert done.stderr.strip() == f"orchestrator: {MISSING}"


async def test_a_node_dying_mid_run_loses_nothing(tmp_path: Path, workspace: Path) -> None:
    """Head (1 CPU) + two workers; `keep` (not idempotent) can only run on worker A, which is
    removed while everything runs. Idempotent tasks lost with it run again on worker B; `keep`
    is not run again."""
    ray.shutdown()
    cluster = cluster_utils.Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "include_dashboard": False})
    node_a = cluster.add_node(num_cpus=3, resources={"worker": 2, "node_a": 1})
    cluster.add_node(num_cpus=2, resources={"worker": 2})
    try:
        ray.init(address=cluster.address, log_to_driver=False)
        cluster.wait_for_nodes()
        nap = "import time; time.sleep(4); print('done')"
        tasks = [cmd("keep", nap, idempotent=False, resources={"node_a": 1}),
                 *(cmd(f"w{i}", nap, resources={"worker": 1}) for i in range(4)),
                 cmd("after", "print('after')", depends_on=("w0", "w1", "w2", "w3"))]
        db = tmp_path / "state.db"
        async with await Engine.open(db) as engine:
            execution = await start(engine, workspace, tasks, parallel=8)
            run = asyncio.create_task(engine.run(execution))
            located = lambda: [a.handle for a in execution._running.values()  # noqa: E731
                               if isinstance(a.handle, RayHandle) and a.handle.node_id]
            await wait_until(lambda: len(located()) == 5, 60)
            where = {h.job.task_id: h.node_id for h in located()}
            assert where["keep"] == node_a.node_id  # placed by its custom resource
            on_a = {tid for tid, node in where.items() if node == node_a.node_id} - {"keep"}
            assert len(on_a) == 2  # worker A takes two of the four `worker` tasks
            lost_outcomes = []
            handle_keep = next(h for h in located() if h.job.task_id == "keep")
            cluster.remove_node(node_a)
            lost_outcomes.append(await asyncio.wait_for(handle_keep.wait(), 60))
            await wait_until(lambda: all(execution.states[t] == "succeeded"
                                         for t in ("w0", "w1", "w2", "w3", "after"))
                             and execution.states["keep"] == "interrupted", 90)
            execution.request(Control("abort"))  # `keep` waits for a decision
            await asyncio.wait_for(run, 30)
        assert lost_outcomes[0].lost and not lost_outcomes[0].succeeded
        attempts = dict(rows(db, "SELECT task_id, COUNT(*) FROM attempts GROUP BY task_id"))
        assert attempts["keep"] == 1  # never run twice
        assert all(attempts[t] == 2 for t in on_a)  # run again elsewhere
        assert all(attempts[t] == 1 for t in {"w0", "w1", "w2", "w3"} - on_a)
    finally:
        ray.shutdown()
        cluster.shutdown()
