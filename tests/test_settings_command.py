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
