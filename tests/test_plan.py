"""The plan: validation, levels, bottom levels, critical path and storage round trips."""

from __future__ import annotations

import json
import random
from itertools import pairwise

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator_tui.core.errors import CycleError, WorkflowError
from orchestrator_tui.core.models import IntentSpec, TaskSpec
from orchestrator_tui.core.plan import PLAN_FORMAT, Plan


def plan_of(deps: dict[str, tuple[str, ...]], **intent: object) -> Plan:
    """A plan listing the tasks in `deps` order, each with the given dependencies."""
    tasks = tuple(TaskSpec(id=tid, command=("true",), depends_on=after)
                  for tid, after in deps.items())
    return Plan(IntentSpec("test", tasks, **intent), source="wf.yaml")  # type: ignore[arg-type]


DIAMOND = {"a": (), "b": ("a",), "c": ("a",), "d": ("b", "c")}
"""a -> (b, c) -> d"""


def test_levels_order_and_neighbours() -> None:
    plan = plan_of({"x": (), **DIAMOND, "e": ("x",)})
    assert plan.levels == {"x": 0, "a": 0, "b": 1, "c": 1, "d": 2, "e": 1}
    assert plan.order == ["x", "a", "b", "c", "e", "d"]
    assert plan.level_count == 3
    assert plan.position == {"x": 0, "a": 1, "b": 2, "c": 3, "d": 4, "e": 5}
    assert sorted(plan.dependencies("d")) == ["b", "c"]
    assert sorted(plan.dependents("a")) == ["b", "c"]
    assert len(plan) == 6
    assert plan.source == "wf.yaml"


def test_levels_when_dependencies_come_later_in_the_file() -> None:
    plan = plan_of({"d": ("b", "c"), "c": ("a",), "b": ("a",), "a": ()})
    assert plan.levels == {"d": 2, "c": 1, "b": 1, "a": 0}
    assert plan.order == ["a", "c", "b", "d"]


def test_graph_matches_one_built_edge_by_edge() -> None:
    plan = plan_of({"d": ("b", "c"), "c": ("a",), "b": ("a",), "a": (), "z": ()})
    reference = nx.DiGraph()
    reference.add_nodes_from(["d", "c", "b", "a", "z"])
    reference.add_edges_from([("b", "d"), ("c", "d"), ("a", "c"), ("a", "b")])
    assert nx.utils.graphs_equal(plan.graph, reference)
    assert list(plan.graph.pred["d"]) == ["b", "c"]
    assert plan.graph.has_edge("a", "b") and not plan.graph.has_edge("b", "a")


def test_bottom_levels_and_critical_path_by_hand() -> None:
    plan = plan_of(DIAMOND)
    durations = {"a": 1.0, "b": 5.0, "c": 2.0, "d": 1.0}
    assert plan.bottom_levels(durations) == {"d": 1.0, "c": 3.0, "b": 6.0, "a": 7.0}
    assert plan.critical_path(durations) == ["a", "b", "d"]
    assert plan.critical_path_length(durations) == 7.0
    durations["c"] = 9.0
    assert plan.critical_path(durations) == ["a", "c", "d"]
    assert plan.critical_path_length(durations) == 11.0


def test_missing_durations_use_the_default() -> None:
    plan = plan_of({"a": (), "b": ("a",), "c": ()})
    assert plan.bottom_levels() == {"b": 1.0, "c": 1.0, "a": 2.0}
    assert plan.bottom_levels({"c": 10.0}, default=2.0) == {"b": 2.0, "c": 10.0, "a": 4.0}
    assert plan.critical_path({"c": 10.0}, default=2.0) == ["c"]
    assert plan.critical_path_length(default=3.0) == 6.0


def test_critical_path_ties_go_to_the_earliest_task() -> None:
    plan = plan_of({"a": (), "b": (), "c": ("a", "b"), "d": ("a", "b")})
    assert plan.critical_path() == ["a", "c"]


def test_empty_plan() -> None:
    plan = plan_of({})
    assert (plan.levels, plan.order, plan.level_count) == ({}, [], 0)
    assert plan.critical_path() == [] and plan.critical_path_length() == 0.0
    assert Plan.from_dict(plan.to_dict()).order == []


def test_duplicate_id_names_file_intent_and_task() -> None:
    tasks = (TaskSpec(id="a", command=("x",)), TaskSpec(id="a", command=("y",)))
    with pytest.raises(WorkflowError, match="duplicate task id") as info:
        Plan(IntentSpec("nightly", tasks), source="wf.yaml")
    assert (info.value.file, info.value.intent, info.value.task) == ("wf.yaml", "nightly", "a")
    assert str(info.value).startswith("wf.yaml: intent 'nightly': task 'a': ")


def test_unknown_dependency_names_file_intent_and_task() -> None:
    with pytest.raises(WorkflowError, match="depends on unknown task 'ghost'") as info:
        plan_of({"a": (), "b": ("a", "ghost")})
    assert (info.value.file, info.value.intent, info.value.task) == ("wf.yaml", "test", "b")


@pytest.mark.parametrize(("deps", "cycle"), [
    ({"a": ("a",)}, ["a"]),
    ({"a": ("b",), "b": ("a",)}, ["a", "b"]),
    ({"s": (), "a": ("s", "c"), "b": ("a",), "c": ("b",), "t": ("c",)}, ["a", "c", "b"]),
    ({"c": ("b",), "x": (), "b": ("a",), "a": ("c", "x")}, ["c", "b", "a"]),
])
def test_cycle_lists_exactly_its_tasks(deps: dict[str, tuple[str, ...]],
                                       cycle: list[str]) -> None:
    with pytest.raises(CycleError) as info:
        plan_of(deps)
    error = info.value
    assert error.cycle == cycle
    assert (error.file, error.intent) == ("wf.yaml", "test")
    assert str(error) == f"wf.yaml: intent 'test': dependency cycle: {' -> '.join(cycle)} -> " \
        f"{cycle[0]}"
    for task_id, after in zip(cycle, cycle[1:] + cycle[:1], strict=True):
        assert after in deps[task_id], "each task on the cycle depends on the next"


def rich_task(index: int) -> TaskSpec:
    """A task with every field set to something other than its default."""
    kinds = [{"agent": "builder"}, {"command": ("python", "-c", "pass")},
             {"python": "pkg.mod:run", "args": {"n": 1, "x": [1.5, None, "s"],
                                                "nested": {"ok": True}}}]
    return TaskSpec(id=f"t{index}", depends_on=(f"t{index - 1}",) if index else (),
                    priority=-index, timeout=12.5 + index, retries=index, idempotent=False,
                    resources={"cpu": 1.0, "memory_mb": 512.0}, phase="p",
                    description=f"task {index}", **kinds[index % 3])  # type: ignore[arg-type]


def test_to_dict_is_json_and_round_trips_every_field() -> None:
    tasks = (*(rich_task(i) for i in range(6)), TaskSpec(id="plain", command=("true",)))
    intent = IntentSpec("nightly", tasks, description="what", max_concurrent=3,
                        examples=("run nightly",))
    plan = Plan(intent, source="wf.yaml")
    data = json.loads(json.dumps(plan.to_dict(), allow_nan=False))
    assert data["format"] == PLAN_FORMAT
    assert data["tasks"][-1] == {"id": "plain", "command": ["true"]}, "defaults are left out"
    again = Plan.from_dict(data)
    assert again.intent == intent
    assert again.source == "wf.yaml"
    assert [again.tasks[t] for t in again.tasks] == list(tasks)
    assert (again.levels, again.order, again.position) == (plan.levels, plan.order,
                                                           plan.position)
    assert nx.utils.graphs_equal(again.graph, plan.graph)
    assert again.to_dict() == plan.to_dict()


def test_from_dict_revalidates_when_stored_levels_are_wrong() -> None:
    data = plan_of(DIAMOND).to_dict()
    data["levels"] = [0, 0, 0, 0]
    assert Plan.from_dict(data).levels == {"a": 0, "b": 1, "c": 1, "d": 2}
    del data["levels"]
    assert Plan.from_dict(data).levels == {"a": 0, "b": 1, "c": 1, "d": 2}


def test_from_dict_still_refuses_a_cycle_whatever_the_stored_levels() -> None:
    data = plan_of(DIAMOND).to_dict()
    data["tasks"][0]["depends_on"] = ["d"]
    for levels in ([0, 1, 1, 2], [3, 1, 1, 2], ["x", 1, 1, 2], [0, 1]):
        data["levels"] = levels
        with pytest.raises(CycleError) as info:
            Plan.from_dict(data)
        assert sorted(info.value.cycle) in (["a", "b", "d"], ["a", "c", "d"])


@pytest.mark.parametrize("data", [
    {}, {"format": 99, "intent": {"name": "x"}, "tasks": []},
    {"format": PLAN_FORMAT, "tasks": []},
    {"format": PLAN_FORMAT, "intent": {"name": "x"}, "tasks": [{"id": "a", "colour": 1}]},
    {"format": PLAN_FORMAT, "intent": {"name": "x"}, "tasks": [{"agent": "a"}]},
    {"format": PLAN_FORMAT, "intent": {"name": "x"}, "tasks": [], "levels": 3},
])
def test_from_dict_refuses_malformed_data(data: dict[str, object]) -> None:
    with pytest.raises(WorkflowError, match="stored plan is malformed"):
        Plan.from_dict(data)


def test_from_dict_refuses_duplicates_and_unknown_dependencies() -> None:
    data = plan_of(DIAMOND).to_dict()
    data["tasks"][1]["depends_on"] = ["nope"]
    with pytest.raises(WorkflowError, match="unknown task 'nope'"):
        Plan.from_dict(data)
    data = plan_of(DIAMOND).to_dict()
    data["tasks"].append({"id": "a", "command": ["true"]})
    data["levels"].append(0)
    with pytest.raises(WorkflowError, match="duplicate task id"):
        Plan.from_dict(data)


def longest_levels(graph: nx.DiGraph) -> dict[str, int]:
    """Reference levels: the longest path (in edges) from any source, by networkx."""
    levels: dict[str, int] = {}
    for node in nx.topological_sort(graph):
        levels[node] = max((levels[p] + 1 for p in graph.pred[node]), default=0)
    return levels


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 40), st.integers(0, 2**32 - 1), st.booleans())
def test_random_plans_agree_with_networkx(size: int, seed: int, shuffle: bool) -> None:
    rng = random.Random(seed)
    deps = {f"n{i}": tuple(sorted({f"n{rng.randrange(i)}" for _ in range(rng.randint(0, 3))}))
            if i else () for i in range(size)}
    items = list(deps.items())
    if shuffle:
        rng.shuffle(items)
    durations = {tid: rng.uniform(0.1, 5.0) for tid in deps}
    plan = plan_of(dict(items))
    assert plan.levels == longest_levels(plan.graph)
    assert plan.order == sorted(plan.tasks, key=lambda t: (plan.levels[t], plan.position[t]))
    weighted = nx.DiGraph()
    weighted.add_nodes_from(plan.tasks)
    weighted.add_weighted_edges_from((u, v, durations[u]) for u, v in plan.graph.edges)
    weighted.add_weighted_edges_from((u, "$end", durations[u]) for u in plan.tasks)
    path = plan.critical_path(durations)
    longest = nx.dag_longest_path_length(weighted)
    assert sum(durations[t] for t in path) == pytest.approx(longest)
    assert plan.critical_path_length(durations) == pytest.approx(longest)
    assert all(plan.graph.has_edge(u, v) for u, v in pairwise(path))
    assert not plan.graph.pred[path[0]] and not plan.graph.succ[path[-1]]
    again = Plan.from_dict(json.loads(json.dumps(plan.to_dict())))
    assert (again.intent, again.levels, again.order) == (plan.intent, plan.levels, plan.order)
