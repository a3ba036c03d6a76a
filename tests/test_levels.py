"""Level mode: one level at a time, a barrier per level, in the engine (real processes) and
through `orchestrator run --mode levels`; list mode does not wait for a whole level."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import pytest

from orchestrator_tui.core.errors import OrchestratorError
from orchestrator_tui.core.models import IntentSpec, TaskSpec
from orchestrator_tui.core.plan import Plan
from orchestrator_tui.core.states import SessionState
from orchestrator_tui.engine.session import Engine, SessionRequest
from tests.conftest import Run, python_argv, write_workflow

SLOW = "import time; time.sleep(0.3)"
FAST = "pass"


def task(task_id: str, code: str, *deps: str) -> TaskSpec:
    return TaskSpec(id=task_id, command=(sys.executable, "-c", code), depends_on=deps)


# level 0: a (slow), b, c; level 1: d after b, e after c; level 2: f after d and e.
TASKS = [task("a", SLOW), task("b", FAST), task("c", FAST), task("d", FAST, "b"),
         task("e", SLOW, "c"), task("f", FAST, "d", "e")]


def span(db: Path, session: str) -> dict[str, tuple[int, int]]:
    """Per task, the transition ids of its first start and of its end (ids are the order
    in which the engine recorded them)."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT task_id, to_state, id FROM transitions WHERE session_id = ?"
                            " AND task_id IS NOT NULL ORDER BY id", (session,)).fetchall()
    started = {t: i for t, s, i in reversed(rows) if s == "running"}
    ended = {t: i for t, s, i in rows if s == "succeeded"}
    return {t: (started[t], ended[t]) for t in ended}


def assert_barriers(plan: Plan, spans: dict[str, tuple[int, int]]) -> None:
    for later, (start, _) in spans.items():
        for earlier, (_, end) in spans.items():
            if plan.levels[earlier] < plan.levels[later]:
                assert end < start, f"{later} started before {earlier} of a lower level ended"


async def run(db: Path, workspace: Path, mode: str) -> tuple[Plan, str]:
    plan = Plan(IntentSpec(name="lv", tasks=tuple(TASKS)))
    async with await Engine.open(db) as engine:
        execution = await engine.start(SessionRequest(plan=plan, workspace=workspace,
                                                      workflow="t", parallel_limit=4,
                                                      mode=mode))
        assert await engine.run(execution) == SessionState.COMPLETED
    return plan, execution.session_id


async def test_levels_mode_has_a_barrier_per_level(tmp_path: Path, workspace: Path) -> None:
    db = tmp_path / "state.db"
    plan, session = await run(db, workspace, "levels")
    assert_barriers(plan, span(db, session))


async def test_list_mode_starts_work_before_its_level_ends(tmp_path: Path,
                                                           workspace: Path) -> None:
    db = tmp_path / "state.db"
    _, session = await run(db, workspace, "list")
    spans = span(db, session)
    assert spans["d"][0] < spans["a"][1]  # d needs only b; it does not wait for a


async def test_unknown_mode_is_refused(tmp_path: Path, workspace: Path) -> None:
    with pytest.raises(OrchestratorError, match="unknown mode 'waves'"):
        await run(tmp_path / "state.db", workspace, "waves")


def test_cli_run_mode_levels(cli: Run, workspace: Path, db_path: Path) -> None:
    workflow = write_workflow(workspace, f"""intents:
  lv:
    tasks:
      - id: a
        command: {python_argv(SLOW)}
      - id: b
        command: {python_argv(FAST)}
      - id: c
        command: {python_argv(FAST)}
        depends_on: [b]
""")
    out = cli("run", "lv", "--workflow", str(workflow), "--mode", "levels")
    assert out.returncode == 0, out.stderr
    with sqlite3.connect(db_path) as conn:
        session = conn.execute("SELECT id, plan FROM sessions").fetchone()[0]
    spans = span(db_path, session)
    assert spans["a"][1] < spans["c"][0]
    bad = cli("run", "lv", "--workflow", str(workflow), "--mode", "waves")
    assert bad.returncode == 2 and "invalid choice: 'waves'" in bad.stderr


async def test_a_recovered_session_keeps_its_mode(tmp_path: Path, workspace: Path) -> None:
    from orchestrator_tui.store import queries

    db = tmp_path / "state.db"
    plan = Plan(IntentSpec(name="two", tasks=(task("a", "pass"), task("b", "pass", "a"))))
    async with await Engine.open(db) as engine:  # started, then its engine stops
        started = await engine.start(SessionRequest(plan=plan, workspace=workspace,
                                                    workflow="two", mode="levels"))
    async with await Engine.open(db) as engine:
        session = await queries.find_session(engine.reader, started.session_id)
        assert session.mode == "levels"
        execution, _ = await engine.recover(session, None)
        assert execution.mode == "levels"
        assert await engine.run(execution) == SessionState.COMPLETED
