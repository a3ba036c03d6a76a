"""`orchestrator settings show|set`: validated, stored, and read by later sessions."""

from __future__ import annotations

import json

from tests.conftest import Run


def test_settings_are_validated_and_stored(cli: Run) -> None:
    assert cli("settings", "set", "max_turns", "12").stdout.startswith("max_turns = 12")
    bad = cli("settings", "set", "llm_cli", "nope")
    assert bad.returncode == 2 and "llm_cli must be one of" in bad.stderr
    unknown = cli("settings", "set", "colour", "red")
    assert unknown.returncode == 2 and "invalid choice" in unknown.stderr
    shown = json.loads(cli("settings", "show", "--json").stdout)
    assert shown["max_turns"]["value"] == "12" and shown["llm_cli"]["value"] is None


def test_the_executor_setting_chooses_where_agents_run(cli: Run) -> None:
    import pytest

    from orchestrator_tui.core.errors import OrchestratorError
    from orchestrator_tui.engine.runners.ray_runner import executor_runner

    bad = cli("settings", "set", "executor", "kubernetes")
    assert bad.returncode == 2 and "executor must be one of local, ray" in bad.stderr
    assert executor_runner({}) is None and executor_runner({"executor": "local"}) is None
    with pytest.raises(OrchestratorError, match="--address needs --executor ray"):
        executor_runner({}, None, "ray://head:10001")
    try:
        import ray  # noqa: F401
    except ImportError:
        with pytest.raises(OrchestratorError, match=r"pip install 'orchestrator-tui\[ray\]'"):
            executor_runner({"executor": "ray"})
    else:
        runner = executor_runner({"executor": "ray", "ray_address": "ray://head:10001"})
        assert runner is not None and runner.address == "ray://head:10001"
        assert executor_runner({"executor": "ray"}, "local") is None  # the option wins
