"""The engine on the message bus, with real processes and a real SQLite file: its events reach
the agents that listen to them (and only subscribed types are published), checkpoints are
announced, and the messages a task's agent got while it ran and did not acknowledge are
handed over to the agents of the tasks after it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from pathlib import Path

from orchestrator_tui.core.states import SessionState
from orchestrator_tui.core.workflow import build_plan, parse_workflow
from orchestrator_tui.engine.backends import task_prompt
from orchestrator_tui.engine.checkpoints import create_checkpoint
from orchestrator_tui.engine.registry import Registry, load_registry
from orchestrator_tui.engine.session import Engine, SessionRequest
from orchestrator_tui.store import bus
from tests.conftest import Run, python_argv, write_workflow

OK = python_argv("print('SUMMARY: fine')")
FAIL = python_argv("import sys; sys.exit('it broke')")


def rows(db: Path, sql: str, *params: object) -> list[tuple[object, ...]]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return list(conn.execute(sql, params))


def register(db: Path, name: str, events: list[str]) -> None:
    with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as conn:
        bus.register(conn, name, events=events)


def inbox(db: Path, agent: str) -> list[tuple[str, dict[str, object]]]:
    """The (type, payload) of every message addressed to `agent`, in order."""
    return [(str(kind), json.loads(str(payload))) for kind, payload in rows(
        db, "SELECT type, payload FROM messages WHERE agent = ? ORDER BY id", agent)]


async def run_workflow(db: Path, workspace: Path, text: str,
                       registry: Registry | None = None,
                       listeners: dict[str, list[str]] | None = None) -> tuple[SessionState, str]:
    """Open the engine, register the listeners, run intent `x`; the end and the session."""
    registry = registry or Registry()
    plan = build_plan(parse_workflow(text, source="bus.yaml",
                                     known_agents=set(registry.agents)), "x")
    async with await Engine.open(db) as engine:
        for name, events in (listeners or {}).items():
            register(db, name, events)
        execution = await engine.start(SessionRequest(
            plan=plan, workspace=workspace, workflow="bus.yaml", parallel_limit=4,
            registry=registry))
        return await engine.run(execution), execution.session_id


async def test_engine_events_reach_their_subscribers(tmp_path: Path, workspace: Path) -> None:
    db = tmp_path / "state.db"
    text = ("intents:\n  x:\n    tasks:\n"
            f"      - {{id: good, command: {OK}}}\n"
            f"      - {{id: bad, command: {FAIL}}}\n"
            f"      - {{id: after, command: {OK}, depends_on: [good]}}\n")
    final, session = await run_workflow(
        db, workspace, text, listeners={"watcher": ["task_completed", "task_failed",
                                                    "state_changed"],
                                        "everything": ["*"], "deaf": []})
    assert final == SessionState.FAILED
    got = inbox(db, "watcher")
    completed = sorted(str(p["task"]) for kind, p in got if kind == "task_completed")
    assert completed == ["after", "good"]
    [failed] = [p for kind, p in got if kind == "task_failed"]
    assert failed["task"] == "bad" and failed["attempt"] == 1 and failed["state"] == "failed"
    assert "it broke" in str(failed["error"]) and "agent" in failed
    moves = [(p["from"], p["to"]) for kind, p in got if kind == "state_changed"]
    assert moves == [("PLANNING", "EXECUTING"), ("EXECUTING", "FAILED")]
    assert [kind for kind, _ in inbox(db, "everything")] == [kind for kind, _ in got]
    assert inbox(db, "deaf") == []
    events = rows(db, "SELECT type, subscribers, session_id FROM bus_events ORDER BY id")
    assert len(events) == len(got) and {e[1] for e in events} == {2}
    assert {e[2] for e in events} == {session}
    assert rows(db, "SELECT DISTINCT sender, state, event_id IS NOT NULL FROM messages") == [
        ("engine", "pending", 1)]


async def test_only_subscribed_types_are_published(tmp_path: Path, workspace: Path) -> None:
    db = tmp_path / "state.db"
    text = "intents:\n  x:\n    tasks:\n" + "".join(
        f"      - {{id: t{i}, command: {OK}}}\n" for i in range(5))
    final, _ = await run_workflow(db, workspace, text, listeners={"watcher": ["task_completed"]})
    assert final == SessionState.COMPLETED
    assert rows(db, "SELECT type, count(*) FROM bus_events GROUP BY type") == [
        ("task_completed", 5)]
    quiet = tmp_path / "quiet.db"
    final, _ = await run_workflow(quiet, workspace, text)
    assert final == SessionState.COMPLETED
    assert rows(quiet, "SELECT count(*) FROM bus_events") == [(0,)]
    assert rows(quiet, "SELECT count(*) FROM messages") == [(0,)]


async def test_an_agent_registering_mid_run_is_heard_after_a_heartbeat(
        tmp_path: Path, workspace: Path) -> None:
    db = tmp_path / "state.db"
    go = tmp_path / "go"
    wait = python_argv(f"import pathlib, time; go = pathlib.Path({str(go)!r}); "
                       "[time.sleep(0.02) for _ in iter(go.exists, True)]")
    text = ("intents:\n  x:\n    tasks:\n"
            f"      - {{id: early, command: {OK}}}\n"
            f"      - {{id: waits, command: {wait}}}\n")
    plan = build_plan(parse_workflow(text, source="bus.yaml", known_agents=set()), "x")
    async with await Engine.open(db) as engine:
        execution = await engine.start(SessionRequest(plan=plan, workspace=workspace,
                                                      workflow="bus.yaml", parallel_limit=4))
        running = asyncio.ensure_future(engine.run(execution))
        while execution.states["early"] != "succeeded":
            await asyncio.sleep(0.02)
        register(db, "late", ["task_completed"])
        while not execution.record.wants("task_completed"):  # the next heartbeat
            assert not running.done(), running.result()
            await asyncio.sleep(0.05)
        go.touch()
        assert await running == SessionState.COMPLETED
    assert [p["task"] for _, p in inbox(db, "late")] == ["waits"]


async def test_a_checkpoint_is_announced(tmp_path: Path, workspace: Path) -> None:
    db = tmp_path / "state.db"
    (workspace / "notes.txt").write_text("kept\n")
    async with await Engine.open(db):
        register(db, "watcher", ["checkpoint_created"])
    row = await create_checkpoint(db, workspace, None, "before-change", "by hand")
    [(kind, payload)] = inbox(db, "watcher")
    assert kind == "checkpoint_created"
    assert payload["checkpoint"] == row.id and payload["name"] == "before-change"


def write_agent(workspace: Path, name: str, code: str) -> None:
    """A command agent of the workspace running `code` with this interpreter."""
    folder = workspace / ".claude" / "agents"
    folder.mkdir(parents=True, exist_ok=True)
    argv = json.dumps(["{python}", "-c", code])
    (folder / f"{name}.md").write_text(f"---\nname: {name}\ndescription: Passes notes on\n"
                                       f"runner: command\ncommand: {argv}\n---\nYou work.\n")


# While `write` runs, the test sends its agent three messages; the agent takes two (the one
# from before the run, and the first new one), acknowledges only the new one and never reads
# the other two.
WRITER = """
import os, sqlite3, sys
from orchestrator_tui.store import bus
if os.environ['ORCHESTRATOR_TASK'] != 'write':
    sys.exit(0)
conn = sqlite3.connect(os.environ['ORCHESTRATOR_DB'], isolation_level=None)
session = os.environ['ORCHESTRATOR_SESSION']
for n in (1, 2, 3):
    bus.send(conn, bus.Outgoing('lead', 'writer', 'note', '{"n": %d}' % n, session_id=session))
got = bus.receive(conn, 'writer', 2)
assert [m.payload for m in got] == ['{"n": 0}', '{"n": 1}']
bus.ack(conn, 'writer', [got[1].id])
print('SUMMARY: written')
"""
# The reviewer takes what reached it and writes the payloads down.
REVIEWER = """
import json, os, sqlite3
from orchestrator_tui.store import bus
conn = sqlite3.connect(os.environ['ORCHESTRATOR_DB'], isolation_level=None)
got = bus.receive(conn, 'reviewer', 10)
bus.ack(conn, 'reviewer', [m.id for m in got])
open('reviewed.json', 'w').write(json.dumps([json.loads(m.payload) for m in got]))
print('SUMMARY: reviewed')
"""


async def test_unacknowledged_messages_go_on_to_the_next_agents(tmp_path: Path,
                                                                workspace: Path) -> None:
    db = tmp_path / "state.db"
    write_agent(workspace, "writer", WRITER)
    write_agent(workspace, "reviewer", REVIEWER)
    write_agent(workspace, "tester", "print('SUMMARY: tested')")
    text = ("intents:\n  x:\n    tasks:\n      - {id: write, agent: writer}\n"
            "      - {id: review, agent: reviewer, depends_on: [write]}\n"
            "      - {id: test, agent: tester, depends_on: [write]}\n"
            "      - {id: rewrite, agent: writer, depends_on: [write]}\n")
    async with await Engine.open(db):  # a message from before the run stays with writer
        with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as conn:
            bus.register(conn, "writer", events=["task_completed"])
            bus.send(conn, bus.Outgoing("lead", "writer", "note", '{"n": 0}'))
    final, session = await run_workflow(db, workspace, text, load_registry(workspace))
    assert final == SessionState.COMPLETED
    assert json.loads((workspace / "reviewed.json").read_text()) == [{"n": 2}, {"n": 3}]
    copies = rows(db, "SELECT agent, sender, type, payload, session_id, reason FROM messages "
                      "WHERE reason LIKE 'handed over%' ORDER BY agent, id")
    originals = {str(payload): number for payload, number in rows(
        db, "SELECT payload, id FROM messages WHERE agent = 'writer' AND type = 'note'")}
    assert copies == [
        (agent, "lead", "note", payload, session,
         f"handed over from message {originals[payload]}")
        for agent in ("reviewer", "tester") for payload in ('{"n": 2}', '{"n": 3}')]
    assert rows(db, "SELECT agent, state FROM messages WHERE reason LIKE 'handed over%' "
                    "ORDER BY agent, id") == [("reviewer", "acknowledged")] * 2 + [
        ("tester", "pending")] * 2


def test_agent_clis_are_told_how_to_use_the_bus(workspace: Path) -> None:
    write_agent(workspace, "writer", "print('x')")
    agent = load_registry(workspace).agents["writer"]
    plan = build_plan(parse_workflow("intents:\n  x:\n    tasks:\n      - {id: w, agent: writer}\n",
                                     source="bus.yaml", known_agents={"writer"}), "x")
    prompt = task_prompt(agent, plan.tasks["w"], "x")
    for command in ("orchestrator comm send TO TYPE PAYLOAD", "orchestrator comm receive",
                    "orchestrator progress PERCENT NOTE", "orchestrator context get",
                    "orchestrator context set"):
        assert command in prompt


def test_a_cache_hit_is_announced(cli: Run, workspace: Path) -> None:
    flow = write_workflow(workspace, "intents:\n  quick:\n    tasks:\n      - id: a\n"
                                     f"        command: {python_argv('pass')}\n")
    env = {"ORCHESTRATOR_NO_CACHE": ""}
    assert cli("comm", "register", "watcher", "--events", "cache_hit").returncode == 0
    assert cli("run", "quick", "--workflow", str(flow), env=env).returncode == 0
    hit = cli("run", "quick", "--workflow", str(flow), env=env)
    assert "Using cached solution" in hit.stdout, hit.stderr
    got = cli("comm", "receive", "--max", "5", "--json", env={"ORCHESTRATOR_AGENT": "watcher"})
    assert '"cache_hit"' in got.stdout, got.stdout + got.stderr
