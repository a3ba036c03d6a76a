"""Parsing workflow traces: the compact form and WfFormat 1.5 and older."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator_tui.core.errors import WorkflowError
from orchestrator_tui.core.simulate import simulate
from orchestrator_tui.core.wfformat import parse_document, task_kind

COMPACT: dict[str, Any] = {
    "family": "demo",
    "instances": [{"name": "demo-001", "tasks": [
        {"type": "split", "runtime_s": 2.0, "input_bytes": 100, "parents": [], "cores": 1},
        {"type": "work", "runtime_s": 5.0, "input_bytes": 40, "parents": [0], "cores": None},
        {"type": "work", "runtime_s": 0, "input_bytes": 60, "parents": [0]},
        {"type": "join", "runtime_s": 1.5, "input_bytes": 0, "parents": [1, 2]},
    ]}],
}

WF15: dict[str, Any] = {
    "name": "montage-chameleon-2mass-01d-001",
    "schemaVersion": "1.5",
    "workflow": {
        "specification": {
            "tasks": [
                {"name": "mProject_00000001", "id": "00000001", "parents": [],
                 "children": ["00000002"], "inputFiles": ["a.fits"], "outputFiles": ["b"]},
                {"name": "mAdd_00000002", "id": "00000002", "parents": ["00000001"],
                 "children": [], "inputFiles": ["b", "c"], "outputFiles": []},
            ],
            "files": [{"id": "a.fits", "sizeInBytes": 10}, {"id": "b", "sizeInBytes": 20},
                      {"id": "c", "sizeInBytes": 5}],
        },
        "execution": {"tasks": [{"id": "00000001", "runtimeInSeconds": 3.5},
                                {"id": "00000002", "runtimeInSeconds": 1.25}]},
    },
}

WF14: dict[str, Any] = {
    "name": "1000genome-chameleon-2ch-100k-001",
    "schemaVersion": "1.4",
    "workflow": {"tasks": [
        {"name": "individuals_ID0000001", "id": "ID0000001", "category": "individuals",
         "runtimeInSeconds": 50.0, "parents": [], "children": ["ID0000002"],
         "files": [{"link": "input", "name": "x", "sizeInBytes": 7},
                   {"link": "output", "name": "y", "sizeInBytes": 99}]},
        {"name": "individuals_merge_ID0000002", "id": "ID0000002",
         "runtimeInSeconds": 9.0, "parents": ["individuals_ID0000001"],
         "files": [{"link": "input", "name": "y", "sizeInBytes": 99}]},
    ]},
}

WF10: dict[str, Any] = {
    "name": "epigenomics-old",
    "workflow": {"jobs": [
        {"name": "fastqSplit_0001", "runtime": 4, "parents": [],
         "files": [{"link": "input", "name": "r", "size": 1000}]},
        {"name": "map_0002", "runtime": 8.5, "parents": ["fastqSplit_0001"], "files": []},
    ]},
}


def test_compact_family() -> None:
    [instance] = parse_document(COMPACT, source="demo.json")
    assert (instance.name, instance.family) == ("demo-001", "demo")
    assert [t.kind for t in instance.tasks] == ["split", "work", "work", "join"]
    assert instance.tasks[3].parents == ("1", "2")
    assert instance.tasks[1].input_bytes == 40
    assert instance.durations == {"0": 2.0, "1": 5.0, "2": 0.0, "3": 1.5}
    run = simulate(instance.plan(), instance.durations, 2)
    assert run.makespan == pytest.approx(8.5)


def test_compact_single_instance() -> None:
    [instance] = parse_document(COMPACT["instances"][0])
    assert len(instance.tasks) == 4


def test_wfformat_15_sizes_from_file_table() -> None:
    [instance] = parse_document(WF15)
    assert instance.family == "montage"
    first, second = instance.tasks
    assert (first.kind, first.runtime, first.input_bytes) == ("mProject", 3.5, 10)
    assert (second.kind, second.input_bytes, second.parents) == ("mAdd", 25, ("00000001",))


def test_wfformat_14_category_and_parents_by_name() -> None:
    [instance] = parse_document(WF14)
    first, second = instance.tasks
    assert first.kind == "individuals" and first.input_bytes == 7
    assert second.kind == "individuals_merge"
    assert second.parents == ("ID0000001",)
    assert len(instance.plan()) == 2


def test_old_jobs_with_runtime_and_size() -> None:
    [instance] = parse_document(WF10)
    assert [t.kind for t in instance.tasks] == ["fastqSplit", "map"]
    assert instance.tasks[0].input_bytes == 1000
    assert instance.tasks[1].input_bytes is None  # no input files: size unknown


@pytest.mark.parametrize(("name", "kind"), [
    ("mProject_00000012", "mProject"), ("individuals_ID0000001", "individuals"),
    ("sG1IterDecon", "sG1IterDecon"), ("task-3", "task"), ("42", "42"),
])
def test_task_kind(name: str, kind: str) -> None:
    assert task_kind(name) == kind


@pytest.mark.parametrize(("document", "message"), [
    ([], "not a JSON object"),
    ({"something": 1}, "expected 'instances'"),
    ({"instances": [{"name": "x", "tasks": [{"type": "a", "parents": []}]}]}, "runtime"),
    ({"instances": [{"name": "x", "tasks": [{"type": "a", "runtime_s": -1}]}]}, ">= 0"),
    ({"instances": [{"name": "x", "tasks": [{"type": "a", "runtime_s": 1, "parents": [5]}]}]},
     "unknown parent"),
    ({"name": "w", "workflow": {"tasks": [{"name": "a", "runtime": 1, "parents": ["zz"]}]}},
     "unknown parent"),
    ({"name": "w", "workflow": {"tasks": [{"name": "a", "runtime": 1},
                                          {"name": "a", "runtime": 2}]}}, "duplicate"),
])
def test_bad_documents_name_what_and_where(document: Any, message: str) -> None:
    with pytest.raises(WorkflowError, match=message) as caught:
        parse_document(document, source="bad.json")
    assert "bad.json" in str(caught.value)
