"""The engine on real processes and a real SQLite file: order, failures, retries, timeouts,
pause, resume and abort, and a complete history."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import sqlite3
import sys
import time
from pathlib import Path

import psutil
import pytest

from orchestrator_tui.core.errors import IllegalTransition
from orchestrator_tui.core.models import IntentSpec, TaskSpec
from orchestrator_tui.core.plan import Plan
from orchestrator_tui.core.states import SessionState, TaskState
from orchestrator_tui.engine.events import Control
from orchestrator_tui.engine.execution import Execution
from orchestrator_tui.engine.session import Engine, SessionRequest

PY = sys.executable


def cmd(task_id: str, code: str, **fields: object) -> TaskSpec:
    """A task running `code` with this interpreter."""
    return TaskSpec(id=task_id, command=(PY, "-c", code), **fields)  # type: ignore[arg-type]


async def run_plan(db: Path, workspace: Path, tasks: list[TaskSpec], parallel: int = 4,
                   max_concurrent: int | None = None) -> tuple[SessionState, Execution]:
    plan = Plan(IntentSpec(name="test", tasks=tuple(tasks), max_concurrent=max_concurrent))
    async with await Engine.open(db) as engine:
        execution = await engine.start(SessionRequest(plan=plan, workspace=workspace,
                                                      workflow="test", parallel_limit=parallel))
        final = await engine.run(execution)
    return final, execution


def rows(db: Path, sql: str, *params: object) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return list(conn.execute(sql, params))


async def test_dependencies_run_in_order_and_history_is_complete(
        tmp_path: Path, workspace: Path) -> None:
    ledger = tmp_path / "ledger.txt"
    append = f"open({str(ledger)!r}, 'a').write('{{}}\\n')"
    tasks = [cmd("a", append.format("a")), cmd("b", append.format("b"), depends_on=("a",)),
             cmd("c", append.format("c"), depends_on=("a",)),
             cmd("d", append.format("d"), depends_on=("b", "c"))]
    db = tmp_path / "state.db"
    final, _ = await run_plan(db, workspace, tasks)
    assert final == SessionState.COMPLETED
    order = ledger.read_text().split()
    assert order[0] == "a" and order[-1] == "d" and sorted(order) == ["a", "b", "c", "d"]
    for task in "abcd":
        path = [r[0] for r in rows(db, "SELECT to_state FROM transitions WHERE task_id = ? "
                                       "ORDER BY id", task)]
        assert path == ["ready", "running", "succeeded"]
    session = [r[0] for r in rows(db, "SELECT to_state FROM transitions WHERE task_id IS NULL "
                                      "ORDER BY id")]
    assert session == ["IDLE", "PLANNING", "EXECUTING", "COMPLETED"]
    assert rows(db, "SELECT state FROM sessions") == [("COMPLETED",)]
    assert rows(db, "SELECT count(*) FROM attempts WHERE outcome = 'succeeded'") == [(4,)]
    [(stored, digest)] = rows(db, "SELECT plan, plan_hash FROM sessions")
    assert digest == hashlib.sha256(str(stored).encode()).hexdigest()


async def test_a_failure_skips_dependents_and_fails_the_session(
        tmp_path: Path, workspace: Path) -> None:
    tasks = [cmd("bad", "import sys; print('boom', file=sys.stderr); sys.exit(3)"),
             cmd("after", "pass", depends_on=("bad",)),
             cmd("later", "pass", depends_on=("after",)), cmd("free", "pass")]
    db = tmp_path / "state.db"
    final, _ = await run_plan(db, workspace, tasks)
    assert final == SessionState.FAILED
    states = dict(rows(db, "SELECT id, state FROM tasks"))  # type: ignore[arg-type]
    assert states == {"bad": "failed", "after": "skipped", "later": "skipped",
                      "free": "succeeded"}
    error = rows(db, "SELECT error, exit_code FROM tasks WHERE id = 'bad'")[0]
    assert error == ("exit code 3: boom", 3)


async def test_retries_run_again_until_success(tmp_path: Path, workspace: Path) -> None:
    counter = tmp_path / "count"
    code = (f"import pathlib, sys; p = pathlib.Path({str(counter)!r}); "
            "n = int(p.read_text()) if p.exists() else 0; p.write_text(str(n + 1)); "
            "sys.exit(0 if n >= 1 else 1)")
    db = tmp_path / "state.db"
    final, _ = await run_plan(db, workspace, [cmd("flaky", code, retries=2)])
    assert final == SessionState.COMPLETED
    assert rows(db, "SELECT attempts, state FROM tasks") == [(2, "succeeded")]
    path = [r[0] for r in rows(db, "SELECT to_state FROM transitions WHERE task_id = 'flaky' "
                                   "ORDER BY id")]
    assert path == ["ready", "running", "retrying", "ready", "running", "succeeded"]


async def test_pids_are_written_once_a_process_lives_or_with_its_end(
        tmp_path: Path, workspace: Path) -> None:
    true = shutil.which("true") or "true"
    release = tmp_path / "release"
    wait = (f"import pathlib, time\nwhile not pathlib.Path({str(release)!r}).exists(): "
            "time.sleep(0.01)")
    plan = Plan(IntentSpec(name="test", tasks=(TaskSpec(id="quick", command=(true,)),
                                               cmd("slow", wait))))
    db = tmp_path / "state.db"
    async with await Engine.open(db) as engine:
        execution = await engine.start(SessionRequest(plan=plan, workspace=workspace,
                                                      workflow="test", parallel_limit=2))
        running = asyncio.ensure_future(engine.run(execution))
        deadline = time.monotonic() + 15
        while not rows(db, "SELECT pid, process_start FROM attempts WHERE task_id = 'slow' "
                           "AND finished_at IS NULL AND pid IS NOT NULL"):
            assert time.monotonic() < deadline, "the running process's pid was not written"
            await asyncio.sleep(0.02)
        [(pid, started)] = rows(db, "SELECT pid, process_start FROM attempts "
                                    "WHERE task_id = 'slow'")
        assert isinstance(pid, int) and psutil.Process(pid).is_running()
        assert started is not None
        release.touch()
        assert await running == SessionState.COMPLETED
    # The quick command ended before the sweep: its pid came with its end, in its one row.
    [(quick_pid, outcome)] = rows(db, "SELECT pid, outcome FROM attempts WHERE task_id = 'quick'")
    assert isinstance(quick_pid, int) and outcome == "succeeded"


async def test_a_timeout_kills_the_task(tmp_path: Path, workspace: Path) -> None:
    db = tmp_path / "state.db"
    began = time.monotonic()
    final, _ = await run_plan(db, workspace, [cmd("slow", "import time; time.sleep(60)",
                                                  timeout=0.5)])
    assert time.monotonic() - began < 10
    assert final == SessionState.FAILED
    assert rows(db, "SELECT error FROM tasks") == [("timed out after 0.5 s",)]


async def test_output_is_capped_and_counted(tmp_path: Path, workspace: Path) -> None:
    db = tmp_path / "state.db"
    code = "import sys; sys.stdout.write('x' * 3_000_000 + '\\nSUMMARY: done big')"
    final, _ = await run_plan(db, workspace, [cmd("loud", code)])
    assert final == SessionState.COMPLETED
    stdout, size = rows(db, "SELECT stdout, output_bytes FROM attempts")[0]
    assert isinstance(stdout, str) and len(stdout) <= 256 * 1024
    assert size == 3_000_000 + len("\nSUMMARY: done big")
    assert rows(db, "SELECT result FROM tasks") == [("done big",)]


async def test_output_of_a_quick_command_is_kept_whole(tmp_path: Path, workspace: Path) -> None:
    db = tmp_path / "state.db"
    code = "import sys; print('a' * 40_000); print('to stderr', file=sys.stderr); print('end')"
    final, _ = await run_plan(db, workspace, [cmd("quick", code)])
    assert final == SessionState.COMPLETED
    [(stdout, stderr, size)] = rows(db, "SELECT stdout, stderr, output_bytes FROM attempts")
    assert stdout == "a" * 40_000 + "\nend\n" and stderr == "to stderr\n"
    assert size == len(stdout) + len(stderr)


async def test_a_child_left_holding_the_output_does_not_hold_the_task(
        tmp_path: Path, workspace: Path) -> None:
    db = tmp_path / "state.db"
    sleeper = f"import time; time.sleep(30)  # left by {tmp_path}"  # names this test's child
    code = ("import subprocess, sys; subprocess.Popen([sys.executable, '-c', "
            f"{sleeper!r}], start_new_session=True); print('left one behind')")
    began = time.monotonic()
    try:
        final, _ = await run_plan(db, workspace, [cmd("leaves", code)])
        assert final == SessionState.COMPLETED and time.monotonic() - began < 10
        assert rows(db, "SELECT stdout FROM attempts") == [("left one behind\n",)]
    finally:
        for proc in psutil.process_iter(["cmdline"]):
            if sleeper in (proc.info["cmdline"] or []):
                proc.kill()


async def test_limits_cap_concurrency(tmp_path: Path, workspace: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    code = ("import os, time, pathlib; d = pathlib.Path({!r}); p = d / str(os.getpid()); "
            "p.write_text(str(len(list(d.iterdir())))); time.sleep(0.3); p.unlink()")
    tasks = [cmd(f"t{i}", code.format(str(marks))) for i in range(6)]
    db = tmp_path / "state.db"
    final, _ = await run_plan(db, workspace, tasks, parallel=4, max_concurrent=2)
    assert final == SessionState.COMPLETED
    running = [r[0] for r in rows(db, "SELECT started_at FROM tasks ORDER BY started_at")]
    assert len(running) == 6
    starts = rows(db, "SELECT started_at, finished_at FROM tasks")
    for start, _ in starts:
        overlapping = sum(1 for s, f in starts if s <= start < f)  # type: ignore[operator]
        assert overlapping <= 2


def proc_state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


async def wait_until(condition, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def test_pause_stops_processes_resume_continues_abort_leaves_none(
        tmp_path: Path, workspace: Path) -> None:
    # Each task starts a child in its own process group (and one that escapes it).
    spawn = ("import subprocess, sys, time; "
             f"subprocess.Popen([{PY!r}, '-c', 'import time; time.sleep(60)']); "
             f"subprocess.Popen([{PY!r}, '-c', 'import time; time.sleep(60)'], "
             "start_new_session=True); time.sleep(60)")
    plan = Plan(IntentSpec(name="t", tasks=(cmd("one", spawn), cmd("two", spawn),
                                            cmd("three", "pass", depends_on=("one",)))))
    async with await Engine.open(tmp_path / "state.db") as engine:
        execution = await engine.start(SessionRequest(plan=plan, workspace=workspace,
                                                      workflow="t", parallel_limit=4))
        run = asyncio.create_task(engine.run(execution))
        await wait_until(lambda: len(execution.snapshot().running) == 2 and all(
            v.pid and len(psutil.Process(v.pid).children(recursive=True)) == 2
            for v in execution.snapshot().running))
        leaders = [v.pid for v in execution.snapshot().running]
        family = [p.pid for pid in leaders for p in psutil.Process(pid).children(True)]
        in_group = [pid for pid in family if psutil.Process(pid).ppid() in leaders
                    and __import__("os").getpgid(pid) in leaders] + leaders

        execution.request(Control("pause"))
        await wait_until(lambda: execution.session_state == SessionState.PAUSED)
        await wait_until(lambda: all(proc_state(pid) == "T" for pid in in_group))
        assert all(execution.states[t] == TaskState.PAUSED for t in ("one", "two"))

        execution.request(Control("resume"))
        await wait_until(lambda: execution.session_state == SessionState.EXECUTING)
        await wait_until(lambda: all(proc_state(pid) in "SR" for pid in in_group))

        execution.request(Control("abort"))
        final = await asyncio.wait_for(run, 30)
    assert final == SessionState.ABORTED
    for pid in leaders + family:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"
    assert execution.states == {"one": "cancelled", "two": "cancelled", "three": "cancelled"}


async def test_an_illegal_transition_raises_and_writes_nothing(
        tmp_path: Path, workspace: Path) -> None:
    db = tmp_path / "state.db"
    final, execution = await run_plan(db, workspace, [cmd("a", "pass")])
    assert final == SessionState.COMPLETED
    before = rows(db, "SELECT count(*) FROM transitions")
    with pytest.raises(IllegalTransition, match="succeeded -> running"):
        execution.record.set_task("a", TaskState.RUNNING, "again", time.time())
    with pytest.raises(IllegalTransition, match="COMPLETED -> EXECUTING"):
        execution._set_session(SessionState.EXECUTING, "again", time.time())
    assert execution.states["a"] == TaskState.SUCCEEDED
    assert rows(db, "SELECT count(*) FROM transitions") == before


async def test_a_missing_program_fails_with_a_clear_error(
        tmp_path: Path, workspace: Path) -> None:
    db = tmp_path / "state.db"
    final, _ = await run_plan(db, workspace, [TaskSpec(id="x", command=("no-such-prog-42",))])
    assert final == SessionState.FAILED
    (error,) = rows(db, "SELECT error FROM tasks")[0]
    assert isinstance(error, str) and "cannot start" in error and "no-such-prog-42" in error


async def test_a_program_that_cannot_run_fails_naming_it(tmp_path: Path, workspace: Path
                                                         ) -> None:
    """Found, but not executable: the child's report of its failed exec becomes the error."""
    program = tmp_path / "not-executable"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o644)
    db = tmp_path / "state.db"
    final, _ = await run_plan(db, workspace, [TaskSpec(id="x", command=(str(program),))])
    assert final == SessionState.FAILED
    assert rows(db, "SELECT error FROM tasks") == [
        (f"cannot start: Permission denied ({program})",)]


async def test_python_tasks_run_in_process(tmp_path: Path, workspace: Path) -> None:
    tasks = [TaskSpec(id=f"n{i}", python="orchestrator_tui.engine.runners.python:noop",
                      depends_on=(f"n{i - 1}",) if i else ()) for i in range(50)]
    db = tmp_path / "state.db"
    final, execution = await run_plan(db, workspace, tasks)
    assert final == SessionState.COMPLETED
    assert execution.counts == {"succeeded": 50}
    assert rows(db, "SELECT count(*) FROM transitions WHERE task_id IS NOT NULL") == [(150,)]


async def test_a_task_raising_anything_fails_cleanly(tmp_path: Path, workspace: Path) -> None:
    tasks = [TaskSpec(id="boom", python="tests.helpers:explode"),
             TaskSpec(id="bad-import", python="tests.no_such_module:f"),
             TaskSpec(id="fine", python="tests.helpers:sleepy")]
    db = tmp_path / "state.db"
    final, _ = await asyncio.wait_for(run_plan(db, workspace, tasks), 30)
    assert final == SessionState.FAILED
    errors = dict(rows(db, "SELECT id, error FROM tasks"))  # type: ignore[arg-type]
    assert errors["boom"] == "RuntimeError: exploded on purpose"
    assert "cannot start" in errors["bad-import"] and "no_such_module" in errors["bad-import"]
    assert errors["fine"] == ""
