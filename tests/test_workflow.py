"""Reading workflow files: the three intent forms, and an error for every kind of mistake."""

from __future__ import annotations

import json
import textwrap
from typing import Any

import pytest

from orchestrator_tui.core import workflow_checks as checks
from orchestrator_tui.core.errors import CycleError, WorkflowError
from orchestrator_tui.core.models import TaskSpec
from orchestrator_tui.core.plan import Plan
from orchestrator_tui.core.workflow import (
    RECOVERY_FIELDS,
    TASK_FIELDS,
    build_plan,
    parse_workflow,
    workflow_from_data,
)
from orchestrator_tui.core.workflow_text import load_yaml

SOURCE = "flows/nightly.yaml"


def parse(text: str, **kwargs: object) -> dict[str, Plan]:
    """Parse dedented YAML and build the plan of every intent."""
    workflow = parse_workflow(textwrap.dedent(text), source=SOURCE, **kwargs)  # type: ignore[arg-type]
    assert workflow.source == SOURCE
    return {name: build_plan(workflow, name) for name in workflow.intents}


def fails(text: str, match: str, *, task: str | None = None, intent: str | None = "nightly",
          **kwargs: object) -> WorkflowError:
    """Parse `text`, expecting an error naming the file, intent and task."""
    with pytest.raises(WorkflowError, match=match) as info:
        parse_workflow(textwrap.dedent(text), source=SOURCE, **kwargs)  # type: ignore[arg-type]
    error = info.value
    assert (error.file, error.intent, error.task) == (SOURCE, intent, task)
    message = str(error)
    assert message.startswith(f"{SOURCE}: ")
    if intent:
        assert f"intent {intent!r}" in message
    if task:
        assert f"task {task!r}" in message
    return error


SPEC_EXAMPLE = """
parallel_coordination:
  analyze_intent:
    agents: [security-scout, code-reviewer, perf-optimizer]
    parallel: true
    max_concurrent: 3

  build_intent:
    phases:
      - name: planning
        agents: [architect, api-designer]
        parallel: true
      - name: implementation
        agents: [builder-python, builder-typescript]
        parallel: true
        depends_on: [planning]
      - name: validation
        agents: [validator-test-runner, security-scout]
        parallel: true
        depends_on: [implementation]
"""


def test_agents_form_from_the_spec() -> None:
    plan = parse(SPEC_EXAMPLE)["analyze"]
    assert plan.intent.max_concurrent == 3
    assert list(plan.tasks) == ["security-scout", "code-reviewer", "perf-optimizer"]
    assert all(t.agent == t.id and not t.depends_on for t in plan.tasks.values())
    assert plan.level_count == 1


def test_phases_form_from_the_spec() -> None:
    plan = parse(SPEC_EXAMPLE)["build"]
    assert list(plan.tasks)[:3] == ["planning.architect", "planning.api-designer",
                                    "implementation.builder-python"]
    task = plan.tasks["validation.security-scout"]
    assert (task.agent, task.phase) == ("security-scout", "validation")
    assert task.depends_on == ("implementation.builder-python",
                               "implementation.builder-typescript")
    assert plan.tasks["implementation.builder-typescript"].depends_on == (
        "planning.architect", "planning.api-designer")
    assert plan.level_count == 3


def test_sequential_agents_and_phases_chain_in_order() -> None:
    plans = parse("""
        intents:
          review:
            agents: [a, b, c]
            parallel: false
          ship:
            phases:
              - {name: check, agents: [lint, test], parallel: false}
              - {name: deploy, agents: [push], depends_on: [check]}
    """)
    review = plans["review"].tasks
    assert [review[t].depends_on for t in "abc"] == [(), ("a",), ("b",)]
    ship = plans["ship"]
    assert ship.tasks["check.test"].depends_on == ("check.lint",)
    assert ship.tasks["deploy.push"].depends_on == ("check.lint", "check.test")
    assert ship.order == ["check.lint", "check.test", "deploy.push"]


def test_tasks_form_reads_every_field() -> None:
    plan = parse("""
        intents:
          Nightly:
            description: what it is for
            max_concurrent: 4
            examples: ["run the nightly build"]
            tasks:
              - id: fetch
                command: ["python", "fetch.py", "{workspace}"]
              - id: build
                agent: builder-python
                depends_on: [fetch]
                priority: 5
                timeout: 600
                retries: 2
                idempotent: false
                resources: {cpu: 1, memory_mb: 512}
                description: text
                phase: make
              - id: report
                python: "pkg.mod:func"
                args: {channel: "#ci", tries: [1, 2.5, null], opts: {dry: true}}
                depends_on: [build, fetch]
    """, known_agents={"builder-python"})["nightly"]
    intent = plan.intent
    assert (intent.name, intent.description, intent.max_concurrent, intent.examples) == (
        "nightly", "what it is for", 4, ("run the nightly build",))
    assert plan.tasks["fetch"] == TaskSpec(id="fetch",
                                           command=("python", "fetch.py", "{workspace}"))
    assert plan.tasks["build"] == TaskSpec(
        id="build", agent="builder-python", depends_on=("fetch",), priority=5, timeout=600.0,
        retries=2, idempotent=False, resources={"cpu": 1.0, "memory_mb": 512.0},
        description="text", phase="make")
    assert plan.tasks["report"].args == {"channel": "#ci", "tries": [1, 2.5, None],
                                         "opts": {"dry": True}}
    assert plan.levels == {"fetch": 0, "build": 1, "report": 2}
    assert Plan.from_dict(plan.to_dict()).intent == intent


def test_yaml_merge_keys_may_be_overridden() -> None:
    plan = parse("""
        intents:
          nightly:
            tasks:
              - &first {id: a, command: [make], timeout: 5}
              - {<<: *first, id: b, timeout: 9}
    """)["nightly"]
    assert (plan.tasks["a"].timeout, plan.tasks["b"].timeout) == (5.0, 9.0)
    assert plan.tasks["b"].command == ("make",)


def test_build_plan_of_an_unknown_intent_lists_the_known_ones() -> None:
    workflow = parse_workflow(textwrap.dedent(SPEC_EXAMPLE), source=SOURCE)
    assert build_plan(workflow, "ANALYZE").intent.name == "analyze"
    with pytest.raises(WorkflowError, match="unknown intent 'deploy'; known: "
                                            "analyze, build") as info:
        build_plan(workflow, "deploy")
    assert info.value.file == SOURCE


def task_yaml(*lines: str, extra: str = "") -> str:
    """A one-intent workflow whose first task has the given lines."""
    body = "\n".join(f"        {line}" for line in lines)
    return f"intents:\n  nightly:\n    tasks:\n      - id: t1\n{body}\n{extra}"


@pytest.mark.parametrize(("lines", "match"), [
    (["command: [ls]", "dependson: [x]"],
     r"unknown task field 'dependson' \(did you mean 'depends_on'\?\); allowed: id, agent"),
    (["command: [ls]", "priority: high"], r"`priority` must be an integer, not 'high' \(line 4"),
    (["command: [ls]", "priority: 1.5"], "`priority` must be an integer"),
    (["command: [ls]", "priority: true"], "`priority` must be an integer"),
    (["command: [ls]", "timeout: 0"], "`timeout` must be a positive number"),
    (["command: [ls]", "timeout: -3"], "`timeout` must be a positive number"),
    (["command: [ls]", "timeout: soon"], "`timeout` must be a finite number"),
    (["command: [ls]", "timeout: .inf"], "`timeout` must be a finite number"),
    (["command: [ls]", "retries: -1"], "`retries` must be an integer >= 0"),
    (["command: [ls]", "idempotent: 1"], "`idempotent` must be true or false"),
    (["command: [ls]", "resources: [cpu]"], "`resources` must be a mapping"),
    (["command: [ls]", "resources: {cpu: lots}"], "`resources` must be a finite number"),
    (["command: [ls]", "resources: {cpu: -1}"], "`resources` must be a number >= 0"),
    (["command: ls -la"], "`command` must be an argv list"),
    (["command: []"], "`command` must be a non-empty list of strings"),
    (["command: [ls, 3]"], "`command` must be a non-empty list of strings"),
    (["command: ['', x]"], "`command` must be a non-empty list of strings, starting with"),
    (["command: [ls]", "depends_on: t0"], "`depends_on` must be a list of non-empty strings"),
    (["command: [ls]", "depends_on: [1]"], "`depends_on` must be a list of non-empty strings"),
    (["command: [ls]", "depends_on: [a, a]"], "`depends_on` must not list a name twice"),
    (["description: nothing to run"],
     r"needs exactly one of agent, command, python \(found: none\)"),
    (["agent: a", "command: [ls]"],
     r"needs exactly one of agent, command, python \(found: agent, command\)"),
    (["python: pkg.mod"], "`python` must be an import path `package.module:function`"),
    (["python: 'pkg mod:f'"], "`python` must be an import path"),
    (["python: pkg.mod:f", "args: [1]"], "`args` must be a mapping of JSON values"),
    (["python: pkg.mod:f", "args: {when: 2024-01-01}"], "`args` must be a mapping of JSON"),
    (["command: [ls]", "args: {a: 1}"], "`args` applies to python tasks only"),
    (["agent: 'two words'"], "`agent` must be a non-empty string without spaces"),
    (["command: [ls]", "description: [x]"], "`description` must be a string"),
])
def test_task_field_errors(lines: list[str], match: str) -> None:
    fails(task_yaml(*lines), match, task="t1")


def test_unknown_dependency_and_duplicate_id() -> None:
    fails(task_yaml("command: [ls]", "depends_on: [ghost]"),
          "depends on unknown task 'ghost'", task="t1")
    fails(task_yaml("command: [ls]", extra="      - {id: t1, command: [ls]}\n"),
          "duplicate task id", task="t1")


def test_cycle_names_file_intent_and_exactly_its_tasks() -> None:
    error = fails(task_yaml("command: [ls]", "depends_on: [t3]", extra=(
        "      - {id: t0, command: [ls]}\n"
        "      - {id: t2, command: [ls], depends_on: [t1, t0]}\n"
        "      - {id: t3, command: [ls], depends_on: [t2]}\n")),
        r"dependency cycle: t1 -> t3 -> t2 -> t1")
    assert isinstance(error, CycleError)
    assert error.cycle == ["t1", "t3", "t2"]


def test_cycles_are_found_only_when_asked_to() -> None:
    text = task_yaml("command: [ls]", "depends_on: [t1]")
    workflow = parse_workflow(text, source=SOURCE, check_plans=False)
    with pytest.raises(CycleError, match=f"{SOURCE}: intent 'nightly': dependency cycle"):
        build_plan(workflow, "nightly")


@pytest.mark.parametrize("task_id", ["''", "'a b'", "a/b", "7", "[x]"])
def test_bad_task_ids(task_id: str) -> None:
    text = f"intents:\n  nightly:\n    tasks:\n      - id: {task_id}\n        command: [ls]\n"
    with pytest.raises(WorkflowError, match="must be a non-empty string without spaces or '/'"):
        parse_workflow(text, source=SOURCE)


def test_a_task_without_an_id_or_not_a_mapping_is_named_by_position() -> None:
    fails(task_yaml("command: [ls]", extra="      - command: [ls]\n"), "task id None",
          task="#2")
    fails(task_yaml("command: [ls]", extra="      - just text\n"), "a task must be a mapping",
          task="#2")


def test_unknown_agents_only_when_the_agents_are_known() -> None:
    text = task_yaml("agent: biulder")
    assert parse_workflow(text, source=SOURCE).intents["nightly"].tasks[0].agent == "biulder"
    fails(text, r"unknown agent 'biulder'; did you mean 'builder'\? \(known: builder, x\)",
          task="t1", known_agents=["x", "builder"])
    fails(SPEC_EXAMPLE, "unknown agent 'perf-optimizer'", intent="analyze",
          task="perf-optimizer", known_agents=["security-scout", "code-reviewer"])
    fails(SPEC_EXAMPLE, "unknown agent 'architect'", intent="build",
          task="planning.architect", known_agents=["security-scout", "code-reviewer",
                                                   "perf-optimizer"])


@pytest.mark.parametrize(("body", "match"), [
    ("agents: [a]\n    flavour: x", r"unknown intent field 'flavour'; allowed: description"),
    ("description: nothing", r"exactly one of agents, phases, tasks \(found: none\)"),
    ("agents: [a]\n    tasks: []", r"exactly one of agents, phases, tasks \(found: agents, t"),
    ("agents: []", "`agents` must be a non-empty list of names"),
    ("agents:", "`agents` must be a non-empty list of names"),
    ("agents: a", "`agents` must be a non-empty list of names"),
    ("agents: [a, a]", "`agents` must not list a name twice"),
    ("agents: [a]\n    parallel: maybe", "`parallel` must be true or false"),
    ("agents: [a]\n    max_concurrent: 0", "`max_concurrent` must be an integer >= 1"),
    ("agents: [a]\n    examples: hello", "`examples` must be a list of non-empty strings"),
    ("tasks: []", "`tasks` must be a non-empty list of task mappings"),
    ("tasks: [{id: a, command: [x]}]\n    parallel: false", "`parallel` applies to the agents"),
    ("phases: []", "`phases` must be a non-empty list"),
    ("phases: [x]", r"phase '#1': a phase must be a mapping"),
    ("phases: [{agents: [a]}]", r"phase '#1': a phase needs a `name`"),
    ("phases: [{name: a.b, agents: [a]}]", "phase name 'a.b' must not contain '.'"),
    ("phases: [{name: p, agents: [a], after: [q]}]", r"phase 'p': unknown phase field 'after'"),
    ("phases: [{name: p}]", r"phase 'p': a phase needs a non-empty `agents` list"),
    ("phases: [{name: p, agents: [a]}, {name: p, agents: [b]}]", "phase 'p': phase defined tw"),
    ("phases: [{name: p, agents: [a], depends_on: [q]}]",
     r"phase 'p': depends on unknown phase 'q' \(phases: p\)"),
    ("phases: [{name: p, agents: [a], depends_on: [p]}]", "a phase cannot depend on itself"),
    ("phases: [{name: p, agents: [a], parallel: 2}]", "`parallel` must be true or false"),
])
def test_intent_and_phase_errors(body: str, match: str) -> None:
    fails(f"intents:\n  nightly:\n    {body}\n", match)


def test_phase_cycles_are_reported_with_their_tasks() -> None:
    error = fails("""
        intents:
          nightly:
            phases:
              - {name: a, agents: [x], depends_on: [b]}
              - {name: b, agents: [y], depends_on: [a]}
    """, "dependency cycle: a.x -> b.y -> a.x")
    assert isinstance(error, CycleError)


@pytest.mark.parametrize(("text", "match"), [
    ("intents:\n  nightly: [\n", r"invalid YAML at line 3, column 1"),
    ("intents:\n  a:\n    agents: [x]\n    agents: [y]\n",
     r"invalid YAML at line 4, column 5: found duplicate key 'agents'"),
    ("intents:\n\tnightly: {}\n", "invalid YAML at line 2"),
    ("", "the file is empty; it must be a mapping with an `intents:` key"),
    ("- a\n- b\n", "the file is a list; it must be a mapping"),
    ("version: 1\n", "no intents: add an `intents:` mapping"),
    ("intents: {}\n", "no intents"),
    ("intents: [a]\n", "`intents` must be a mapping of intent names"),
    ("intent:\n  a: {agents: [x]}\n", r"unknown top-level field 'intent' \(did you mean "),
    ("intents:\n  Bad Name: {agents: [x]}\n", "bad intent name 'Bad Name'"),
    ("intents:\n  7: {agents: [x]}\n", "intent name 7 must be a string"),
    ("intents:\n  a: [x]\n", None),
])
def test_file_level_errors(text: str, match: str | None) -> None:
    if match is None:  # an intent that is not a mapping is named
        fails(text, "an intent must be a mapping", intent="a")
    else:
        fails(text, match, intent=None)


def test_an_intent_defined_twice_across_sections() -> None:
    fails("intents:\n  analyze: {agents: [a]}\nparallel_coordination:\n"
          "  analyze_intent: {agents: [b]}\n", "intent defined twice", intent="analyze")


def test_task_fields_match_the_model() -> None:
    assert set(TASK_FIELDS) == set(TaskSpec.__dataclass_fields__)
    assert set(checks.TASK_CHECKS) == set(TASK_FIELDS)  # every field has its check
    assert set(checks.RECOVERY_CHECKS) == set(RECOVERY_FIELDS)


def test_plain_data_is_accepted_and_errors_then_have_no_line() -> None:
    task: dict[str, Any] = {"id": "a", "command": ["ls"], "agent": None}
    data = {"intents": {"nightly": {"tasks": [task]}}}
    workflow = workflow_from_data(data, source=SOURCE)
    assert workflow.intents["nightly"].tasks == (TaskSpec(id="a", command=("ls",)),)
    task["retries"] = -1
    with pytest.raises(WorkflowError) as info:
        workflow_from_data(data, source=SOURCE)
    assert str(info.value) == (f"{SOURCE}: intent 'nightly': task 'a': `retries` must be an "
                               "integer >= 0, not -1")
    assert load_yaml("a: 1\n", source=SOURCE) == {"a": 1}


def test_a_json_workflow_is_the_same_workflow_as_its_yaml() -> None:
    yaml_text = textwrap.dedent(SPEC_EXAMPLE)
    document = load_yaml(yaml_text, source=SOURCE)
    from_json = parse_workflow(json.dumps(document), source="flows/nightly.json")
    from_yaml = parse_workflow(yaml_text, source=SOURCE)
    assert from_json.intents == from_yaml.intents


@pytest.mark.parametrize(("text", "match"), [
    ('{"intents": {"a": {}},\n "intents": {}}', "invalid JSON: found duplicate key 'intents'"),
    ('{"intents":\n  {"a": [1,]}}', r"invalid JSON at line 2, column 12: Expecting value"),
    ("", r"invalid JSON at line 1, column 1: Expecting value"),
])
def test_json_errors_name_the_file_and_where(text: str, match: str) -> None:
    with pytest.raises(WorkflowError, match=match) as info:
        parse_workflow(text, source="flows/nightly.json")
    assert str(info.value).startswith("flows/nightly.json: ")
