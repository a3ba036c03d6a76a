"""Agent CLIs as runners, end to end on real processes: fake `claude`, `codex` and `gemini`
programs (tests/fakes) that parse the documented flags and write the documented streams, put
first on PATH; results, usage and sessions in the attempts table; events as journal notes;
failures, hangs, garbage, retries with resume; and how `auto` picks a runner."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from orchestrator_tui.core.errors import OrchestratorError, WorkflowError
from orchestrator_tui.core.states import SessionState
from orchestrator_tui.engine.execution import Execution
from orchestrator_tui.engine.runners import claude, codex
from orchestrator_tui.engine.runners.stream import AgentCall
from orchestrator_tui.engine.session import Engine, SessionRequest
from orchestrator_tui.engine.settings import check, save_setting
from orchestrator_tui.engine.workflows import load_plan
from tests.conftest import Run

FAKES = Path(__file__).parent / "fakes"
CLIS = ("claude", "codex", "gemini")
BODY = "You review code carefully and report what you find."
MODELS = {"claude": "sonnet", "codex": "gpt-5-codex", "gemini": "gemini-2.5-pro"}


def fake_path(folder: Path, names: tuple[str, ...] = CLIS) -> str:
    """A PATH whose first folder holds wrappers running the chosen fakes with this
    interpreter (no `python3` needed on PATH), and that has no real agent CLI."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        wrapper = folder / name
        wrapper.write_text(f"#!{sys.executable}\nimport runpy, sys\nsys.argv[0] = {name!r}\n"
                           f"runpy.run_path({str(FAKES / name)!r}, run_name='__main__')\n")
        wrapper.chmod(0o755)
    rest = [d for d in os.environ.get("PATH", "").split(os.pathsep)
            if d and not any((Path(d) / cli).exists() for cli in CLIS)]
    return os.pathsep.join([str(folder), *rest])


def write_agent(workspace: Path, runner: str | None = "claude", command: str | None = None,
                model: str = "sonnet", name: str = "rev") -> None:
    """An agent file in the workspace's `.claude/agents/`."""
    folder = workspace / ".claude" / "agents"
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["---", f"name: {name}", 'description: "Reviews code: style and bugs"',
             "tools: Read, Grep", f"model: {model}"]
    if runner:
        lines.append(f"runner: {runner}")
    if command:
        lines.append(f"command: {command}")
    (folder / f"{name}.md").write_text("\n".join([*lines, "---", "", BODY, ""]))


def write_workflow(workspace: Path, timeout: float = 30, retries: int = 0) -> Path:
    path = workspace / "wf.yaml"
    path.write_text("intents:\n  review:\n    description: \"Review the code\"\n    tasks:\n"
                    f"      - {{id: r1, agent: rev, timeout: {timeout}, retries: {retries}}}\n")
    return path


def rows(db: Path, sql: str, *params: object) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return list(conn.execute(sql, params))


def calls(log: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


@pytest.fixture
def agent_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Fakes first on PATH, the argv log's path returned; mode `ok` unless a test says."""
    monkeypatch.setenv("PATH", fake_path(tmp_path / "bin"))
    log = tmp_path / "argv.jsonl"
    monkeypatch.setenv("FAKE_AGENT_ARGV_LOG", str(log))
    monkeypatch.setenv("FAKE_AGENT_MODE", "ok")
    return log


async def run_review(db: Path, workspace: Path, **workflow: float) -> tuple[SessionState,
                                                                             Execution]:
    """Run the `review` intent in this process, as `orchestrator run` does."""
    plan, registry, source = load_plan("review", str(write_workflow(workspace, **workflow)),
                                       workspace, [])
    async with await Engine.open(db) as engine:
        execution = await engine.start(SessionRequest(plan=plan, workspace=workspace,
                                                      workflow=source, registry=registry))
        return await engine.run(execution), execution


def notes(execution: Execution) -> list[str]:
    return [e.text for e in execution.journal_since(0) if e.kind == "note" and e.task_id == "r1"]


EXPECTED = {  # result, tokens in, tokens out, cost, turns
    "claude": ("reviewed app.py", 150, 45, 0.0123, 3),
    "codex": ("listed the files", 1200, 34, None, 1),
    "gemini": ("read app.py", 120, 30, None, None),
}


@pytest.mark.parametrize("cli_name", CLIS)
def test_each_cli_runs_an_agent_end_to_end(cli: Run, workspace: Path, tmp_path: Path,
                                           cli_name: str) -> None:
    write_agent(workspace, cli_name, model=MODELS[cli_name])
    log = tmp_path / "argv.jsonl"
    out = cli("run", "review", "--workflow", str(write_workflow(workspace)), "--json",
              env={"PATH": fake_path(tmp_path / "bin"), "FAKE_AGENT_ARGV_LOG": str(log),
                   "FAKE_AGENT_MODE": "ok"})
    assert out.returncode == 0, out.stderr
    task = json.loads(out.stdout)["tasks"][0]
    result, tokens_in, tokens_out, cost, turns = EXPECTED[cli_name]
    assert (task["state"], task["result"]) == ("succeeded", result)
    db = workspace / ".orchestrator" / "state.db"
    row = rows(db, "SELECT runner, agent_session, tokens_in, tokens_out, cost_usd, turns, "
                   "input_bytes FROM attempts")[0]
    assert row[0] == cli_name and row[1]
    assert row[2:6] == (tokens_in, tokens_out, cost, turns)
    [call] = calls(log)
    assert Path(str(call["cwd"])).resolve() == workspace.resolve() and call["task"] == "r1"
    argv = call["argv"]
    assert isinstance(argv, list)
    prompt = argv[argv.index("-p") + 1] if cli_name != "codex" else argv[-1]
    assert "r1" in prompt and "review" in prompt and "Reviews code" in prompt
    task_prompt = prompt.rsplit("\n\n---\n\n", 1)[-1]  # after the agent's own instructions
    assert row[6] == len(task_prompt.encode())  # what learning takes as the input size
    if cli_name == "claude":
        assert argv[argv.index("--append-system-prompt") + 1] == BODY
        assert argv[argv.index("--allowedTools") + 1] == "Read,Grep"
        assert argv[argv.index("--model") + 1] == "sonnet"
        assert argv[argv.index("--output-format") + 1] == "stream-json" and "--verbose" in argv
    else:
        assert BODY in prompt and argv[argv.index("-m") + 1] == MODELS[cli_name]


@pytest.mark.parametrize(("cli_name", "expected"), [
    ("claude", ["claude: started (model sonnet, 2 tools, session ",
                "claude: Looking at the code.", "claude: using Read on app.py",
                "claude: 150 tokens in, 45 out, $0.0123, 3 turns", "claude: done in 1.2 s"]),
    ("codex", ["codex: started (session ", "codex: turn 1 started", "codex: running bash -lc ls",
               "codex: ran bash -lc ls (exit 0)", "codex: thinking: **Checking the files**",
               "codex: changed add notes.md", "codex: Done. SUMMARY: listed the files",
               "codex: 1,200 tokens in, 34 out, 1 turn", "codex: done"]),
    ("gemini", ["gemini: started (model gemini-2.5-pro, session ",
                "gemini: using read_file on app.py", "gemini: All good. SUMMARY: read app.py",
                "gemini: 120 tokens in, 30 out", "gemini: done in 0.9 s"]),
])
async def test_agent_events_become_journal_notes(agent_env: Path, tmp_path: Path,
                                                 workspace: Path, cli_name: str,
                                                 expected: list[str]) -> None:
    write_agent(workspace, cli_name, model=MODELS[cli_name])
    final, execution = await run_review(tmp_path / "state.db", workspace)
    assert final == SessionState.COMPLETED
    seen = notes(execution)
    for start in expected:
        assert any(text.startswith(start) for text in seen), (start, seen)
    assert not any(text.startswith(f"{cli_name}:") for text in execution.log)


@pytest.mark.parametrize(("cli_name", "error"), [
    ("claude", "claude: API Error: the model is overloaded"),
    ("codex", "codex: quota exceeded"),
    ("gemini", "gemini: turn limit reached"),
])
async def test_an_error_result_fails_the_task_with_its_text(
        agent_env: Path, tmp_path: Path, workspace: Path, monkeypatch: pytest.MonkeyPatch,
        cli_name: str, error: str) -> None:
    monkeypatch.setenv("FAKE_AGENT_MODE", "error_result")
    write_agent(workspace, cli_name, model=MODELS[cli_name])
    db = tmp_path / "state.db"
    final, execution = await run_review(db, workspace)
    assert final == SessionState.FAILED
    assert rows(db, "SELECT state, error FROM tasks") == [("failed", error)]
    assert rows(db, "SELECT runner, outcome FROM attempts") == [(cli_name, "failed")]
    assert any(error in line for line in execution.log)


@pytest.mark.parametrize(("cli_name", "code", "error"), [
    ("claude", "3", "claude exit code 3: fatal: the fake agent broke down"),
    ("gemini", "42", "gemini exit code 42 (input error): fatal: the fake agent broke down"),
])
async def test_a_nonzero_exit_without_result_fails_with_stderr(
        agent_env: Path, tmp_path: Path, workspace: Path, monkeypatch: pytest.MonkeyPatch,
        cli_name: str, code: str, error: str) -> None:
    monkeypatch.setenv("FAKE_AGENT_MODE", "exit_nonzero")
    monkeypatch.setenv("FAKE_AGENT_EXIT", code)
    write_agent(workspace, cli_name, model=MODELS[cli_name])
    db = tmp_path / "state.db"
    final, _ = await run_review(db, workspace)
    assert final == SessionState.FAILED
    assert rows(db, "SELECT error, exit_code FROM tasks") == [(error, int(code))]


async def test_a_hanging_cli_is_killed_by_the_task_timeout(
        agent_env: Path, tmp_path: Path, workspace: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_AGENT_MODE", "hang")
    write_agent(workspace, "claude")
    db = tmp_path / "state.db"
    final, _ = await run_review(db, workspace, timeout=1)
    assert final == SessionState.FAILED
    assert rows(db, "SELECT error FROM tasks") == [("timed out after 1 s",)]
    pid, session = rows(db, "SELECT pid, agent_session FROM attempts")[0]
    assert session  # reported by the first event, stored while the CLI was still running
    assert not psutil.pid_exists(int(str(pid))) or psutil.Process(int(str(pid))).status() \
        == psutil.STATUS_ZOMBIE


@pytest.mark.parametrize("cli_name", CLIS)
async def test_lines_that_are_not_json_are_tolerated(
        agent_env: Path, tmp_path: Path, workspace: Path, monkeypatch: pytest.MonkeyPatch,
        cli_name: str) -> None:
    monkeypatch.setenv("FAKE_AGENT_MODE", "garbage")
    write_agent(workspace, cli_name, model=MODELS[cli_name])
    db = tmp_path / "state.db"
    final, execution = await run_review(db, workspace)
    assert final == SessionState.COMPLETED
    assert f"{cli_name}: warning: this line is not JSON" in notes(execution)
    stdout = str(rows(db, "SELECT stdout FROM attempts")[0][0])
    assert "{broken json" in stdout or "[1, 2, 3]" in stdout


@pytest.mark.parametrize("cli_name", ["claude", "codex"])
async def test_a_retry_resumes_the_cli_session_of_the_failed_attempt(
        agent_env: Path, tmp_path: Path, workspace: Path, monkeypatch: pytest.MonkeyPatch,
        cli_name: str) -> None:
    monkeypatch.setenv("FAKE_AGENT_MODE", "fail_once")
    write_agent(workspace, cli_name, model=MODELS[cli_name])
    db = tmp_path / "state.db"
    final, _ = await run_review(db, workspace, retries=1)
    assert final == SessionState.COMPLETED
    attempts = rows(db, "SELECT attempt, outcome, agent_session FROM attempts ORDER BY attempt")
    assert [(a, o) for a, o, _ in attempts] == [(1, "failed"), (2, "succeeded")]
    first_session = str(attempts[0][2])
    first, second = (call["argv"] for call in calls(agent_env))
    assert isinstance(first, list) and isinstance(second, list)
    if cli_name == "claude":
        assert "--resume" not in first
        assert second[second.index("--resume") + 1] == first_session
        prompt = second[second.index("-p") + 1]
    else:
        assert "resume" not in first
        assert second[second.index("resume") + 1] == first_session
        prompt = second[-1]
    assert "attempt 2" in prompt and "previous attempt ended with" in prompt
    assert attempts[1][2] == first_session


async def test_settings_reach_the_claude_command_line(agent_env: Path, tmp_path: Path,
                                                      workspace: Path) -> None:
    db = tmp_path / "state.db"
    for key, value in (("claude_permission_mode", "acceptEdits"), ("max_turns", "5"),
                       ("max_budget_usd", "0.5")):
        await save_setting(db, key, value)
    write_agent(workspace, "claude", model="inherit")
    final, _ = await run_review(db, workspace)
    assert final == SessionState.COMPLETED
    argv = calls(agent_env)[0]["argv"]
    assert isinstance(argv, list) and "--model" not in argv
    for flag, value in (("--permission-mode", "acceptEdits"), ("--max-turns", "5"),
                        ("--max-budget-usd", "0.5")):
        assert argv[argv.index(flag) + 1] == value


async def test_events_arrive_while_the_cli_is_still_running(
        agent_env: Path, tmp_path: Path, workspace: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    gate = tmp_path / "gate"
    monkeypatch.setenv("FAKE_AGENT_GATE", str(gate))  # the fake waits for it after Read
    write_agent(workspace, "claude")
    plan, registry, source = load_plan("review", str(write_workflow(workspace)), workspace, [])
    async with await Engine.open(tmp_path / "state.db") as engine:
        execution = await engine.start(SessionRequest(plan=plan, workspace=workspace,
                                                      workflow=source, registry=registry))
        run = asyncio.get_running_loop().create_task(engine.run(execution))

        async def told() -> None:
            while not any("using Read" in text for text in notes(execution)):
                await asyncio.sleep(0.02)

        try:  # without live reading the note never comes: give up rather than wait forever
            await asyncio.wait_for(told(), 30)
            running = [view.task_id for view in execution.snapshot().running]
        finally:
            gate.touch()
        assert await run == SessionState.COMPLETED
    assert running == ["r1"]  # the tool use was told while the CLI was still running


OFFLINE = f'["{sys.executable}", "-c", "print(\'SUMMARY: offline\')"]'


@pytest.mark.parametrize(("installed", "settings", "runner", "result"), [
    (CLIS, {}, "claude", "reviewed app.py"),
    (("codex", "gemini"), {}, None, "offline"),
    ((), {}, None, "offline"),
    (CLIS, {"llm_cli": "gemini"}, "gemini", "read app.py"),
    (CLIS, {"llm_cli": "none"}, None, "offline"),
    (CLIS, {"default_runner": "command"}, None, "offline"),
    (("codex",), {"default_runner": "codex"}, "codex", "listed the files"),
])
async def test_auto_uses_the_llm_cli_when_installed_else_the_command(
        tmp_path: Path, workspace: Path, monkeypatch: pytest.MonkeyPatch,
        installed: tuple[str, ...], settings: dict[str, str], runner: str | None,
        result: str) -> None:
    monkeypatch.setenv("PATH", fake_path(tmp_path / "bin", installed))
    monkeypatch.setenv("FAKE_AGENT_MODE", "ok")
    db = tmp_path / "state.db"
    for key, value in settings.items():
        await save_setting(db, key, value)
    write_agent(workspace, None, command=OFFLINE, model="inherit")
    final, _ = await run_review(db, workspace)
    assert final == SessionState.COMPLETED
    assert rows(db, "SELECT runner FROM attempts") == [(runner,)]
    assert rows(db, "SELECT result FROM tasks") == [(result,)]


async def test_no_cli_and_no_command_is_a_clear_error(tmp_path: Path, workspace: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", fake_path(tmp_path / "bin", ()))
    write_agent(workspace, None, model="inherit")
    with pytest.raises(WorkflowError) as caught:
        await run_review(tmp_path / "state.db", workspace)
    message = str(caught.value)
    assert "'rev'" in message and "'r1'" in message and "command:" in message
    assert "install Claude Code" in message
    write_agent(workspace, "codex", model="inherit")
    with pytest.raises(WorkflowError, match="asks for codex, which is not on PATH; install "
                                            "the Codex CLI"):
        await run_review(tmp_path / "state.db", workspace)


def test_the_cli_reports_a_missing_backend_without_a_traceback(cli: Run, workspace: Path,
                                                               tmp_path: Path) -> None:
    write_agent(workspace, "gemini", model="inherit")
    out = cli("run", "review", "--workflow", str(write_workflow(workspace)),
              env={"PATH": fake_path(tmp_path / "bin", ())})
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "'rev'" in out.stderr and "install Gemini CLI" in out.stderr


def test_agent_settings_are_validated() -> None:
    assert check("llm_cli", " codex ") == "codex"
    assert check("max_turns", "none") == "none"
    assert check("max_budget_usd", "2.5") == "2.5"
    for key, value in (("llm_cli", "cursor"), ("claude_permission_mode", "yolo"),
                       ("max_turns", "0"), ("max_turns", "x"), ("max_budget_usd", "-1"),
                       ("max_budget_usd", "nan"), ("default_runner", "ray")):
        with pytest.raises(OrchestratorError, match=key):
            check(key, value)


def test_the_fakes_refuse_unknown_flags(tmp_path: Path) -> None:
    path = fake_path(tmp_path / "bin")
    for argv in (["claude", "-p", "hi", "--bogus"], ["codex", "exec", "--json", "--bogus", "x"],
                 ["gemini", "-p", "hi", "--bogus"],
                 ["claude", "-p", "hi", "--output-format", "stream-json"]):
        out = subprocess.run(argv, env={**os.environ, "PATH": path}, capture_output=True,
                             text=True, check=False, timeout=30)
        assert out.returncode == 2 and "error" in out.stderr, argv


def test_the_inline_agent_variant_is_accepted_by_claude(tmp_path: Path, workspace: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    write_agent(workspace, "claude")
    _, registry, _ = load_plan("review", str(write_workflow(workspace)), workspace, [])
    monkeypatch.setattr(claude, "AGENT_FLAGS", "agents")
    argv = claude.build_argv(AgentCall(program="claude", agent=registry.agents["rev"],
                                       prompt="review r1", resume="abc"))
    definition = json.loads(argv[argv.index("--agents") + 1])
    assert definition["rev"]["prompt"] == BODY and definition["rev"]["tools"] == ["Read", "Grep"]
    assert argv[argv.index("--agent") + 1] == "rev" and "--append-system-prompt" not in argv
    out = subprocess.run(argv, env={**os.environ, "PATH": fake_path(tmp_path / "bin")},
                         capture_output=True, text=True, check=False, timeout=30, cwd=workspace)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.splitlines()[0])["session_id"] == "abc"


def test_instructions_starting_with_a_dash_are_not_read_as_options(
        tmp_path: Path, workspace: Path) -> None:
    write_agent(workspace, "codex", model="inherit")
    _, registry, _ = load_plan("review", str(write_workflow(workspace)), workspace, [])
    agent = dataclasses.replace(registry.agents["rev"], body="- be brief\n- be right")
    argv = codex.build_argv(AgentCall(program="codex", agent=agent, prompt="review r1"))
    assert argv[-1].startswith("\n- be brief")
    out = subprocess.run(argv, env={**os.environ, "PATH": fake_path(tmp_path / "bin")},
                         capture_output=True, text=True, check=False, timeout=30, cwd=workspace)
    assert out.returncode == 0, out.stderr
    assert claude.build_argv(AgentCall(program="claude", agent=agent, prompt="-x")
                             )[2] == "\n-x"
