"""`orchestrator agent list|show|archive|activate` through the real CLI (and the app's command
bar grammar), and the effect of archiving on `orchestrator run`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator_tui.commands import CommandContext, execute, parse_slash
from orchestrator_tui.engine.agent_state import archived_agents, set_archived
from orchestrator_tui.engine.shipped import shipped_dir
from tests.conftest import Run, write_workflow

WSHOBSON = Path(__file__).resolve().parents[2] / "shared" / "data" / "agents-wshobson"

ECHOER = """---
name: echoer
description: Says hello, for tests.
command: ["{python}", "-c", "print('hello from echoer')"]
---

You say hello.
"""
COLONS = """---
name: colon-agent
description: Use it when: something needs checking.
tools: Read, Grep
model: fable
---

You check things.
"""


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home folder of the test's own, for the CLI's processes and this one."""
    folder = tmp_path / "home"
    folder.mkdir()
    monkeypatch.setenv("HOME", str(folder))
    return folder


@pytest.fixture
def agents(workspace: Path, home: Path) -> Path:
    """The workspace's agent folder with an agent that runs offline and a messy one."""
    folder = workspace / ".claude" / "agents"
    folder.mkdir(parents=True)
    (folder / "echoer.md").write_text(ECHOER)
    (folder / "colon-agent.md").write_text(COLONS)
    (folder / "code-reviewer.md").write_text(ECHOER.replace("echoer", "code-reviewer"))
    return folder


def listing(cli: Run, *args: str) -> dict[str, Any]:
    out = cli("agent", "list", *args, "--json")
    assert out.returncode == 0, out.stderr
    data: dict[str, Any] = json.loads(out.stdout)
    return data


def test_list_json_gives_agents_problems_and_shadowed(cli: Run, agents: Path) -> None:
    data = listing(cli)
    by_name = {agent["name"]: agent for agent in data["agents"]}
    colon = by_name["colon-agent"]
    assert colon["source"] == "workspace" and colon["path"] == str(agents / "colon-agent.md")
    assert colon["tools"] == ["Read", "Grep"] and colon["model"] == "fable"
    assert colon["description"] == "Use it when: something needs checking."
    assert colon["capabilities_inferred"] is True and colon["archived"] is False
    lines = {(p["line"], p["severity"]) for p in colon["problems"]}
    assert lines == {(3, "warning"), (5, "note")}  # the YAML error, the unknown model
    assert by_name["code-reviewer"]["source"] == "workspace"
    assert by_name["architect"]["source"] == "shipped"
    assert by_name["architect"]["capabilities_inferred"] is False
    shipped = str(shipped_dir("agents") / "code-reviewer.md")
    assert {"name": "code-reviewer", "path": shipped,
            "by": str(agents / "code-reviewer.md")} in data["shadowed"]
    assert any(p["path"] == shipped and "shadowed" in p["message"] for p in data["problems"])
    assert all(set(p) >= {"path", "line", "message"} for p in data["problems"])


def test_list_text_is_a_table_followed_by_problems(cli: Run, agents: Path) -> None:
    out = cli("agent", "list")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["name", "source", "runner", "capabilities", "state", "problems"]
    row = next(line.split() for line in lines if line.startswith("colon-agent "))
    assert row[1:3] == ["workspace", "auto"] and row[-2:] == ["active", "2"]
    assert f"{agents / 'colon-agent.md'}:3: front matter is not valid YAML" in out.stdout
    assert f"{agents / 'colon-agent.md'}:5: unknown model 'fable'" in out.stdout


def test_show_prints_fields_problems_and_prompt(cli: Run, agents: Path) -> None:
    out = cli("agent", "show", "Colon-Agent")
    assert out.returncode == 0, out.stderr
    assert "name: colon-agent" in out.stdout and "source: workspace" in out.stdout
    assert "tools: Read, Grep" in out.stdout and "model: fable" in out.stdout
    assert "problems (2):" in out.stdout
    assert out.stdout.rstrip().endswith("--- prompt ---\nYou check things.")
    data = json.loads(cli("agent", "show", "echoer", "--json").stdout)
    assert data["command"] == ["{python}", "-c", "print('hello from echoer')"]
    assert data["body"] == "You say hello."
    missing = cli("agent", "show", "colon-agnet")
    assert missing.returncode == 2 and "did you mean colon-agent" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_archive_and_activate_round_trip_and_the_effect_on_run(cli: Run, agents: Path,
                                                               workspace: Path) -> None:
    workflow = write_workflow(workspace, "intents:\n  greet:\n    agents: [echoer]\n")
    out = cli("agent", "archive", "echoer")
    assert out.returncode == 0 and "archived agent 'echoer'" in out.stdout, out.stderr
    archived = listing(cli, "--archived")["agents"]
    assert [agent["name"] for agent in archived] == ["echoer"]
    assert archived[0]["archived"] is True and archived[0]["archived_at"]
    assert "echoer" not in {agent["name"] for agent in listing(cli, "--active")["agents"]}
    again = cli("agent", "archive", "echoer")
    assert again.returncode == 0 and "archived already" in again.stdout

    blocked = cli("run", "greet", "--workflow", str(workflow))
    assert blocked.returncode == 2, blocked.stdout
    assert "agent 'echoer'" in blocked.stderr and "is archived" in blocked.stderr
    assert "orchestrator agent activate echoer" in blocked.stderr
    assert "Traceback" not in blocked.stderr

    out = cli("agent", "activate", "echoer")
    assert out.returncode == 0 and "activated agent 'echoer'" in out.stdout
    ran = cli("run", "greet", "--workflow", str(workflow), "--json")
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["state"] == "COMPLETED"
    assert "active already" in cli("agent", "activate", "echoer").stdout


def test_archive_refuses_unknown_and_unsafe_names(cli: Run, agents: Path) -> None:
    unknown = cli("agent", "archive", "echoe")
    assert unknown.returncode == 2 and "unknown agent 'echoe'" in unknown.stderr
    assert "did you mean echoer" in unknown.stderr
    unsafe = cli("agent", "archive", "../echoer")
    assert unsafe.returncode == 2 and "not an agent name" in unsafe.stderr
    assert "Traceback" not in unknown.stderr + unsafe.stderr


def test_the_command_bar_speaks_the_same_grammar(agents: Path, workspace: Path,
                                                 db_path: Path) -> None:
    context = CommandContext(db_path=db_path, workspace=workspace)
    result = asyncio.run(execute(parse_slash("/agent archive colon-agent"), context))
    assert result.ok and result.data["archived"] is True
    assert set(asyncio.run(archived_agents(db_path))) == {"colon-agent"}
    result = asyncio.run(execute(parse_slash("agent list --archived"), context))
    assert [agent["name"] for agent in result.data["agents"]] == ["colon-agent"]
    assert "colon-agent" in result.text and "archived" in result.text
    result = asyncio.run(execute(parse_slash("agent activate colon-agent"), context))
    assert result.data["archived"] is False
    assert asyncio.run(archived_agents(db_path)) == {}


def test_archived_state_keeps_the_first_time(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    first = asyncio.run(set_archived(db, "someone", True))
    assert first is not None and asyncio.run(set_archived(db, "someone", True)) == first
    assert asyncio.run(archived_agents(db)) == {"someone": first}
    assert asyncio.run(set_archived(db, "someone", False)) is None
    assert asyncio.run(set_archived(db, "someone", False)) is None
    assert asyncio.run(archived_agents(db)) == {}


def test_wshobson_collection_through_the_cli(cli: Run, home: Path) -> None:
    if not WSHOBSON.is_dir():
        pytest.skip(f"no real agent collection at {WSHOBSON}")
    data = listing(cli, "--agents-dir", str(WSHOBSON))
    extra = [agent for agent in data["agents"] if agent["source"] == "extra"]
    assert len(extra) + len(data["shadowed"]) == 202
    assert all(agent["path"].startswith(str(WSHOBSON)) for agent in extra)
    assert all(agent["description"] and isinstance(agent["problems"], list)
               for agent in extra)
    fable = [p for p in data["problems"] if "unknown model 'fable'" in p["message"]]
    assert len(fable) == 2 and all(p["line"] > 1 for p in fable)
    assert not [p for p in data["problems"] if p["severity"] == "error"]
    text = cli("agent", "list", "--agents-dir", str(WSHOBSON))
    assert text.returncode == 0 and f"problems ({len(data['problems'])}):" in text.stdout
