"""The text of generated agent files: names, strict front matter and rendered bodies."""

from __future__ import annotations

import re

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator_tui.core.agent_text import (
    LANGUAGES,
    MAX_NAME,
    READ_TOOLS,
    WRITE_TOOLS,
    AgentFileError,
    Stamp,
    builder_draft,
    clean,
    code,
    compose_name,
    dump_front_matter,
    freeform_draft,
    infer_tools,
    language_profile,
    normalize_tools,
    one_line,
    render_agent,
    render_body,
    slugify,
    specialist_draft,
)

SAFE_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")
STAMP = Stamp("2025-01-02T03:04:05Z", "orchestrator_tui 0.1.0")
PIECES = ["---", "\n---\n", ":", ": ", '"', "'", "\\", "../", "..", "/", "#", "$x", "${y}",
          "$$", "`", "- ", "[a, b]", "{k: v}", "&a", "*a", "!tag", "%", "@", "\t", "\r\n",
          "\u2028", "\x85", "\ufeff", "é", "日本", "😀", "ß", "\x1b[31m", "true", "null", "1e3",
          "~", "? ", "|", ">", " ", "\udcff"]
ARGV_CHARACTERS = st.characters(exclude_characters="\0")  # argv cannot hold a NUL
TEXT = st.one_of(
    st.text(ARGV_CHARACTERS),
    st.lists(st.one_of(st.sampled_from(PIECES), st.text(ARGV_CHARACTERS, max_size=5)),
             max_size=8).map("".join),
)


def front_matter(text: str) -> dict[str, object]:
    """The front matter of a rendered file, read back with strict YAML."""
    assert text.startswith("---\n")
    end = text.index("\n---\n", 3)
    meta = yaml.safe_load(text[4:end])
    assert isinstance(meta, dict)
    assert yaml.load(text[4:end], Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) == meta
    return meta


@given(TEXT)
def test_slugify_always_gives_a_safe_name(text: str) -> None:
    slug = slugify(text)
    assert SAFE_NAME.fullmatch(slug)
    assert len(slug) <= MAX_NAME
    assert slug not in (".", "..") and "/" not in slug
    assert not slug.endswith("-") and "--" not in slug
    assert slugify(slug) == slug


@pytest.mark.parametrize(("text", "slug"), [
    ("Café Déjà Vu", "cafe-deja-vu"), ("../../etc/passwd", "etc-passwd"), ("", "agent"),
    ("..", "agent"), ("日本語", "agent"), ("Straße Œuvre", "strasse-oeuvre"),
    ("  API -- Design!  ", "api-design"), ("x" * 100, "x" * 64),
])
def test_slugify_examples(text: str, slug: str) -> None:
    assert slugify(text) == slug


def test_compose_name_keeps_the_suffix_within_the_limit() -> None:
    name = compose_name("", "word " * 40, "specialist")
    assert len(name) <= MAX_NAME and name.endswith("-specialist")
    assert compose_name("builder", "") == "builder"
    assert compose_name("builder", "C++ / Qt") == "builder-c-qt"


def test_clean_replaces_undecodable_bytes_and_drops_nul() -> None:
    assert clean("a\udcffb\0c") == "a\ufffdbc"
    assert one_line(" a\n\tb\u2028c ") == "a b c"


@settings(max_examples=200)
@given(st.dictionaries(st.sampled_from(["name", "description", "tools", "x_y"]),
                       st.one_of(TEXT.map(clean), st.lists(TEXT.map(clean), max_size=3),
                                 st.booleans())))
def test_front_matter_reads_back_exactly(meta: dict[str, object]) -> None:
    text = dump_front_matter(meta)
    assert yaml.safe_load(text) == meta
    for line in text.splitlines():
        assert not line.startswith("---")


def test_front_matter_quotes_every_string_and_lists_in_block_style() -> None:
    text = dump_front_matter({"name": "a: b", "ok": True, "list": ["x", "x"], "n": "123"})
    assert text == 'name: "a: b"\nok: true\nlist:\n- "x"\n- "x"\nn: "123"\n'


def test_tools_are_a_comma_string_as_claude_code_writes_them() -> None:
    assert normalize_tools("Read,Edit, Bash ,,Read") == "Read, Edit, Bash"
    assert normalize_tools(" , ") is None
    assert normalize_tools(None) is None
    assert normalize_tools("Bash(git diff:*),\nRead") == "Bash(git diff:*), Read"


@pytest.mark.parametrize(("description", "tools"), [
    ("read-only code review", READ_TOOLS),
    ("audit the dependencies and run the tests", READ_TOOLS + ", Bash"),
    ("database migration specialist", WRITE_TOOLS),
    ("review code and fix what is wrong", WRITE_TOOLS),
    ("a friendly companion", WRITE_TOOLS),
])
def test_tools_inferred_from_a_description(description: str, tools: str) -> None:
    assert infer_tools(description) == tools


def test_language_profiles_by_name_alias_or_generic() -> None:
    assert language_profile("Python").key == "python"
    assert language_profile("ts").key == "typescript"
    assert language_profile("C++").key == "cpp"
    assert language_profile("c#").key == "csharp"
    elixir = language_profile("elixir")
    assert (elixir.key, elixir.title, elixir.test, elixir.command) == ("elixir", "Elixir",
                                                                      None, None)
    with pytest.raises(AgentFileError, match="language is empty"):
        language_profile(" \n ")
    assert len({profile.key for profile in LANGUAGES}) == len(LANGUAGES)


def test_builder_defaults_and_overrides() -> None:
    draft = builder_draft("go", stamp=STAMP)
    assert draft.name == "builder-go"
    assert "command" not in draft.meta
    assert "go test ./..." in draft.fields["test_step"]
    assert "gofmt" in draft.fields["format_step"]
    assert "go vet" in draft.fields["lint_step"]
    custom = builder_draft("python", stamp=STAMP, framework="Django", test_command="pytest -v",
                           formatter="black")
    assert custom.meta["command"] == ["{python}", "-m",
                                      "orchestrator_tui.agent_tools.builder_python",
                                      "{workspace}"]
    assert custom.meta["capabilities"] == ["python", "implementation-python", "django"]
    assert "`pytest -v`" in custom.fields["test_step"]
    assert "`black`" in custom.fields["format_step"]
    assert custom.meta["idempotent"] is True


def test_every_draft_has_the_common_keys() -> None:
    drafts = [builder_draft("rust", stamp=STAMP),
              specialist_draft("api", domain="design", focus="contracts", stamp=STAMP),
              freeform_draft("security reviewer", stamp=STAMP)]
    for draft in drafts:
        assert list(draft.meta)[:6] == ["name", "description", "tools", "model", "color",
                                        "capabilities"]
        assert draft.meta["model"] == "inherit"
        assert draft.meta["generated"] == STAMP.generated
        assert draft.meta["generator"] == STAMP.generator
        assert draft.meta["capabilities"]


def test_specialist_name_and_capabilities() -> None:
    draft = specialist_draft("Performance", domain="optimization", focus="profiling",
                             stamp=STAMP)
    assert draft.name == "performance-specialist"
    assert draft.meta["capabilities"][:3] == ["performance", "optimization", "profiling"]
    again = specialist_draft("security specialist", domain="web", focus="auth", stamp=STAMP)
    assert again.name == "security-specialist"
    with pytest.raises(AgentFileError, match="--domain is empty"):
        specialist_draft("x", domain="  ", focus="y", stamp=STAMP)


def test_freeform_name_from_key_words_and_read_only_tools() -> None:
    draft = freeform_draft("An agent that reviews the security of the API", stamp=STAMP)
    assert draft.name == "reviews-security-api"
    assert draft.meta["tools"] == READ_TOOLS
    assert draft.meta["idempotent"] is True
    assert {"security", "code-review", "api-design"} <= set(draft.meta["capabilities"])
    made = freeform_draft("database migration specialist", tools="Read,Edit,Bash",
                          focus="schema changes", stamp=STAMP)
    assert made.name == "database-migration-specialist"
    assert made.meta["tools"] == "Read, Edit, Bash"
    assert "Focus: schema changes." in made.meta["description"]
    assert "database" in made.meta["capabilities"]


def test_render_body_keeps_user_text_literal_and_names_a_bad_template() -> None:
    assert render_body("$a and $$", {"a": "$b ${c}"}, "t") == "$b ${c} and $"
    with pytest.raises(AgentFileError, match=r"t\.tmpl: unknown placeholder \$missing"):
        render_body("$missing", {}, "t.tmpl")
    with pytest.raises(AgentFileError, match=r"t\.tmpl"):
        render_body("$", {}, "t.tmpl")


def test_inline_code_survives_backticks() -> None:
    assert code("npm test") == "`npm test`"
    assert code("a `b` c") == "``a `b` c``"
    assert code("`x`") == "`` `x` ``"


@given(TEXT, TEXT, TEXT, TEXT)
def test_rendered_files_read_back_as_meant(specialty: str, domain: str, focus: str,
                                           tools: str) -> None:
    template = "Body $title $domain $focus $deliver_step $name\nSUMMARY: x\n"
    try:
        draft = specialist_draft(specialty, domain=domain, focus=focus, tools=tools,
                                 stamp=STAMP)
    except AgentFileError:
        assert not all(one_line(text) for text in (specialty, domain, focus))
        return
    text = render_agent(draft, template, "t")
    assert front_matter(text) == draft.meta
    assert one_line(domain) in draft.meta["description"]
    assert one_line(focus) in draft.meta["description"]
    assert draft.meta["tools"] == (normalize_tools(tools) or infer_tools(
        f"{one_line(specialty)} {one_line(domain)} {one_line(focus)}"))
    assert text.rstrip().endswith("SUMMARY: x")
    text.encode("utf-8")

