"""The `orchestrator` command as a user runs it: real processes, a real database."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil

from tests.conftest import CLI, Run, python_argv, write_workflow

SLOW = python_argv("import time; time.sleep(60)")


def slow_workflow(folder: Path, count: int = 2) -> Path:
    tasks = "\n".join(f"      - id: s{i}\n        command: {SLOW}" for i in range(count))
    return write_workflow(folder, f"intents:\n  slow:\n    tasks:\n{tasks}\n"
                                  f"      - id: after\n        command: {python_argv('pass')}\n"
                                  "        depends_on: [s0]\n")


def state_of(cli: Run) -> dict[str, object]:
    out = cli("state", "current", "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def running_pids(db: Path) -> list[int]:
    """Pids of attempts still running (none while the engine is still creating the schema)."""
    try:
        with sqlite3.connect(db) as conn:
            return [pid for (pid,) in conn.execute(
                "SELECT pid FROM attempts WHERE finished_at IS NULL AND pid IS NOT NULL")]
    except sqlite3.OperationalError:
        return []


def wait_for(condition, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def proc_state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def test_run_analyze_does_real_work(cli: Run, workspace: Path, db_path: Path) -> None:
    (workspace / "leaky.py").write_text('AWS_KEY = "AKIAIOSFODNN7EXAMPLE"\n'
                                        'def f(x):\n    return eval(x)\n')
    out = cli("run", "analyze", "--json")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["state"] == "COMPLETED"
    tasks = {t["task"]: t for t in summary["tasks"]}
    assert set(tasks) == {"security-scout", "code-reviewer", "perf-optimizer"}
    assert all(t["state"] == "succeeded" for t in tasks.values())
    assert "finding" in tasks["security-scout"]["result"]
    assert not tasks["security-scout"]["result"].startswith("0 findings")
    assert db_path.exists()


def test_state_history_graph_and_limit(cli: Run) -> None:
    assert cli("run", "analyze").returncode == 0
    current = state_of(cli)
    assert current["state"] == "COMPLETED" and current["tasks"] == {"succeeded": 3}
    history = json.loads(cli("state", "history", "--tasks", "--json").stdout)
    targets = [row["to"] for row in history["transitions"]]
    assert targets[:3] == ["IDLE", "PLANNING", "EXECUTING"] and targets[-1] == "COMPLETED"
    assert targets.count("succeeded") == 3
    graph = json.loads(cli("parallel", "show-graph", "--json").stdout)
    assert len(graph["levels"]) == 1 and len(graph["levels"][0]["tasks"]) == 3
    limit = cli("parallel", "set-limit", "6")
    assert limit.returncode == 0 and "6" in limit.stdout
    text = cli("state", "history").stdout
    assert "PLANNING -> EXECUTING" in text


def test_errors_are_one_clear_line(cli: Run, workspace: Path) -> None:
    out = cli("run", "nosuch")
    assert out.returncode == 2
    assert "unknown intent 'nosuch'" in out.stderr and "analyze" in out.stderr
    assert "Traceback" not in out.stderr
    noop = python_argv("pass")
    cyclic = write_workflow(workspace, "intents:\n  loop:\n    tasks:\n"
                                       f"      - {{id: a, command: {noop}, depends_on: [b]}}\n"
                                       f"      - {{id: b, command: {noop}, depends_on: [a]}}\n")
    out = cli("run", "loop", "--workflow", str(cyclic))
    assert out.returncode == 2 and "cycle" in out.stderr and "a" in out.stderr
    assert str(cyclic) in out.stderr
    unknown = write_workflow(workspace, "intents:\n  x:\n    tasks:\n"
                                        "      - {id: t, agent: nobody-here}\n", "u.yaml")
    out = cli("run", "x", "--workflow", str(unknown))
    assert out.returncode == 2 and "nobody-here" in out.stderr and "'t'" in out.stderr
    out = cli("run", "x", "--workflow", str(workspace / "missing.yaml"))
    assert out.returncode == 2 and "missing.yaml" in out.stderr
    out = cli("state", "current", "nosession")
    assert out.returncode == 2 and "no session" in out.stderr
    assert "Traceback" not in out.stderr


def test_a_workflow_given_before_the_command_is_the_commands(cli: Run,
                                                                workspace: Path) -> None:
    wf = write_workflow(workspace, f"intents:\n  mine:\n    tasks:\n      - id: only\n"
                                   f"        command: {python_argv('pass')}\n")
    out = cli("--workflow", str(wf), "run", "mine", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["intent"] == "mine"
    out = cli("--workflow", str(wf), "learn", "predict-time", "mine", "--json")
    assert out.returncode == 0 and json.loads(out.stdout)["intent"] == "mine", out.stderr


def test_failed_session_exits_one(cli: Run, workspace: Path) -> None:
    fail = python_argv("raise SystemExit(4)")
    wf = write_workflow(workspace, f"intents:\n  bad:\n    tasks:\n      - id: x\n"
                                   f"        command: {fail}\n")
    out = cli("run", "bad", "--workflow", str(wf))
    assert out.returncode == 1
    assert "exit code 4" in out.stdout


def test_agents_run_below_the_engine_and_cannot_be_stopped_by_the_terminal(
        cli: Run, workspace: Path, db_path: Path) -> None:
    """An agent reading the terminal gets an error instead of being stopped (SIGTTIN is
    ignored), and runs `agent_niceness` (default 10) steps below the engine."""
    code = ("import os, signal; status = open('/proc/self/status').read(); "
            "mask = int(status.split('SigIgn:')[1].split()[0], 16); "
            "print('SUMMARY:', bool(mask & (1 << (signal.SIGTTIN - 1))), "
            "os.getpriority(os.PRIO_PROCESS, 0), os.getpriority(os.PRIO_PROCESS, os.getppid()))")
    wf = write_workflow(workspace, f"intents:\n  look:\n    tasks:\n      - id: x\n"
                                   f"        command: {python_argv(code)}\n")
    for niceness in (None, "0", "3"):
        if niceness is not None:
            assert cli("settings", "set", "agent_niceness", niceness).returncode == 0
        out = cli("run", "look", "--workflow", str(wf))
        assert out.returncode == 0, out.stdout + out.stderr
        with sqlite3.connect(db_path) as conn:
            result = conn.execute("SELECT result FROM tasks ORDER BY updated_at DESC").fetchone()[0]
        ignored, agent, engine = result.split()
        assert ignored == "True"
        assert int(agent) == min(19, int(engine) + int(niceness or 10))
    bad = cli("settings", "set", "agent_niceness", "20")
    assert bad.returncode == 2 and "agent_niceness must be a whole number, 0 to 19" in bad.stderr


def test_pause_resume_abort_from_another_process(cli: Run, workspace: Path,
                                                 db_path: Path) -> None:
    wf = slow_workflow(workspace)
    env = {**os.environ}
    env.pop("ORCHESTRATOR_DB", None)
    runner = subprocess.Popen([*CLI, "run", "slow", "--workflow", str(wf)], cwd=workspace,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        wait_for(lambda: db_path.exists() and len(running_pids(db_path)) == 2)
        pids = running_pids(db_path)
        began = time.monotonic()
        out = cli("pause")
        assert out.returncode == 0, out.stderr
        assert time.monotonic() - began < 3
        assert "paused" in out.stdout and "2 agent process group(s) stopped" in out.stdout
        assert all(proc_state(pid) == "T" for pid in pids)
        assert state_of(cli)["state"] == "PAUSED"
        out = cli("resume")
        assert out.returncode == 0 and "resumed" in out.stdout
        wait_for(lambda: all(proc_state(pid) in "SR" for pid in pids))
        limit = cli("parallel", "set-limit", "3")
        assert "parallel limit set to 3" in limit.stdout.split(";")[-1]
        out = cli("abort")
        assert out.returncode == 0 and "aborting" in out.stdout
        assert runner.wait(timeout=30) == 3
    finally:
        if runner.poll() is None:
            runner.kill()
    for pid in pids:
        assert not psutil.pid_exists(pid)
    assert state_of(cli)["state"] == "ABORTED"


def test_abort_after_the_engine_was_killed(cli: Run, workspace: Path, db_path: Path) -> None:
    wf = slow_workflow(workspace, count=1)
    runner = subprocess.Popen([*CLI, "run", "slow", "--workflow", str(wf)], cwd=workspace,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: db_path.exists() and len(running_pids(db_path)) == 1)
    pid = running_pids(db_path)[0]
    wait_for(lambda: sqlite3.connect(db_path).execute(
        "SELECT process_start FROM attempts").fetchone()[0] is not None)
    os.kill(runner.pid, signal.SIGKILL)
    runner.wait()
    assert psutil.pid_exists(pid)
    out = cli("pause")
    assert out.returncode == 2 and "no engine is running" in out.stderr
    out = cli("abort")
    assert out.returncode == 0, out.stderr
    assert "1 leftover process(es) stopped" in out.stdout
    wait_for(lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie")
    assert state_of(cli)["state"] == "ABORTED"


def test_module_entry_point_and_version() -> None:
    out = subprocess.run([sys.executable, "-m", "orchestrator_tui", "--version"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.startswith("orchestrator ")
