"""The error-recovery matrix end to end, on real processes and a real SQLite file: retries,
fallback to the agent with the better recorded success, decomposition (used, failed, not
needed, resumed), escalation to an agent and to the user, config errors, and a run through
`orchestrator run`."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from orchestrator_tui.core.errors import WorkflowError
from orchestrator_tui.core.states import SessionState, TaskState
from orchestrator_tui.core.workflow import build_plan, parse_workflow
from orchestrator_tui.engine.events import Control
from orchestrator_tui.engine.execution import Execution
from orchestrator_tui.engine.registry import Registry, load_registry
from orchestrator_tui.engine.session import Engine, SessionRequest
from tests.conftest import Run, python_argv, write_workflow

FAIL = python_argv("import sys; sys.exit('it broke')")
OK = python_argv("print('SUMMARY: fine')")
FAST = "recovery: {backoff: 0.01, backoff_max: 0.02, escalate: none}\n"


def write_agent(workspace: Path, name: str, code: str, *, fallback: str = "") -> None:
    """A command agent in the workspace, sharing the capability `recovery-drill`."""
    folder = workspace / ".claude" / "agents"
    folder.mkdir(parents=True, exist_ok=True)
    argv = json.dumps(["{python}", "-c", code])
    extra = f"fallback: [{fallback}]\n" if fallback else ""
    (folder / f"{name}.md").write_text(
        f"---\nname: {name}\ndescription: Drills recovery\ncapabilities: [recovery-drill]\n"
        f"runner: command\ncommand: {argv}\n{extra}---\nYou drill.\n")


def rows(db: Path, sql: str, *params: object) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return list(conn.execute(sql, params))


def states(db: Path, session_id: str) -> dict[str, str]:
    with sqlite3.connect(db) as conn:
        return dict(conn.execute("SELECT id, state FROM tasks WHERE session_id = ?",
                                 (session_id,)))


async def run_text(db: Path, workspace: Path, text: str, intent: str = "x",
                   registry: Registry | None = None,
                   during: Callable[[Execution], object] | None = None,
                   ) -> tuple[SessionState, Execution]:
    """Parse a workflow text, run one intent in-process, return the end and the execution."""
    registry = registry or Registry()
    workflow = parse_workflow(text, source="drill.yaml", known_agents=set(registry.agents))
    plan = build_plan(workflow, intent)
    async with await Engine.open(db) as engine:
        execution = await engine.start(SessionRequest(plan=plan, workspace=workspace,
                                                      workflow="drill.yaml", parallel_limit=4,
                                                      registry=registry))
        running = asyncio.ensure_future(engine.run(execution))
        if during is not None:
            await until(lambda: execution.session_state == SessionState.PAUSED)
            during(execution)
        final = await running
    return final, execution


async def until(condition: Callable[[], bool], limit: float = 30.0) -> None:
    """Wait for `condition`, polling; fail (rather than hang) after `limit` seconds."""
    for _ in range(int(limit / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition never held")


def notes(execution: Execution) -> list[str]:
    return [line for line in execution.log if line.startswith("recovery:")]


async def test_a_flaky_task_retries_with_backoff_then_succeeds(tmp_path: Path,
                                                                workspace: Path) -> None:
    counter = tmp_path / "count"
    code = (f"import pathlib, sys; p = pathlib.Path({str(counter)!r}); "
            "n = int(p.read_text()) if p.exists() else 0; p.write_text(str(n + 1)); "
            "sys.exit(0 if n >= 2 else 'not yet')")
    text = (f"recovery: {{retries: 3, backoff: 0.01}}\nintents:\n  x:\n    tasks:\n"
            f"      - id: flaky\n        command: {python_argv(code)}\n")
    db = tmp_path / "state.db"
    final, execution = await run_text(db, workspace, text)
    assert final == SessionState.COMPLETED
    assert rows(db, "SELECT attempts, state FROM tasks") == [(3, "succeeded")]
    assert notes(execution) == [
        "recovery: flaky failed (exit code 1: not yet); retry 1 of 3 in 0.01 s",
        "recovery: flaky failed (exit code 1: not yet); retry 2 of 3 in 0.02 s"]


async def test_fallback_goes_to_the_agent_with_the_better_record(tmp_path: Path,
                                                                  workspace: Path) -> None:
    write_agent(workspace, "lint", "import sys; sys.exit('lint broke')")
    write_agent(workspace, "alpha-bad", "import sys; sys.exit('alpha broke')")
    write_agent(workspace, "zeta-good", "print('SUMMARY: zeta linted')")
    registry = load_registry(workspace)
    db = tmp_path / "state.db"
    seed = ("intents:\n  seed:\n    tasks:\n"
            + "".join(f"      - {{id: g{i}, agent: zeta-good}}\n" for i in range(3))
            + "".join(f"      - {{id: b{i}, agent: alpha-bad}}\n" for i in range(2)))
    final, _ = await run_text(db, workspace, seed, "seed", registry)
    assert final == SessionState.FAILED  # the history: zeta-good 3 of 3, alpha-bad 0 of 2
    text = ("recovery: {retries: 1, backoff: 0.01}\nintents:\n  x:\n    tasks:\n"
            "      - {id: check, agent: lint}\n")
    final, execution = await run_text(db, workspace, text, registry=registry)
    assert final == SessionState.COMPLETED
    session = execution.session_id
    assert rows(db, "SELECT agent, state, attempts, result FROM tasks WHERE session_id = ?",
                session) == [("zeta-good", "succeeded", 3, "zeta linted")]
    assert notes(execution) == [
        "recovery: check failed (exit code 1: lint broke); retry 1 of 1 in 0.01 s",
        "recovery: check failed (exit code 1: lint broke) after 1 retry; falling back to "
        "zeta-good (success 100% of 3)",
        "recovery: check succeeded with zeta-good"]
    path = [r[0] for r in rows(db, "SELECT to_state FROM transitions WHERE session_id = ? "
                                   "AND task_id = 'check' ORDER BY id", session)]
    assert path == ["ready", "running", "retrying", "ready", "running", "retrying", "ready",
                    "running", "succeeded"]


async def test_fallbacks_without_history_go_by_name_and_never_to_an_archived_agent(
        tmp_path: Path, workspace: Path) -> None:
    write_agent(workspace, "lint", "import sys; sys.exit('lint broke')", fallback="zeta-good")
    write_agent(workspace, "alpha-bad", "import sys; sys.exit('alpha broke')")
    write_agent(workspace, "beta-bad", "import sys; sys.exit('beta broke')")
    write_agent(workspace, "zeta-good", "print('SUMMARY: zeta linted')")
    registry = load_registry(workspace, archived=["zeta-good"])
    text = "recovery: {escalate: none}\nintents:\n  x:\n    tasks:\n" \
           "      - {id: check, agent: lint}\n      - {id: after, agent: lint, depends_on: " \
           "[check], retries: 0}\n"
    final, execution = await run_text(tmp_path / "state.db", workspace, text,
                                      registry=registry)
    # zeta-good is named by lint but archived: never chosen; the others by name, then none
    # is left (lint, alpha-bad and beta-bad have been tried).
    assert final == SessionState.FAILED
    assert notes(execution) == [
        "recovery: check failed (exit code 1: lint broke); falling back to alpha-bad "
        "(no history yet)",
        "recovery: check failed (exit code 1: alpha broke) after fallback to alpha-bad; "
        "falling back to beta-bad (no history yet)",
        "recovery: check failed (exit code 1: beta broke) after fallback to alpha-bad, "
        "beta-bad; giving up: escalate: none"]
    assert states(tmp_path / "state.db", execution.session_id) == {
        "check": "failed", "after": "skipped"}


DECOMPOSED = """intents:
  x:
    tasks:
      - id: big
        command: {big}
        decompose:
          - {{id: a, command: {a}}}
          - {{id: b, command: {b}, depends_on: [a]}}
      - id: after
        command: {after}
        depends_on: [big]
"""


def ledger_code(ledger: Path, name: str, fail: bool = False) -> str:
    code = f"open({str(ledger)!r}, 'a').write({name!r} + chr(10))"
    return python_argv(code + ("; import sys; sys.exit('no ' + " + repr(name) + ")"
                               if fail else ""))


async def test_a_decomposition_stands_in_for_its_failed_parent(tmp_path: Path,
                                                               workspace: Path) -> None:
    ledger = tmp_path / "ledger"
    text = FAST + DECOMPOSED.format(big=ledger_code(ledger, "big", fail=True),
                                    a=ledger_code(ledger, "a"), b=ledger_code(ledger, "b"),
                                    after=ledger_code(ledger, "after"))
    db = tmp_path / "state.db"
    final, execution = await run_text(db, workspace, text)
    assert final == SessionState.COMPLETED
    assert ledger.read_text().split() == ["big", "a", "b", "after"]
    assert states(db, execution.session_id) == {
        "big": "cancelled", "big.sub.a": "succeeded", "big.sub.b": "succeeded",
        "after": "succeeded"}
    assert notes(execution) == [
        "recovery: big failed (exit code 1: no big); decomposing it into big.sub.a, big.sub.b",
        "recovery: big failed; recovered by its decomposition (2 subtask(s) succeeded)"]
    reason = rows(db, "SELECT reason FROM transitions WHERE task_id = 'big' ORDER BY id "
                      "DESC LIMIT 1")[0][0]
    assert reason == "failed; recovered by its decomposition (big.sub.a, big.sub.b succeeded)"


async def test_a_decomposition_is_skipped_when_its_parent_succeeds(
        tmp_path: Path, workspace: Path) -> None:
    ledger = tmp_path / "ledger"
    text = FAST + DECOMPOSED.format(big=ledger_code(ledger, "big"), a=ledger_code(ledger, "a"),
                                    b=ledger_code(ledger, "b"),
                                    after=ledger_code(ledger, "after"))
    db = tmp_path / "state.db"
    final, execution = await run_text(db, workspace, text)
    assert final == SessionState.COMPLETED
    assert ledger.read_text().split() == ["big", "after"]
    assert states(db, execution.session_id) == {
        "big": "succeeded", "big.sub.a": "skipped", "big.sub.b": "skipped",
        "after": "succeeded"}
    reasons = rows(db, "SELECT DISTINCT reason FROM transitions WHERE task_id LIKE 'big.sub.%'")
    assert reasons == [("not needed: big succeeded",)]


async def test_a_failed_decomposition_fails_its_parent_and_skips_the_rest(
        tmp_path: Path, workspace: Path) -> None:
    ledger = tmp_path / "ledger"
    text = FAST + DECOMPOSED.format(big=ledger_code(ledger, "big", fail=True),
                                    a=ledger_code(ledger, "a", fail=True),
                                    b=ledger_code(ledger, "b"),
                                    after=ledger_code(ledger, "after"))
    db = tmp_path / "state.db"
    final, execution = await run_text(db, workspace, text)
    assert final == SessionState.FAILED
    assert ledger.read_text().split() == ["big", "a"]
    assert states(db, execution.session_id) == {
        "big": "cancelled", "big.sub.a": "failed", "big.sub.b": "skipped",
        "after": "skipped"}
    assert notes(execution)[-1] == (
        "recovery: big failed (its decomposition failed at big.sub.a: exit code 1: no a); "
        "giving up: escalate: none")


async def test_a_resumed_session_keeps_a_recovered_parent_recovered(
        tmp_path: Path, workspace: Path) -> None:
    ledger = tmp_path / "ledger"
    text = FAST + DECOMPOSED.format(big=ledger_code(ledger, "big", fail=True),
                                    a=ledger_code(ledger, "a"), b=ledger_code(ledger, "b"),
                                    after=ledger_code(ledger, "after"))
    plan = build_plan(parse_workflow(text, source="drill.yaml"), "x")
    async with await Engine.open(tmp_path / "state.db") as engine:
        first = await engine.start(SessionRequest(plan=plan, workspace=workspace,
                                                  workflow="drill.yaml"))
        done = {"big": TaskState.CANCELLED, "big.sub.a": TaskState.SUCCEEDED,
                "big.sub.b": TaskState.SUCCEEDED}
        resumed = Execution(session_id=first.session_id, plan=plan, writer=engine.writer,
                            jobs=first.jobs, parallel_limit=2, task_states=done,
                            boot_id=engine.boot_id)
        assert await resumed.run() == SessionState.COMPLETED
    assert ledger.read_text().split() == ["after"]


async def test_escalation_runs_the_named_agent_with_the_failure(tmp_path: Path,
                                                                workspace: Path) -> None:
    write_agent(workspace, "lint", "import sys; sys.exit('lint broke badly')")
    write_agent(workspace, "architect-drill",
                "import os; print('told:', os.environ['ORCHESTRATOR_PREVIOUS_ERROR'])")
    registry = load_registry(workspace)
    text = ("recovery: {fallback: false, escalate: architect-drill}\nintents:\n  x:\n"
            "    tasks:\n      - {id: check, agent: lint}\n")
    db = tmp_path / "state.db"
    final, execution = await run_text(db, workspace, text, registry=registry)
    assert final == SessionState.COMPLETED
    assert notes(execution) == [
        "recovery: check failed (exit code 1: lint broke badly); escalating to "
        "architect-drill, with the failure in its prompt",
        "recovery: check succeeded with architect-drill"]
    assert rows(db, "SELECT agent FROM tasks") == [("architect-drill",)]
    stdout = rows(db, "SELECT stdout FROM attempts WHERE attempt = 2")[0][0]
    assert stdout == "told: exit code 1: lint broke badly\n"


async def test_escalation_to_the_user_pauses_the_session(tmp_path: Path,
                                                         workspace: Path) -> None:
    text = (f"recovery: {{backoff: 0.01}}\nintents:\n  x:\n    tasks:\n"
            f"      - {{id: bad, command: {FAIL}}}\n"
            f"      - {{id: after, command: {OK}, depends_on: [bad]}}\n")
    db = tmp_path / "state.db"
    seen: list[str] = []

    def decide(execution: Execution) -> None:
        seen.append(execution.session_state)
        execution.request(Control("resume", reason="the user skips it"))

    final, execution = await run_text(db, workspace, text, during=decide)
    assert seen == [SessionState.PAUSED]
    assert final == SessionState.FAILED
    reason = "bad failed after retries and fallbacks; decide: /resume to skip it, /abort"
    assert rows(db, "SELECT reason FROM transitions WHERE to_state = 'PAUSED'") == [(reason,)]
    assert notes(execution) == [
        f"recovery: bad failed (exit code 1: it broke); pausing the session: {reason}"]
    assert states(db, execution.session_id) == {"bad": "failed", "after": "skipped"}


@pytest.mark.parametrize(("text", "message"), [
    ("recovery: [1]\nintents:\n  x: {agents: [a]}\n",
     "drill.yaml: `recovery` must be a mapping with keys retries, backoff, backoff_max, "
     "fallback, escalate (line 1)"),
    ("intents:\n  x:\n    agents: [a]\n    recovery: {retries: -1}\n",
     "drill.yaml: intent 'x': `recovery.retries` must be an integer >= 0, not -1 (line 4)"),
    ("intents:\n  x:\n    agents: [a]\n    recovery: {fallback: maybe}\n",
     "drill.yaml: intent 'x': `recovery.fallback` must be true or false, not 'maybe' (line 4)"),
    ("recovery: {backoff: 5}\nintents:\n  x:\n    agents: [a]\n    recovery: {backoff_max: 1}\n",
     "drill.yaml: intent 'x': `recovery`: `backoff_max` (1) must not be less than `backoff` "
     "(5) (line 4)"),
    ("intents:\n  x:\n    agents: [a]\n    recovery: {escalate: architekt}\n",
     "drill.yaml: intent 'x': `recovery` escalates to unknown agent 'architekt'; did you mean "
     "'architect'? (or use pause, none) (line 4)"),
    ("intents:\n  x:\n    agents: [a]\n    recovery: {escalte: none}\n",
     "drill.yaml: intent 'x': unknown recovery field 'escalte' (did you mean 'escalate'?); "
     "allowed: retries, backoff, backoff_max, fallback, escalate (line 4)"),
    ("intents:\n  x:\n    tasks:\n      - {id: t, agent: a, decompose: {id: s}}\n",
     "drill.yaml: intent 'x': task 't': `decompose` must be a non-empty list of task "
     "mappings (line 4)"),
    ("intents:\n  x:\n    tasks:\n      - {id: t, agent: a, decompose: [{id: s/1, agent: a}]}\n",
     "drill.yaml: intent 'x': task 't': subtask #1 of `decompose`: its id 's/1' must be a "
     "non-empty string without spaces or '/' (line 4)"),
    ("intents:\n  x:\n    tasks:\n      - id: t\n        agent: a\n        decompose:\n"
     "          - {id: s, agent: a, depends_on: [z]}\n",
     "drill.yaml: intent 'x': task 't.sub.s': depends on 'z', which is not a sibling subtask "
     "(siblings: none) (line 7)"),
    ("intents:\n  x:\n    tasks:\n      - id: t\n        agent: a\n        decompose:\n"
     "          - {id: s, agent: a, decompose: [{id: u, agent: a}]}\n",
     "drill.yaml: intent 'x': task 't.sub.s': a subtask cannot be decomposed further (line 7)"),
    ("intents:\n  x:\n    tasks:\n      - id: t\n        agent: a\n        decompose:\n"
     "          - {id: s, agent: nobody}\n",
     "drill.yaml: intent 'x': task 't.sub.s': unknown agent 'nobody' (known: a, architect)"),
    ("intents:\n  x:\n    tasks:\n      - {id: t, agent: a, decompose: [{id: s, agent: a}]}\n"
     "      - {id: u, agent: a, depends_on: [t.sub.s]}\n",
     "drill.yaml: intent 'x': task 'u': depends on 't.sub.s', a subtask in the decomposition "
     "of 't'; depend on 't' instead"),
])
def test_config_errors_name_file_intent_and_task(text: str, message: str) -> None:
    with pytest.raises(WorkflowError) as info:
        parse_workflow(text, source="drill.yaml", known_agents={"a", "architect"})
    assert str(info.value) == message


def test_recovery_merges_file_and_intent_and_sets_default_retries() -> None:
    text = ("recovery: {retries: 2, backoff: 1, escalate: none}\nintents:\n"
            "  x:\n    recovery: {backoff: 0.1, fallback: false}\n    tasks:\n"
            "      - {id: t, agent: a, decompose: [{id: s, agent: a}, {id: r, agent: a, "
            "retries: 0}]}\n      - {id: u, agent: a, retries: 5}\n"
            "  y: {agents: [a]}\n")
    workflow = parse_workflow(text, source="drill.yaml", known_agents={"a"})
    x = workflow.intents["x"]
    assert x.recovery is not None and (x.recovery.retries, x.recovery.backoff,
                                       x.recovery.fallback, x.recovery.escalate) == \
        (2, 0.1, False, "none")
    assert [(task.id, task.retries, task.depends_on) for task in x.tasks] == [
        ("t", 2, ()), ("t.sub.s", 2, ("t",)), ("t.sub.r", 0, ("t",)), ("u", 5, ())]
    assert x.tasks[0].decompose == ("t.sub.s", "t.sub.r")
    assert workflow.intents["y"].tasks[0].retries == 2
    plan = build_plan(workflow, "x")
    assert type(plan).from_dict(json.loads(json.dumps(plan.to_dict()))).intent == plan.intent


def test_orchestrator_run_recovers_by_fallback(cli: Run, workspace: Path) -> None:
    write_agent(workspace, "lint", "import sys; sys.exit('lint broke')")
    write_agent(workspace, "helper", "print('SUMMARY: helped')")
    wf = write_workflow(workspace, "recovery: {backoff: 0.01}\nintents:\n  drill:\n"
                                   "    tasks:\n      - {id: check, agent: lint}\n")
    out = cli("run", "drill", "--workflow", str(wf), "--json")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["state"] == "COMPLETED"
    assert summary["tasks"][0]["agent"] == "helper"
    assert "recovery: check failed (exit code 1: lint broke); falling back to helper " \
           "(no history yet)" in summary["log"]
