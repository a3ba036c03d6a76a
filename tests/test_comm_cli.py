"""`orchestrator comm`, `progress` and `context` as agents run them: real processes, one file."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.conftest import CLI, Run, many_tasks


def run(db: Path, *args: str, env: dict[str, str] | None = None, stdin: bytes | None = None,
        ) -> subprocess.CompletedProcess[str]:
    merged = {**os.environ, "ORCHESTRATOR_DB": str(db), **(env or {})}
    for key in ("ORCHESTRATOR_AGENT", "ORCHESTRATOR_SESSION", "ORCHESTRATOR_TASK"):
        if key not in (env or {}):
            merged.pop(key, None)
    out = subprocess.run([*CLI, *args], capture_output=True, timeout=60, env=merged,
                         input=stdin, check=False, cwd=db.parent)
    return subprocess.CompletedProcess(out.args, out.returncode, out.stdout.decode(),
                                       out.stderr.decode())


def test_send_receive_ack_and_errors(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    assert run(db, "comm", "register", "builder", "--capabilities", "build,test",
               "--events", "task_completed").returncode == 0
    agent = {"ORCHESTRATOR_AGENT": "lead", "ORCHESTRATOR_SESSION": "s1"}
    sent = run(db, "comm", "send", "build", "job", '{"n": 1}', "--to-capability",
               "--priority", "critical", "--json", env=agent)
    assert sent.returncode == 0 and json.loads(sent.stdout)["agents"] == ["builder"]
    dead = run(db, "comm", "send", "nobody", "job", "{}", env=agent)
    assert dead.returncode == 1 and "no agent named 'nobody'" in dead.stdout
    for payload, words in ((b"\xff\x00binary", "not UTF-8"), (b"{nope", "not valid JSON"),
                           (b'"' + b"x" * 300_000 + b'"', "over the limit")):
        bad = run(db, "comm", "send", "builder", "blob", "-", env=agent, stdin=payload)
        assert bad.returncode == 2 and words in bad.stderr and "Traceback" not in bad.stderr
        assert "to 'builder' (type 'blob')" in bad.stderr
    me = {"ORCHESTRATOR_AGENT": "builder"}
    got = run(db, "comm", "receive", "--max", "5", "--json", env=me)
    [message] = json.loads(got.stdout)
    assert message["payload"] == {"n": 1} and message["from"] == "lead"
    assert message["priority"] == "critical" and message["session"] == "s1"
    assert run(db, "comm", "ack", str(message["id"]), env=me).returncode == 0
    wrong = run(db, "comm", "ack", str(message["id"]), "--agent", "lead")
    assert wrong.returncode == 2 and "not to 'lead'" in wrong.stderr
    nobody = run(db, "comm", "receive")
    assert nobody.returncode == 2 and "--agent NAME" in nobody.stderr
    shown = json.loads(run(db, "comm", "show-messages", "--agent", "builder",
                           "--json").stdout)
    assert shown["counts"] == {"acknowledged": 1, "dead_letter": 1}
    status = json.loads(run(db, "comm", "agent-status", "--json").stdout)
    assert status[0]["agent"] == "builder" and status[0]["events"] == ["task_completed"]
    task = {**me, "ORCHESTRATOR_SESSION": "s1", "ORCHESTRATOR_TASK": "t1"}
    assert run(db, "progress", "60", "tests written", env=task).returncode == 0
    assert run(db, "progress", "160", env=task).returncode == 2
    events = json.loads(run(db, "comm", "show-events", "--json").stdout)
    assert events[-1]["payload"] == {"task": "t1", "percent": 60.0, "note": "tests written"}


def test_context_get_set_compare_and_set(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    agent = {"ORCHESTRATOR_AGENT": "a", "ORCHESTRATOR_SESSION": "s1"}
    assert run(db, "context", "set", "api", '{"v": 1}', "--expect-version", "0",
               env=agent).returncode == 0
    clash = run(db, "context", "set", "api", '{"v": 2}', "--expect-version", "0", env=agent)
    assert clash.returncode == 2 and "version 1" in clash.stderr and "written by a" in clash.stderr
    assert run(db, "context", "set", "api", '{"v": 2}', "--expect-version", "1",
               "--agent", "b", env=agent).returncode == 0
    value = json.loads(run(db, "context", "get", "api", "--json", env=agent).stdout)
    assert value["value"] == {"v": 2} and value["version"] == 2 and value["written_by"] == "b"
    history = json.loads(run(db, "context", "history", "api", "--json", env=agent).stdout)
    assert [h["written_by"] for h in history] == ["a", "b"]
    other = run(db, "context", "get", "api", "--session", "s2")
    assert other.returncode == 1 and "not set" in other.stdout
    bad = run(db, "context", "set", "k", "not json", env=agent)
    assert bad.returncode == 2 and "not valid JSON" in bad.stderr


AGENT = """
import json, os, subprocess, sys, time
me, peer, count = sys.argv[2], sys.argv[3], int(sys.argv[4])
cli = [sys.executable, "-m", "orchestrator_tui"]
env = {**os.environ, "ORCHESTRATOR_AGENT": me}
def call(*args):
    out = subprocess.run([*cli, *args], capture_output=True, text=True, env=env)
    sys.stdout.write(out.stdout)
    sys.stderr.write(out.stderr)
    return out
for n in range(count):
    call("comm", "send", peer, "work", json.dumps({"from": me, "n": n}),
         "--priority", ["high", "normal", "low"][n % 3])
got, deadline = [], time.monotonic() + 90
while len(got) < count and time.monotonic() < deadline:
    out = call("comm", "receive", "--max", "10", "--wait", "3", "--ack", "--json")
    got += json.loads(out.stdout or "[]")
print("GOT " + json.dumps([m["payload"] for m in got]))
"""


def test_eight_cli_agents_while_a_workflow_runs(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    names = [f"a{i}" for i in range(8)]
    for name in names:
        assert run(db, "comm", "register", name).returncode == 0
    script = tmp_path / "agent.py"
    script.write_text(AGENT)
    workflow = many_tasks(tmp_path, 40)
    env = {**os.environ, "ORCHESTRATOR_DB": str(db)}
    env.pop("ORCHESTRATOR_AGENT", None)
    engine = subprocess.Popen([*CLI, "run", "many", "--workflow", str(workflow),
                               "--parallel", "4"], cwd=tmp_path, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    per_agent = 3
    agents = [subprocess.Popen([sys.executable, str(script), "-", name,
                                names[(i + 1) % 8], str(per_agent)], cwd=tmp_path, env=env,
                               text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
              for i, name in enumerate(names)]
    outputs = [proc.communicate(timeout=180) for proc in [engine, *agents]]
    assert engine.returncode == 0, outputs[0]
    for out, err in outputs:
        assert "locked" not in out + err and "busy" not in out + err, err
        assert "Traceback" not in err
    received = [json.loads(out.rsplit("GOT ", 1)[1]) for out, _ in outputs[1:]]
    every = sorted((m["from"], m["n"]) for got in received for m in got)
    assert every == sorted((name, n) for name in names for n in range(per_agent))
    with sqlite3.connect(db) as conn:
        states = dict(conn.execute("SELECT state, count(*) FROM messages GROUP BY state"))
        tasks = conn.execute("SELECT count(*) FROM tasks WHERE state = 'succeeded'").fetchone()
    assert states == {"acknowledged": 8 * per_agent}
    assert tasks == (40,)


def test_an_agent_publishes_its_own_events(cli: Run) -> None:
    assert cli("comm", "register", "lead", "--events", "tests_passed").returncode == 0
    out = cli("comm", "publish", "tests_passed", '{"count": 12}', "--agent", "tester")
    assert out.returncode == 0 and "1 subscriber(s)" in out.stdout, out.stderr
    bad = cli("comm", "publish", "tests_passed", "{not json", "--agent", "tester")
    assert bad.returncode == 2 and "JSON" in bad.stderr and "Traceback" not in bad.stderr
    got = cli("comm", "receive", "--agent", "lead", "--json")
    assert '"tests_passed"' in got.stdout and '"count": 12' in got.stdout.replace('\\"', '"')
