"""`orchestrator doctor`: back ends found or missing with their versions, what `auto` picks,
and how each agent would run (or why it cannot), as text and as JSON."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import Run
from tests.test_agent_runners import fake_path, write_agent


def doctor(cli: Run, tmp_path: Path, installed: tuple[str, ...], *args: str) -> tuple[int, str]:
    env = {"PATH": fake_path(tmp_path / "bin", installed), "HOME": str(tmp_path / "home")}
    out = cli("doctor", *args, env=env)
    assert "Traceback" not in out.stderr
    return out.returncode, out.stdout


def test_doctor_lists_backends_and_how_each_agent_runs(cli: Run, workspace: Path,
                                                       tmp_path: Path) -> None:
    write_agent(workspace, "codex", model="inherit", name="needs-codex")
    write_agent(workspace, "claude", model="inherit", name="on-claude")
    code, stdout = doctor(cli, tmp_path, ("claude",), "--json")
    data = json.loads(stdout)
    found = {b["name"]: b for b in data["backends"]}
    assert found["claude"]["found"] and found["claude"]["version"] == "2.0.0 (Claude Code)"
    assert found["claude"]["path"].endswith("claude")
    assert not found["codex"]["found"] and found["codex"]["path"] is None
    assert found["python"]["found"] and found["python"]["version"].startswith("Python 3")
    assert {"git", "ruff", "pyflakes", "pytest", "node", "npm", "gemini"} <= set(found)
    assert data["auto"] == "claude" and data["settings"]["llm_cli"] == "claude"
    agents = {a["name"]: a for a in data["agents"]}
    assert agents["code-reviewer"]["runner"] == "claude"  # shipped; auto with claude present
    assert agents["on-claude"]["runner"] == "claude"
    assert agents["needs-codex"]["runner"] is None and not agents["needs-codex"]["ok"]
    assert "install the Codex CLI" in agents["needs-codex"]["how"]
    assert code == 1  # an agent cannot run


def test_doctor_without_any_cli_falls_back_to_commands(cli: Run, tmp_path: Path) -> None:
    code, stdout = doctor(cli, tmp_path, ())
    assert code == 0
    assert "auto runs agents with: their own `command:`" in stdout
    backends = stdout.split("\n\n")[0]
    assert any(line.split()[:2] == ["claude", "missing"] for line in backends.splitlines())
    agents = stdout.split("Agents (")[1].splitlines()
    reviewer = next(line for line in agents if line.split()[:1] == ["code-reviewer"])
    assert reviewer.split()[1] == "command" and "claude is not installed" in reviewer
