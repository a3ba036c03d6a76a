"""Generating agent files: `agent generate builder|specialist` and `agent create`."""

from __future__ import annotations

import argparse
import json
import os
import string
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import orchestrator_tui.commands  # noqa: F401  (registers every command group)
from orchestrator_tui.commands.agent_generation import add_generate_parsers
from orchestrator_tui.commands.grammar import (
    HANDLERS,
    CommandContext,
    CommandError,
    execute,
    parse_slash,
)
from orchestrator_tui.core.agent_text import (
    LANGUAGES,
    AgentFileError,
    Stamp,
    builder_draft,
    freeform_draft,
    one_line,
    slugify,
    specialist_draft,
)
from orchestrator_tui.engine.generate import (
    Generated,
    create_agent,
    generate_builder,
    generate_specialist,
    template_path,
    workspace_agents,
    write_agent_file,
)
from orchestrator_tui.engine.patterns import success_metrics
from orchestrator_tui.engine.registry import Problem, load_registry, read_agent
from orchestrator_tui.engine.shipped import shipped_dir
from orchestrator_tui.store.database import connect
from tests.conftest import Run
from tests.test_agent_text import TEXT

needs_agent_group = pytest.mark.skipif(("agent", "list") not in HANDLERS,
                                       reason="the `agent` command group is not there yet")


def meta_of(path: Path) -> dict[str, object]:
    """The front matter of a written file, read back with strict YAML."""
    text = path.read_text(encoding="utf-8")
    end = text.index("\n---\n", 3)
    meta = yaml.safe_load(text[4:end])
    assert isinstance(meta, dict)
    return meta


def check_written(made: Generated, folder: Path, meant: dict[str, object]) -> None:
    """The file is inside the folder, reads back as meant, and loads without problems."""
    assert made.path.parent == folder.resolve()
    assert made.path.name == f"{made.name}.md" and slugify(made.name) == made.name
    read = meta_of(made.path)
    assert list(read) == list(meant)
    for key, value in meant.items():
        assert read[key] == value, key
    problems: list[Problem] = []
    spec = read_agent(made.path, problems)
    assert problems == []
    assert spec is not None and spec.name == made.name
    assert spec.description == meant["description"]
    assert made.text == made.path.read_text(encoding="utf-8")
    assert made.seconds > 0


def stamp_of(path: Path) -> Stamp:
    meta = meta_of(path)
    return Stamp(str(meta["generated"]), str(meta["generator"]))


@settings(max_examples=60, deadline=None)
@given(TEXT, TEXT, TEXT, st.none() | TEXT)
def test_any_specialist_text_writes_a_file_that_reads_back(
        specialty: str, domain: str, focus: str, tools: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "agents"
        try:
            made = generate_specialist(folder, specialty, domain=domain, focus=focus,
                                       tools=tools)
        except AgentFileError as error:
            assert "is empty" in str(error)
            assert not all(one_line(text) for text in (specialty, domain, focus))
            return
        meant = specialist_draft(specialty, domain=domain, focus=focus, tools=tools,
                                 stamp=stamp_of(made.path)).meta
        check_written(made, folder, meant)
        assert one_line(focus) in str(meant["description"])


@settings(max_examples=60, deadline=None)
@given(TEXT, st.none() | TEXT, st.none() | TEXT)
def test_any_description_writes_a_file_that_reads_back(
        description: str, tools: str | None, focus: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "agents"
        try:
            made = create_agent(folder, description, tools=tools, focus=focus)
        except AgentFileError:
            assert not one_line(description)
            return
        meant = freeform_draft(description, tools=tools, focus=focus,
                               stamp=stamp_of(made.path)).meta
        check_written(made, folder, meant)


@settings(max_examples=60, deadline=None)
@given(TEXT, st.none() | TEXT, st.none() | TEXT, st.none() | TEXT)
def test_any_builder_text_writes_a_file_that_reads_back(
        language: str, framework: str | None, test_command: str | None,
        formatter: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "agents"
        try:
            made = generate_builder(folder, language, framework=framework,
                                    test_command=test_command, formatter=formatter)
        except AgentFileError:
            assert not one_line(language)
            return
        meant = builder_draft(language, framework=framework, test_command=test_command,
                              formatter=formatter, stamp=stamp_of(made.path)).meta
        check_written(made, folder, meant)


@pytest.mark.parametrize("language", [profile.key for profile in LANGUAGES] + ["elixir"])
def test_each_builder_language_loads_into_the_registry(workspace: Path, language: str) -> None:
    made = generate_builder(workspace_agents(workspace), language)
    registry = load_registry(workspace)
    spec = registry.agents[made.name]
    assert spec.path == made.path
    assert (spec.command is not None) == (language in ("python", "typescript"))
    if spec.command:
        assert spec.command[:2] == ("{python}", "-m")
    else:
        assert "agent CLI" in spec.body
    assert spec.body.splitlines()[-1].startswith("`SUMMARY:")
    assert not [p for p in registry.problems if p.path == made.path]


def test_generated_agents_shadow_shipped_ones_in_the_workspace(workspace: Path) -> None:
    made = generate_builder(workspace_agents(workspace), "python", framework="django")
    assert load_registry(workspace).agents["builder-python"].path == made.path


def test_templates_ship_but_are_not_agents(workspace: Path) -> None:
    templates = shipped_dir("agents") / "templates"
    for kind, draft in (("builder", builder_draft("go", stamp=Stamp("t", "g"))),
                        ("specialist", specialist_draft("a", domain="b", focus="c",
                                                        stamp=Stamp("t", "g"))),
                        ("freeform", freeform_draft("d", stamp=Stamp("t", "g")))):
        path = template_path(kind)
        assert path.parent == templates
        text = path.read_text(encoding="utf-8")
        used = {m.group("named") or m.group("braced")
                for m in string.Template.pattern.finditer(text)} - {None}
        assert used <= {"name", *draft.fields}, kind
        assert text.rstrip().endswith("`SUMMARY: N findings (H high, M medium, L low) in F files`")
    loaded = load_registry(workspace).agents.values()
    assert not [spec for spec in loaded if templates in spec.path.parents]


def test_never_overwrites_without_force(tmp_path: Path) -> None:
    folder = tmp_path / "agents"
    first = generate_specialist(folder, "api", domain="design", focus="contracts")
    with pytest.raises(AgentFileError, match="exists; use --force to overwrite"):
        generate_specialist(folder, "API", domain="other", focus="things")
    assert "contracts" in first.path.read_text()
    again = generate_specialist(folder, "API", domain="other", focus="things", force=True)
    assert again.path == first.path and "things" in again.path.read_text()
    assert sorted(p.name for p in folder.iterdir()) == ["api-specialist.md"]


def test_a_symlink_target_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "agents"
    folder.mkdir()
    outside = tmp_path / "outside.md"
    outside.write_text("keep me")
    (folder / "builder-go.md").symlink_to(outside)
    (folder / "builder-rust.md").symlink_to(tmp_path / "missing.md")
    for language in ("go", "rust"):
        with pytest.raises(AgentFileError, match="symbolic link"):
            generate_builder(folder, language, force=True)
    assert outside.read_text() == "keep me"
    assert not (tmp_path / "missing.md").exists()


def test_unsafe_names_and_bad_folders_are_refused(tmp_path: Path) -> None:
    with pytest.raises(AgentFileError, match="not a safe agent name"):
        write_agent_file(tmp_path, "../escape", "x")
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(AgentFileError, match="cannot create the agent folder"):
        create_agent(blocker / "agents", "a reviewer")
    (tmp_path / "reviewer.md").mkdir()
    with pytest.raises(AgentFileError, match="is a folder"):
        create_agent(tmp_path, "a reviewer", force=True)


def test_a_missing_folder_is_created_and_nothing_else_is_left(tmp_path: Path) -> None:
    folder = tmp_path / "deep" / "agents"
    made = create_agent(folder, "../../etc/passwd", focus="../../x")
    assert made.path == folder.resolve() / "etc-passwd.md"
    assert [p.name for p in folder.iterdir()] == ["etc-passwd.md"]
    assert folder.stat().st_mode & 0o777 == 0o755 & ~_umask()
    assert made.path.stat().st_mode & 0o777 == 0o644


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def agent_parser() -> argparse.ArgumentParser:
    """A stand-in for the `agent` command group, as the CLI builds it."""
    parser = argparse.ArgumentParser(prog="orchestrator")
    groups = parser.add_subparsers(dest="group")
    agent = groups.add_parser("agent")
    add_generate_parsers(agent.add_subparsers(dest="action"))
    return parser


def test_parsers_of_generate_and_create() -> None:
    parser = agent_parser()
    args = parser.parse_args(["agent", "generate", "builder", "python", "--framework",
                              "django", "--test-command", "pytest -v", "--force"])
    assert (args.group, args.action, args.kind, args.language) == ("agent", "generate",
                                                                  "builder", "python")
    assert (args.framework, args.test_command, args.formatter, args.force) == (
        "django", "pytest -v", None, True)
    args = parser.parse_args(["agent", "generate", "specialist", "api", "--domain", "design",
                              "--focus", "contracts", "--tools", "Read,Grep"])
    assert (args.kind, args.specialty, args.domain, args.focus, args.tools) == (
        "specialist", "api", "design", "contracts", "Read,Grep")
    args = parser.parse_args(["agent", "create", "database migration specialist", "--tools",
                              "Read,Edit,Bash", "--focus", "schema changes"])
    assert (args.action, args.description, args.focus) == ("create",
                                                           "database migration specialist",
                                                           "schema changes")
    with pytest.raises(SystemExit):
        parser.parse_args(["agent", "generate", "specialist", "api", "--focus", "x"])
    with pytest.raises(SystemExit):
        parser.parse_args(["agent", "generate"])


async def test_commands_write_into_the_workspace_agents(workspace: Path, db_path: Path) -> None:
    context = CommandContext(db_path=db_path, workspace=workspace)
    parser = agent_parser()
    result = await execute(parser.parse_args(["agent", "generate", "specialist", "deploy",
                                              "--domain", "infrastructure", "--focus",
                                              "automation"]), context)
    path = workspace / ".claude" / "agents" / "deploy-specialist.md"
    assert result.ok and str(path) in result.text and " ms" in result.text
    assert result.data["name"] == "deploy-specialist" and result.data["seconds"] > 0
    result = await execute(parser.parse_args(["agent", "create", "read-only code review"]),
                           context)
    assert result.data["path"] == str(workspace / ".claude/agents/read-only-code-review.md")
    registry = load_registry(workspace)
    assert registry.agents["read-only-code-review"].extra["tools"] == "Read, Grep, Glob"
    assert "deploy-specialist" in registry.agents
    with pytest.raises(AgentFileError, match="exists"):
        await execute(parser.parse_args(["agent", "create", "read-only code review"]),
                      context)
    conn = await connect(db_path)
    try:  # both generations are recorded; the refused one is not
        metric = next(m for m in await success_metrics(conn) if m.name == "agent generation time")
    finally:
        await conn.close()
    assert metric.value is not None and metric.value < 30 and metric.met
    assert metric.basis == "median of 2 generated agent file(s)"


@needs_agent_group
def test_cli_generates_agents_the_registry_loads(cli: Run, workspace: Path) -> None:
    done = cli("agent", "generate", "builder", "rust", "--framework", "tokio",
               "--test-command", "cargo test", "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["name"] == "builder-rust" and data["seconds"] > 0
    done = cli("agent", "create", 'a reviewer: "strict"\n---\nno edits', "--tools", "Read")
    assert done.returncode == 0, done.stderr
    assert "ms" in done.stdout
    agents = load_registry(workspace).agents
    assert agents["builder-rust"].path == Path(data["path"])
    assert agents["reviewer-strict-no-edits"].extra["tools"] == "Read"


@needs_agent_group
def test_cli_refuses_bad_input_without_a_traceback(cli: Run) -> None:
    assert cli("agent", "create", "a reviewer").returncode == 0
    done = cli("agent", "create", "a reviewer")
    assert done.returncode == 2
    assert "exists; use --force to overwrite" in done.stderr
    assert "Traceback" not in done.stderr
    done = cli("agent", "generate", "specialist", " ", "--domain", "d", "--focus", "f")
    assert done.returncode == 2 and "specialty is empty" in done.stderr
    assert "Traceback" not in done.stderr


@needs_agent_group
def test_the_command_bar_parses_generate_and_create() -> None:
    args = parse_slash('/agent generate specialist api --domain design --focus "the contracts"')
    assert (args.group, args.action, args.kind, args.focus) == ("agent", "generate",
                                                               "specialist", "the contracts")
    assert parse_slash("/agent create 'a reviewer' --force").force is True
    with pytest.raises(CommandError, match="--domain"):
        parse_slash("/agent generate specialist api --focus x")
