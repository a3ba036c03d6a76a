"""Work stealing: a property test (a stolen task always goes to an agent that shares a
capability with its own, runs the same kind of runner and is not archived), per-agent
limits, and a real run whose steals `orchestrator parallel status` reports."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator_tui.core.states import SessionState
from orchestrator_tui.core.stealing import AgentSlots, Queued, plan_steals
from orchestrator_tui.core.workflow import build_plan, parse_workflow
from orchestrator_tui.engine.registry import load_registry
from orchestrator_tui.engine.session import Engine, SessionRequest
from tests.conftest import Run

CAPS = ("build", "test", "review")
agents_st = st.lists(st.builds(
    AgentSlots, name=st.sampled_from("abcdef"),
    capabilities=st.frozensets(st.sampled_from(CAPS), max_size=2),
    runner=st.sampled_from(("command", "claude")), free=st.integers(0, 3),
    archived=st.booleans()), max_size=6, unique_by=lambda a: a.name)


@settings(max_examples=300, deadline=None)
@given(agents=agents_st, data=st.data())
def test_a_stolen_task_goes_to_an_agent_that_may_run_it(agents: list[AgentSlots],
                                                        data: st.DataObject) -> None:
    by_name = {a.name: a for a in agents}
    queues = {a.name: [Queued(f"{a.name}{i}", data.draw(st.floats(0, 10)), i)
                       for i in range(data.draw(st.integers(0, 4)))] for a in agents}
    steals = plan_steals(queues, by_name)
    taken = [s.task_id for s in steals]
    assert len(taken) == len(set(taken))
    for steal in steals:
        thief, victim = by_name[steal.thief], by_name[steal.victim]
        assert thief.capabilities & victim.capabilities
        assert thief.runner == victim.runner and not thief.archived
        assert not queues[thief.name] and steal.task_id.startswith(victim.name)
    for thief in agents:
        assert sum(s.thief == thief.name for s in steals) <= max(0, thief.free)


def test_the_thief_takes_the_best_task_of_the_longest_queue() -> None:
    agents = {n: AgentSlots(n, frozenset({"build"}), "command", f)
              for n, f in (("idle", 1), ("short", 0), ("long", 0))}
    queues = {"short": [Queued("s0", 9.0, 0)],
              "long": [Queued("l0", 1.0, 1), Queued("l1", 5.0, 2), Queued("l2", 5.0, 3)]}
    assert [(s.task_id, s.victim, s.thief) for s in plan_steals(queues, agents)] == [
        ("l1", "long", "idle")]


def write_agent(workspace: Path, name: str, capability: str) -> None:
    """A command agent doing one task at a time, noting who ran which task."""
    folder = workspace / ".claude" / "agents"
    folder.mkdir(parents=True, exist_ok=True)
    code = ("import os, time; time.sleep(0.2); open('ran.txt', 'a').write("
            "os.environ['ORCHESTRATOR_TASK'] + ' ' + os.environ['ORCHESTRATOR_AGENT'] + '\\n')")
    (folder / f"{name}.md").write_text(
        f"---\nname: {name}\ndescription: Works\ncapabilities: [{capability}]\n"
        f"runner: command\ncommand: {json.dumps(['{python}', '-c', code])}\n"
        f"max_concurrent: 1\n---\nYou work.\n")


async def test_an_idle_agent_steals_from_a_busy_one(tmp_path: Path, workspace: Path,
                                                    cli: Run) -> None:
    write_agent(workspace, "busy", "build")
    write_agent(workspace, "helper", "build")
    write_agent(workspace, "stranger", "paint")
    tasks = "\n".join(f"      - {{id: b{i}, agent: busy}}" for i in range(5))
    text = (f"intents:\n  x:\n    tasks:\n{tasks}\n      - {{id: h0, agent: helper}}\n"
            "      - {id: s0, agent: stranger}\n")
    registry = load_registry(workspace)
    plan = build_plan(parse_workflow(text, source="w.yaml", known_agents=set(registry.agents)),
                      "x")
    db = workspace / ".orchestrator" / "state.db"
    async with await Engine.open(db) as engine:
        execution = await engine.start(SessionRequest(plan=plan, workspace=workspace,
                                                      workflow="w.yaml", parallel_limit=4,
                                                      registry=registry))
        assert await engine.run(execution) == SessionState.COMPLETED
    ran = dict(line.split() for line in (workspace / "ran.txt").read_text().splitlines())
    assert ran["h0"] == "helper" and ran["s0"] == "stranger"
    stolen = [tid for tid in ran if tid.startswith("b") and ran[tid] == "helper"]
    assert stolen and all(ran[t] in ("busy", "helper") for t in ran if t.startswith("b"))
    assert execution.steals == {"helper": len(stolen)}
    with sqlite3.connect(db) as conn:
        agents = dict(conn.execute("SELECT id, agent FROM tasks"))
    assert all(agents[t] == "helper" for t in stolen)
    out = cli("--db", str(db), "--json", "parallel", "status")
    assert out.returncode == 0, out.stderr
    figures = json.loads(out.stdout)["agents"]
    assert figures["helper"]["steals"] == len(stolen)
    assert figures["busy"]["steals"] == figures["stranger"]["steals"] == 0
    assert all(f["queue"] == f["running"] == 0 for f in figures.values())
    assert 0 < figures["helper"]["busy"] <= 1.0
    text_out = cli("--db", str(db), "parallel", "status").stdout
    assert "helper" in text_out and f"steals {len(stolen)}" in text_out
