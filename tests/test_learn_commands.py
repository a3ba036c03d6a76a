"""`orchestrator learn ...`: no figure without recorded data behind it."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import Run, python_argv, write_workflow


def two_step(workspace: Path) -> Path:
    return write_workflow(workspace, "intents:\n  check:\n    tasks:\n"
                                     f"      - id: first\n        command: {python_argv('1')}\n"
                                     f"      - id: second\n        command: {python_argv('2')}\n"
                                     "        depends_on: [first]\n"
                                     "  tidy:\n    tasks:\n"
                                     f"      - id: only\n        command: {python_argv('3')}\n")


def test_without_history_every_figure_says_no_data(cli: Run, workspace: Path) -> None:
    workflow = two_step(workspace)
    shown = cli("learn", "predict-time", "check", "--workflow", str(workflow))
    assert shown.returncode == 0, shown.stderr
    assert "time: no data yet" in shown.stdout and "success: no data yet" in shown.stdout
    data = json.loads(cli("learn", "predict-time", "check", "--workflow", str(workflow),
                          "--json").stdout)
    assert data["eta"] is None and data["samples"] == 0 and data["success_probability"] is None
    assert all(task["estimate"] is None for task in data["tasks"])
    patterns = cli("learn", "show-patterns", "check")
    assert "no data yet" in patterns.stdout
    performance = cli("learn", "agent-performance")
    assert "no data yet" in performance.stdout
    assert json.loads(cli("learn", "agent-performance", "--json").stdout) == []


def test_after_runs_the_commands_show_recorded_figures(cli: Run, workspace: Path) -> None:
    workflow = two_step(workspace)
    for intent in ("check", "tidy", "check", "tidy"):
        done = cli("run", intent, "--workflow", str(workflow), "--no-cache")
        assert done.returncode == 0, done.stderr
    data = json.loads(cli("learn", "predict-time", "check", "--workflow", str(workflow),
                          "--parallel", "2", "--json").stdout)
    assert data["samples"] == 6 and data["parallel_limit"] == 2
    assert data["eta_low"] <= data["eta"] <= data["eta_high"]
    assert data["success_probability"] is not None and data["success_tasks"] == 2
    assert data["bottleneck"] in ("first", "second")
    text = cli("learn", "predict-time", "check", "--workflow", str(workflow)).stdout
    assert "recorded durations" in text and "runs of this task" in text and "bottleneck:" in text
    patterns = cli("learn", "show-patterns", "check")
    assert "check: 2 recorded session(s)" in patterns.stdout
    assert "after check you usually run tidy (2 of 2 times)" in patterns.stdout
    table = cli("learn", "agent-performance").stdout
    assert table.splitlines()[0].split()[:3] == ["agent", "runs", "success"]
    rows = json.loads(cli("learn", "agent-performance", "--json").stdout)
    assert sum(row["runs"] for row in rows) == 6 and rows[0]["success_rate"] == 1.0


def test_bad_input_is_a_clear_error(cli: Run, workspace: Path) -> None:
    unknown = cli("learn", "predict-time", "nothing", "--workflow", str(two_step(workspace)))
    assert unknown.returncode == 2 and "nothing" in unknown.stderr
    assert "Traceback" not in unknown.stderr
    limit = cli("learn", "predict-time", "check", "--parallel", "0")
    assert limit.returncode == 2 and "--parallel must be 1 or more" in limit.stderr
