"""The agent registry reads real, messy agent files leniently and reports each problem where
it is: file and line. Fixtures are written into tmp_path; the wshobson collection (real
published agents) is read from the shared data folder when it is there."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator_tui.core.capabilities import infer_capabilities, normalise_capabilities
from orchestrator_tui.core.errors import OrchestratorError
from orchestrator_tui.engine.agent_files import MAX_READ_BYTES
from orchestrator_tui.engine.registry import (
    Problem,
    Registry,
    agent_dirs,
    is_safe_name,
    load_registry,
    read_agent,
)
from orchestrator_tui.engine.shipped import shipped_dir

WSHOBSON = Path(__file__).resolve().parents[2] / "shared" / "data" / "agents-wshobson"
MESSY = Path(__file__).resolve().parent / "fixtures" / "agents_messy"


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home folder of the test's own, so `~/.claude/agents` is under its control."""
    folder = tmp_path / "home"
    folder.mkdir()
    monkeypatch.setenv("HOME", str(folder))
    return folder


def write(folder: Path, name: str, text: str | bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def agent(name: str, description: str = "Reviews code.", extra: str = "") -> str:
    return f"---\nname: {name}\ndescription: {description}\n{extra}---\n\nYou are {name}.\n"


def problems_of(registry: Registry, path: Path) -> list[Problem]:
    return [p for p in registry.problems if p.path == path]


def only(problems: list[Problem], words: str) -> Problem:
    found = [p for p in problems if words in p.message]
    assert len(found) == 1, (words, [str(p) for p in problems])
    return found[0]


def extra_only(tmp_path: Path, folder: Path, archived: tuple[str, ...] = ()) -> Registry:
    return load_registry(tmp_path / "ws", [folder], archived)


# ----- the messy files of the fixture folder ------------------------------------------------

def test_unquoted_colons_fall_back_to_line_reading_with_the_yaml_error_line(
        tmp_path: Path) -> None:
    registry = extra_only(tmp_path, MESSY)
    spec = registry.get("colon-reviewer")
    assert spec.description.startswith("Use this agent when: the code changed")
    assert spec.tools == ("Read", "Grep", "Glob")
    assert spec.model == "sonnet"
    problem = only(problems_of(registry, spec.path), "not valid YAML")
    assert problem.line == 3  # the `description:` line, counting the opening `---` as 1
    assert "mapping values" in problem.message


def test_examples_and_literal_newlines_in_a_one_line_description(tmp_path: Path) -> None:
    registry = extra_only(tmp_path, MESSY)
    spec = registry.get("example-writer")
    assert "\n" in spec.description and "\\n" not in spec.description
    assert "<example>" in spec.description and "</example>" in spec.description
    assert spec.summary == "Writes docs when asked."
    assert spec.color == "green"  # the key after the example block is still read
    assert spec.body.startswith("You write documentation.")
    lines = registry.get("example-lines")  # an example block over several lines
    assert 'user: "What does this function do?"' in lines.description
    assert lines.model == "inherit" and "user" not in lines.extra


def test_continuation_lines_and_loose_lists(tmp_path: Path) -> None:
    registry = extra_only(tmp_path, MESSY)
    spec = registry.get("loose-lists")
    assert spec.description == ("Finds slow code and explains: why it is slow, "
                                "and how to fix it.")
    assert spec.tools == ("Read", "Bash")
    assert spec.capabilities == ("performance", "profiling")
    assert spec.capabilities_inferred is False
    assert spec.fallback == ("colon-reviewer",)
    assert spec.priority == 3


def test_messy_fixture_folder_loads_every_file(tmp_path: Path) -> None:
    registry = extra_only(tmp_path, MESSY)
    mine = {name for name, spec in registry.agents.items() if spec.source == "extra"}
    assert mine == {"colon-reviewer", "example-writer", "example-lines", "loose-lists",
                    "plain-prompt", "typed-fields"}
    # README.md at the top has no front matter: documentation, not an agent, not a problem
    assert not [p for p in registry.problems if p.path.name == "README.md"]


# ----- files written by the tests -----------------------------------------------------------

def test_no_front_matter_takes_the_name_from_the_file(tmp_path: Path) -> None:
    folder = tmp_path / "agents"
    path = write(folder, "Plain Helper.md", "You help with anything.\n\nBe brief.\n")
    registry = extra_only(tmp_path, folder)
    spec = registry.get("plain-helper")
    assert spec.path == path and spec.body == "You help with anything.\n\nBe brief."
    assert spec.description == "" and spec.capabilities_inferred
    assert only(list(spec.problems), "no front matter").line == 1


def test_tools_as_comma_string_list_or_empty(tmp_path: Path) -> None:
    folder = tmp_path / "agents"
    write(folder, "a.md", agent("a", extra="tools: Read, Grep ,Glob\n"))
    write(folder, "b.md", agent("b", extra="tools:\n  - Read\n  - Edit\n"))
    write(folder, "c.md", agent("c", extra="tools: []\n"))
    write(folder, "d.md", agent("d", extra='tools: ["Bash", "Read", "Bash"]\n'))
    write(folder, "e.md", agent("e"))
    registry = extra_only(tmp_path, folder)
    tools = {name: registry.get(name).tools for name in "abcde"}
    assert tools == {"a": ("Read", "Grep", "Glob"), "b": ("Read", "Edit"), "c": (),
                     "d": ("Bash", "Read"), "e": ()}
    assert all(not registry.get(name).problems for name in "abcde")


def test_unknown_model_is_kept_and_noted_at_its_line(tmp_path: Path) -> None:
    folder = tmp_path / "agents"
    path = write(folder, "m.md", agent("m", extra="color: red\nmodel: fable\n"))
    write(folder, "n.md", agent("n", extra="model: claude-sonnet-4-5\n"))
    registry = extra_only(tmp_path, folder)
    assert registry.get("m").model == "fable"
    problem = only(problems_of(registry, path), "unknown model 'fable'")
    assert (problem.line, problem.severity) == (5, "note")
    assert registry.get("n").problems == ()


def test_name_differing_from_the_file_name_wins_and_is_reported(tmp_path: Path) -> None:
    folder = tmp_path / "agents"
    path = write(folder, "reviewer.md", agent("Team-Reviewer"))
    registry = extra_only(tmp_path, folder)
    assert "reviewer" not in registry.agents
    spec = registry.get("team-reviewer")
    assert spec.path == path
    assert only(list(spec.problems), "differs from the file name").line == 2
    only(list(spec.problems), "'Team-Reviewer' is used as 'team-reviewer'")


def test_unsafe_names_fall_back_to_the_file_name(tmp_path: Path) -> None:
    folder = tmp_path / "agents"
    write(folder, "escape.md", agent("../../etc/passwd"))
    write(folder, "spaces.md", agent("My Great Agent!"))
    write(folder, "....md", agent("..."))
    registry = extra_only(tmp_path, folder)
    assert registry.get("escape").name == "escape"
    assert registry.get("spaces").name == "spaces"
    assert all(is_safe_name(name) for name in registry.agents)
    unsafe = [p for p in registry.problems if "not a safe name" in p.message]
    assert len(unsafe) == 3
    skipped = only(registry.problems, "no usable agent name")
    assert skipped.path.name == "....md"


def test_non_utf8_bytes_are_replaced_and_reported_at_their_line(tmp_path: Path) -> None:
    folder = tmp_path / "agents"
    text = agent("latin", description="Caf\xe9 reviewer.").encode("latin-1")
    path = write(folder, "latin.md", text + b"More \xff\xfe bytes.\n")
    registry = extra_only(tmp_path, folder)
    spec = registry.get("latin")
    assert spec.description == "Caf\ufffd reviewer."
    problem = only(problems_of(registry, path), "not valid UTF-8")
    assert problem.line == 3


def test_a_huge_file_keeps_its_front_matter_and_a_capped_prompt(tmp_path: Path) -> None:
    folder = tmp_path / "agents"
    line = "Repeat the review carefully, line after line, until everything is checked.\n"
    body = line * (5 * 1024 * 1024 // len(line))
    path = write(folder, "huge.md", agent("huge", extra="tools: Read\n") + body)
    assert path.stat().st_size > 5_000_000
    registry = extra_only(tmp_path, folder)
    spec = registry.get("huge")
    assert spec.tools == ("Read",) and spec.description == "Reviews code."
    assert 0 < len(spec.body.encode()) <= MAX_READ_BYTES
    assert spec.body.endswith("checked.")  # cut at a line end, not inside one
    problem = only(list(spec.problems), "only its first")
    assert "5.2 MB" in problem.message and problem.line > 1000


def test_symlink_loops_and_unreadable_files_are_reported_and_skipped(tmp_path: Path) -> None:
    folder = tmp_path / "agents"
    write(folder, "good.md", agent("good"))
    (folder / "loop-a.md").symlink_to(folder / "loop-b.md")
    (folder / "loop-b.md").symlink_to(folder / "loop-a.md")
    (folder / "dangling.md").symlink_to(folder / "nowhere.md")
    (folder / "sub").mkdir()
    (folder / "sub" / "up").symlink_to(folder)  # a folder loop for the recursive scan
    write(folder / "sub", "nested.md", agent("nested"))
    locked = write(folder, "locked.md", agent("locked"))
    locked.chmod(0)
    try:
        registry = extra_only(tmp_path, folder)
    finally:
        locked.chmod(0o644)
    assert {"good", "nested"} <= set(registry.agents)
    for name in ("loop-a.md", "loop-b.md", "dangling.md"):
        problem = only(problems_of(registry, folder / name), "cannot read")
        assert problem.severity == "error"
    if os.geteuid() != 0:  # root reads any file
        assert "locked" not in registry.agents
        only(problems_of(registry, locked), "cannot read")


def test_front_matter_that_is_not_a_mapping(tmp_path: Path) -> None:
    folder = tmp_path / "agents"
    path = write(folder, "listy.md", "---\n- name: listy\n- tools: Read\n---\nBody.\n")
    write(folder, "empty.md", "---\n---\nOnly a body.\n")
    write(folder, "open.md", "---\nname: open\nBody, never closed.\n")
    registry = extra_only(tmp_path, folder)
    assert registry.get("listy").body == "Body."
    assert only(problems_of(registry, path), "not a mapping").line == 2
    assert registry.get("empty").body == "Only a body."
    only(list(registry.get("empty").problems), "no `name`")
    only(list(registry.get("open").problems), "never closed")


def test_block_scalars_duplicates_and_typos_in_loose_mode(tmp_path: Path) -> None:
    folder = tmp_path / "agents"
    path = write(folder, "blocky.md", (
        "---\nname: blocky\ndescription: >\n  Folded over\n  two lines.\n"
        "notes: |\n  kept\n  lines\nsummary: bad: colon\nname: blocky\ncapabilites: [x]\n"
        "---\nbody\n"))
    registry = extra_only(tmp_path, folder)
    spec = registry.get("blocky")
    assert spec.description == "Folded over two lines."
    assert spec.extra["notes"] == "kept\nlines"
    problems = problems_of(registry, path)
    assert only(problems, "not valid YAML").line == 9
    assert only(problems, "appears again").line == 10
    assert only(problems, "did you mean 'capabilities'").line == 11


def test_bad_field_types_are_reported_at_their_lines(tmp_path: Path) -> None:
    registry = extra_only(tmp_path, MESSY)
    spec = registry.get("typed-fields")
    problems = list(spec.problems)
    assert spec.command is None and only(problems, "command must be").line == 4
    assert spec.priority == 0 and only(problems, "whole number").line == 5
    assert spec.resources == {} and only(problems, "should be a mapping").line == 6
    assert spec.isolation is None and only(problems, "unknown isolation").line == 7
    assert spec.idempotent is False
    assert only(problems, "fallback agents not found: nobody").line == 9
    assert spec.runner == "auto" and only(problems, "unknown runner 'shell'").line == 10


def test_our_own_keys(tmp_path: Path) -> None:
    folder = tmp_path / "agents"
    write(folder, "worker.md", agent("worker", extra=(
        'command: ["{python}", "-c", "print(1)", 3]\nrunner: command\npriority: "7"\n'
        "resources: {cpu: 2, memory: 1G}\nidempotent: false\nfallback: helper, Worker\n"
        "isolation: Worktree\ncapabilities: Python, Testing , python\n")))
    write(folder, "helper.md", agent("helper"))
    spec = extra_only(tmp_path, folder).get("worker")
    assert spec.command == ("{python}", "-c", "print(1)", "3")
    assert (spec.runner, spec.priority, spec.idempotent) == ("command", 7, False)
    assert spec.resources == {"cpu": 2, "memory": "1G"}
    assert spec.fallback == ("helper",)  # an agent is never its own fallback
    assert spec.isolation == "worktree"
    assert spec.capabilities == ("python", "testing") and not spec.capabilities_inferred
    assert spec.problems == ()


# ----- folders: precedence, shadowing, recursion ---------------------------------------------

def test_precedence_workspace_user_shipped_extra_and_shadowing(tmp_path: Path,
                                                               home: Path) -> None:
    workspace = tmp_path / "ws"
    ours = write(workspace / ".claude" / "agents", "code-reviewer.md",
                 agent("code-reviewer", extra="model: opus\n"))
    user = write(home / ".claude" / "agents", "code-reviewer.md", agent("code-reviewer"))
    write(home / ".claude" / "agents", "mine.md", agent("mine"))
    extra = tmp_path / "extra"
    write(extra, "mine.md", agent("mine"))
    write(extra, "only-extra.md", agent("only-extra"))
    registry = load_registry(workspace, [extra])
    assert agent_dirs(workspace, [extra]) == [
        workspace / ".claude" / "agents", home / ".claude" / "agents", shipped_dir("agents"),
        extra]
    assert registry.get("code-reviewer").path == ours
    assert registry.get("code-reviewer").source == "workspace"
    assert registry.get("mine").source == "user"
    assert registry.get("only-extra").source == "extra"
    assert registry.get("architect").source == "shipped"
    shipped = shipped_dir("agents") / "code-reviewer.md"
    shadowed = {(s.name, s.path, s.by) for s in registry.shadowed}
    assert ("code-reviewer", user, ours) in shadowed
    assert ("code-reviewer", shipped, ours) in shadowed
    assert ("mine", extra / "mine.md", home / ".claude" / "agents" / "mine.md") in shadowed
    problem = only(problems_of(registry, shipped), "shadowed")
    assert str(ours) in problem.message and problem.line == 2


def test_agents_dirs_are_searched_recursively_and_documentation_skipped(
        tmp_path: Path) -> None:
    extra = tmp_path / "collection"
    write(extra, "README.md", "# A collection\n\nNo front matter here.\n")
    write(extra, "top-level.md", "A prompt without front matter at the top.\n")
    write(extra / "plugins" / "one" / "agents", "alpha.md", agent("one-alpha"))
    write(extra / "plugins" / "one", "README.md", "# Plugin one\n")
    write(extra / "plugins" / "one" / "commands", "notes.md", "Some notes.\n")
    write(extra / "plugins" / "two" / "agents", "alpha.md", agent("two-alpha"))
    write(extra, "LICENSE.md", b"Copyright \xa9 someone\n")
    write(extra, "empty.md", "")
    write(extra / ".git", "hidden.md", agent("hidden"))
    registry = extra_only(tmp_path, extra)
    mine = {name for name, spec in registry.agents.items() if spec.source == "extra"}
    assert mine == {"one-alpha", "two-alpha", "top-level"}
    skipped = ("README.md", "notes.md", "LICENSE.md")
    assert not [p for p in registry.problems if p.path.name in skipped]
    assert only(registry.problems, "empty file").path == extra / "empty.md"
    missing = extra_only(tmp_path, tmp_path / "nowhere")
    assert only(missing.problems, "does not exist").path == tmp_path / "nowhere"


def test_archived_agents_are_marked(tmp_path: Path) -> None:
    registry = load_registry(tmp_path / "ws", archived=["Architect", "gone"])
    assert registry.get("architect").archived
    assert not registry.get("code-reviewer").archived


def test_unknown_agent_error_names_close_matches(tmp_path: Path) -> None:
    registry = load_registry(tmp_path / "ws")
    with pytest.raises(OrchestratorError, match="did you mean code-reviewer"):
        registry.get("code-reviewr")


def test_read_agent_keeps_its_old_shape(tmp_path: Path) -> None:
    problems: list[Problem] = []
    spec = read_agent(write(tmp_path, "x.md", agent("x")), problems)
    assert spec is not None and spec.name == "x" and problems == []
    assert read_agent(tmp_path / "missing.md", problems) is None and len(problems) == 1


def test_shipped_agents_load_without_problems(tmp_path: Path) -> None:
    registry = load_registry(tmp_path / "ws")
    shipped = [spec for spec in registry.agents.values() if spec.source == "shipped"]
    assert len(shipped) >= 9
    assert registry.problems == []
    assert all(spec.command and not spec.capabilities_inferred for spec in shipped)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from([
    "---", "name: x", "name: ../x", "description: a: b", "<example>", "</example>",
    "user: hi", "tools: [a, b", "tools:", "- Read", "  - Edit", "command: [1, true]",
    "priority: 1e9", "resources: {a: [", "description: |", "  text", ">", "\\n", "\t- x",
    "fallback: [x, x]", "model:", "'quoted", "\"x\": y", "&a [*a]", "!!python/object x",
    "", "#", "    ", "\ufeff---",
]), max_size=14))
def test_any_arrangement_of_messy_lines_never_raises(tmp_path_factory: pytest.TempPathFactory,
                                                     lines: list[str]) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    write(folder, "x.md", "\n".join(lines))
    problems: list[Problem] = []
    spec = read_agent(folder / "x.md", problems)
    assert spec is None or is_safe_name(spec.name)
    assert all(p.path == folder / "x.md" and p.line >= 0 for p in problems)


# ----- capabilities ---------------------------------------------------------------------------

def test_capability_inference_is_keyword_based_and_ordered() -> None:
    assert infer_capabilities("security-auditor", "Finds vulnerabilities and secrets.") == (
        "security",)
    assert infer_capabilities("django-pro", "Builds REST APIs; writes pytest tests.") == (
        "testing", "api-design", "python")
    assert infer_capabilities("city-guide", "Builds things.") == ()  # no "ci" in "city"
    assert normalise_capabilities(["API Design", "api-design", " ", "Ops!"]) == (
        "api-design", "ops")


# ----- the real collection ---------------------------------------------------------------------

def test_every_wshobson_agent_loads(tmp_path: Path) -> None:
    if not WSHOBSON.is_dir():
        pytest.skip(f"no real agent collection at {WSHOBSON}")
    files = sorted(WSHOBSON.rglob("*.md"))
    agent_files = [path for path in files if path.name != "README.md"]
    assert len(agent_files) == 202
    registry = extra_only(tmp_path, WSHOBSON)
    used = {spec.path for spec in registry.agents.values() if spec.source == "extra"}
    shadowed = {s.path for s in registry.shadowed}
    assert used | shadowed == set(agent_files)  # every file: an agent, or shadowed by one
    assert not used & shadowed
    for path in shadowed:  # shadowed only by an agent that comes earlier (shipped)
        assert only(problems_of(registry, path), "shadowed").line == 2
    errors = [p for p in registry.problems if p.severity == "error"]
    assert errors == []
    models = [p for p in registry.problems if "unknown model" in p.message]
    assert len(models) == 2 and all(p.severity == "note" for p in models)
    with_tools = [spec for spec in registry.agents.values()
                  if spec.source == "extra" and "tools" in spec.extra]
    assert any(spec.tools == () for spec in with_tools)  # the one `tools: []`
    assert all(spec.description for spec in registry.agents.values())
    assert sum(1 for p in registry.problems if "differs from the file name" in p.message) == 95
