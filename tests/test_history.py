"""Random control sequences during real runs never reach an illegal state, and the recorded
history of every task and of the session is complete: each change starts where the last one
ended, and replaying the history through the state machines gives the stored states."""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator_tui.core.models import IntentSpec, TaskSpec
from orchestrator_tui.core.plan import Plan
from orchestrator_tui.core.states import (
    FINAL_SESSION_STATES,
    SessionState,
    TaskState,
    check_session,
    check_task,
)
from orchestrator_tui.engine.events import Control
from orchestrator_tui.engine.session import Engine, SessionRequest

SLEEPY = "tests.helpers:sleepy"


actions = st.lists(st.tuples(st.sampled_from(["pause", "resume", "abort", "set-limit"]),
                             st.integers(0, 30), st.integers(1, 4)), max_size=6)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(width=st.integers(1, 6), depth=st.integers(1, 4), script=actions)
def test_random_controls_keep_a_complete_legal_history(
        width: int, depth: int, script: list[tuple[str, int, int]]) -> None:
    tasks = [TaskSpec(id=f"t{d}-{w}", python=SLEEPY,
                      depends_on=tuple(f"t{d - 1}-{x}" for x in range(width)) if d else ())
             for d in range(depth) for w in range(width)]
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "state.db"
        final = asyncio.run(_run(db, Path(folder), tasks, script))
        _check_history(db, final)


async def _run(db: Path, workspace: Path, tasks: list[TaskSpec],
               script: list[tuple[str, int, int]]) -> SessionState:
    plan = Plan(IntentSpec(name="h", tasks=tuple(tasks)))
    async with await Engine.open(db) as engine:
        execution = await engine.start(SessionRequest(plan=plan, workspace=workspace,
                                                      workflow="h", parallel_limit=2))
        run = asyncio.create_task(engine.run(execution))
        for action, delay_ms, limit in script:
            await asyncio.sleep(delay_ms / 1000)
            if run.done():
                break
            execution.request(Control(action, str(limit) if action == "set-limit" else None))
        # The user comes back: whatever is paused, once the requests are handled, resumes.
        for _ in range(600):
            if run.done():
                break
            if execution.session_state == SessionState.PAUSED:
                execution.request(Control("resume"))
            await asyncio.wait({run}, timeout=0.05)
        return await asyncio.wait_for(run, 5)


def _check_history(db: Path, final: SessionState) -> None:
    with sqlite3.connect(db) as conn:
        session_rows = conn.execute("SELECT from_state, to_state FROM transitions "
                                    "WHERE task_id IS NULL ORDER BY id").fetchall()
        stored_session = conn.execute("SELECT state FROM sessions").fetchone()[0]
        task_rows = conn.execute("SELECT task_id, from_state, to_state FROM transitions "
                                 "WHERE task_id IS NOT NULL ORDER BY id").fetchall()
        stored_tasks = dict(conn.execute("SELECT id, state FROM tasks").fetchall())
    state: SessionState | None = None
    for old, new in session_rows:
        assert old == state
        if state is not None:
            check_session("s", state, SessionState(new))
        state = SessionState(new)
    assert state == final == SessionState(stored_session)
    assert final in FINAL_SESSION_STATES
    replay = dict.fromkeys(stored_tasks, TaskState.PENDING)
    for task_id, old, new in task_rows:
        assert replay[task_id] == old
        check_task(task_id, TaskState(old), TaskState(new))
        replay[task_id] = TaskState(new)
    assert replay == stored_tasks
    if final == SessionState.COMPLETED:
        assert set(stored_tasks.values()) == {"succeeded"}
    if final == SessionState.ABORTED:
        assert {"pending", "ready", "running", "paused"}.isdisjoint(stored_tasks.values())
