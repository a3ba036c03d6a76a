"""The text of new agent files: safe names, front matter built as data, bodies from templates.

Pure: no I/O. The front matter is a dict dumped by a strict YAML emitter that double-quotes
every string, so whatever a user types reads back unchanged; only the Markdown body is
rendered from a template (`string.Template`, `$placeholder`).
"""

from __future__ import annotations

import re
import string
import unicodedata
from dataclasses import dataclass
from typing import Any

import yaml

from orchestrator_tui.core.capabilities import infer_capabilities
from orchestrator_tui.core.errors import OrchestratorError

MAX_NAME = 64
FALLBACK_NAME = "agent"
COLORS = ("blue", "green", "purple", "orange", "cyan", "pink", "yellow", "red")
WRITE_TOOLS = "Read, Edit, Write, MultiEdit, Grep, Glob, LS, Bash"
READ_TOOLS = "Read, Grep, Glob"
EDITING_TOOLS = frozenset({"Edit", "Write", "MultiEdit", "NotebookEdit"})
AGENT_CLI_NOTE = ("This agent has no offline command: the orchestrator runs it through an "
                  "agent CLI (Claude Code, Codex or Gemini CLI, as its runner setting chooses).")
_LETTERS = str.maketrans({"ß": "ss", "æ": "ae", "Æ": "AE", "ø": "o", "Ø": "O", "œ": "oe",
                          "Œ": "OE", "đ": "d", "Đ": "D", "ł": "l", "Ł": "L", "þ": "th",
                          "Þ": "TH", "ð": "d", "Ð": "D", "\u0131": "i"})
_SURROGATES = re.compile("[\ud800-\udfff]")


class AgentFileError(OrchestratorError):
    """An agent file that cannot be generated; the message names the input or the file."""


@dataclass(frozen=True, slots=True)
class Stamp:
    """When and by what a file was generated."""

    generated: str
    generator: str


@dataclass(frozen=True, slots=True)
class AgentDraft:
    """A new agent: its name, its front matter and the fields of its body template."""

    kind: str
    name: str
    meta: dict[str, Any]
    fields: dict[str, str]


@dataclass(frozen=True, slots=True)
class Language:
    """What a builder of one language runs by default."""

    key: str
    title: str
    test: str | None
    formatter: str | None
    linter: str | None
    color: str
    aliases: tuple[str, ...] = ()
    command: tuple[str, ...] | None = None


def _tool(module: str) -> tuple[str, ...]:
    return ("{python}", "-m", f"orchestrator_tui.agent_tools.{module}", "{workspace}")


LANGUAGES = (
    Language("python", "Python", "pytest", "ruff format", "ruff check", "blue",
             ("py", "python3"), _tool("builder_python")),
    Language("typescript", "TypeScript", "npm test", "prettier --write .", "eslint .", "pink",
             ("ts", "tsx"), _tool("builder_typescript")),
    Language("javascript", "JavaScript", "npm test", "prettier --write .", "eslint .", "yellow",
             ("js", "jsx", "node", "nodejs")),
    Language("go", "Go", "go test ./...", "gofmt -w .", "go vet ./...", "cyan", ("golang",)),
    Language("rust", "Rust", "cargo test", "cargo fmt", "cargo clippy", "orange", ("rs",)),
    Language("java", "Java", "mvn test", "google-java-format --replace",
             "mvn checkstyle:check", "red"),
    Language("ruby", "Ruby", "bundle exec rspec", "rubocop --autocorrect", "rubocop", "red",
             ("rb",)),
    Language("cpp", "C++", "ctest", "clang-format -i", "clang-tidy", "purple", ("c++", "cxx")),
    Language("csharp", "C#", "dotnet test", "dotnet format", "dotnet build -warnaserror",
             "purple", ("c#", "cs", "dotnet")),
)

_WRITES = re.compile(r"\b(?:writ\w*|implement\w*|fix\w*|build\w*|creat\w*|refactor\w*|"
                     r"migrat\w*|edit\w*|generat\w*|updat\w*|add|adds|adding|chang\w*|"
                     r"develop\w*|convert\w*|port\w*|upgrad\w*|scaffold\w*|deploy\w*)\b")
_READS = re.compile(r"\b(?:review\w*|audit\w*|analy[sz]\w*|inspect\w*|scan\w*|read only|"
                    r"readonly|report\w*|explain\w*|assess\w*|check\w*|find\w*|plan\w*|"
                    r"research\w*)\b")
_RUNS = re.compile(r"\b(?:tests?|run\w*|lint\w*|scan\w*|benchmark\w*|profil\w*|execut\w*)\b")
_STOP_WORDS = frozenset({
    "a", "an", "the", "and", "or", "of", "for", "to", "in", "on", "at", "by", "with", "from",
    "into", "that", "which", "who", "whom", "whose", "this", "these", "those", "is", "are",
    "be", "as", "it", "its", "agent", "agents", "help", "helps", "can", "will", "should"})


def clean(text: str) -> str:
    """`text` as it can be written to a UTF-8 file: lone surrogates (undecodable bytes of a
    command line) become U+FFFD and NUL characters are dropped."""
    return _SURROGATES.sub("\ufffd", text).replace("\0", "")


def one_line(text: str) -> str:
    """`text` cleaned, with every run of whitespace (newlines too) made one space."""
    return " ".join(clean(text).split())


def ascii_words(text: str) -> list[str]:
    """The lowercase ASCII words of `text`; accented letters lose their accents (NFKD),
    letters with no ASCII form are dropped."""
    folded = unicodedata.normalize("NFKD", clean(text).translate(_LETTERS))
    return re.findall(r"[a-z0-9]+", folded.encode("ascii", "ignore").decode("ascii").lower())


def slugify(text: str, max_length: int = MAX_NAME) -> str:
    """A safe agent name: `[a-z0-9][a-z0-9-]*`, at most `max_length` characters, never
    empty (falls back to "agent"), so never "." or ".." and never a path."""
    slug = "-".join(ascii_words(text))[:max_length].strip("-")
    return slug or FALLBACK_NAME


def compose_name(prefix: str, text: str, suffix: str = "") -> str:
    """`prefix` + slug of `text` + `suffix`, the slug shortened so the whole fits."""
    room = MAX_NAME - len(prefix) - len(suffix) - 2
    middle = "-".join(ascii_words(text))[:max(room, 0)]
    return slugify(f"{prefix}-{middle}-{suffix}")


def required(text: str, what: str) -> str:
    """`text` on one line, or an error naming `what` when it is blank."""
    line = one_line(text)
    if not line:
        raise AgentFileError(f"{what} is empty; say what the agent is for")
    return line


def normalize_tools(text: str | None) -> str | None:
    """A comma-separated tool list as Claude Code writes it ("Read, Grep"), or None."""
    if text is None:
        return None
    tools = dict.fromkeys(tool for part in clean(text).split(",") if (tool := one_line(part)))
    return ", ".join(tools) or None


def edits_files(tools: str) -> bool:
    """Whether a tool list lets the agent change files."""
    return any(tool.split("(")[0].strip() in EDITING_TOOLS for tool in tools.split(","))


def implied_capabilities(name: str, text: str) -> list[str]:
    """Capabilities a name and a description imply (the keyword table of `core.capabilities`,
    over the description's ASCII words)."""
    return list(infer_capabilities(name, " ".join(ascii_words(text))))


def infer_tools(text: str) -> str:
    """Tools a description implies: read-only work gets Read, Grep, Glob (and Bash when it
    runs something); anything that changes code gets the full editing set."""
    words = " ".join(ascii_words(text))
    if _WRITES.search(words) or not _READS.search(words):
        return WRITE_TOOLS
    return READ_TOOLS + (", Bash" if _RUNS.search(words) else "")


def color_for(name: str) -> str:
    """A stable color for an agent name."""
    return COLORS[sum(name.encode("ascii")) % len(COLORS)]


def language_profile(language: str) -> Language:
    """The defaults of a language by name or alias; any other language gets a generic one."""
    typed = required(language, "the language")
    key = typed.lower()
    for profile in LANGUAGES:
        if key == profile.key or key == profile.title.lower() or key in profile.aliases:
            return profile
    slug = "-".join(ascii_words(typed))
    return Language(slug, _capitalized(typed), None, None, None, color_for(slug or "generic"))


def builder_draft(language: str, *, stamp: Stamp, framework: str | None = None,
                  test_command: str | None = None, formatter: str | None = None) -> AgentDraft:
    """A builder for `language` with its default test command, formatter and linter."""
    profile = language_profile(language)
    framework_line = one_line(framework or "")
    test = one_line(test_command or "") or profile.test
    fmt = one_line(formatter or "") or profile.formatter
    name = compose_name("builder", profile.key)
    with_framework = f" with {framework_line}" if framework_line else ""
    description = (f"{profile.title} implementation specialist{with_framework}: delivers "
                   f"minimal, focused diffs with tests, runs {test or 'the project tests'} "
                   f"and formats with {fmt or 'the project formatter'}. Use PROACTIVELY for "
                   f"{profile.title} features.")
    capabilities = [profile.key, f"implementation-{profile.key}"] if profile.key else [
        "implementation"]
    capabilities += [c for c in ["-".join(ascii_words(framework_line))] if c]
    meta = _meta(name, description, WRITE_TOOLS, profile.color, capabilities, stamp,
                 profile.command)
    if profile.command:
        module = profile.command[2]
        check = (f"Offline, the orchestrator runs {code(f'python -m {module} .')} for this "
                 "agent (its `command`); run it first to see the current build state.")
    else:
        check = AGENT_CLI_NOTE
    fields = {
        "title": profile.title, "with_framework": with_framework, "check_step": check,
        "test_step": (f"Run the tests ({code(test)}) and fix what fails." if test else
                      "Run the project's tests (the command its README or build files name) "
                      "and fix what fails."),
        "lint_step": (f"Run the linter ({code(profile.linter)}) and fix what it reports."
                      if profile.linter else
                      "Run the project's linter when it has one and fix what it reports."),
        "format_step": (f"Format with {code(fmt)} if it is available." if fmt else
                        "Format with the project's formatter if it has one."),
    }
    return AgentDraft("builder", name, meta, fields)


def specialist_draft(specialty: str, *, domain: str, focus: str, stamp: Stamp,
                     tools: str | None = None) -> AgentDraft:
    """A specialist in `specialty` for `domain` work, focused on `focus`."""
    specialty_line = required(specialty, "the specialty")
    domain_line = required(domain, "--domain")
    focus_line = required(focus, "--focus")
    words = ascii_words(specialty_line)
    suffix = "" if words[-1:] == ["specialist"] else "specialist"
    name = compose_name("", specialty_line, suffix)
    title = _capitalized(specialty_line)
    everything = f"{specialty_line} {domain_line} {focus_line}"
    chosen = normalize_tools(tools) or infer_tools(everything)
    own = ["-".join(ascii_words(text)) for text in (specialty_line, domain_line, focus_line)]
    capabilities = list(dict.fromkeys(
        c for c in [*own, *implied_capabilities(name, everything)] if c))
    description = (f"{title} specialist: expert in {domain_line}, focused on {focus_line}. "
                   f"Use PROACTIVELY for {domain_line} tasks and {focus_line}.")
    meta = _meta(name, description, chosen, color_for(name), capabilities or [name], stamp)
    fields = {"title": title, "domain": domain_line, "focus": focus_line,
              "deliver_step": _deliver_step(chosen)}
    return AgentDraft("specialist", name, meta, fields)


def freeform_draft(description: str, *, stamp: Stamp, tools: str | None = None,
                   focus: str | None = None) -> AgentDraft:
    """An agent from a free description; its name comes from the description's key words."""
    line = required(description, "the description")
    words = ascii_words(line)
    key_words = [w for w in words if w not in _STOP_WORDS][:4] or words[:4]
    name = slugify(" ".join(key_words))
    focus_line = one_line(focus or "")
    everything = f"{line} {focus_line}"
    chosen = normalize_tools(tools) or infer_tools(everything)
    capabilities = implied_capabilities(name, everything) or [name]
    summary = _sentence(_capitalized(line))
    summary += f" Focus: {_sentence(focus_line)}" if focus_line else ""
    meta = _meta(name, f"{summary} Use PROACTIVELY when a task matches this description.",
                 chosen, color_for(name), capabilities, stamp)
    fields = {
        "title": " ".join(word.capitalize() for word in name.split("-")),
        "description_quote": "\n".join(f"> {text}".rstrip() for text in
                                       clean(description).strip().splitlines()),
        "focus_step": (f"Keep to the focus: {focus_line}." if focus_line else
                       "Keep to what the description asks for; leave the rest alone."),
        "deliver_step": _deliver_step(chosen),
    }
    return AgentDraft("freeform", name, meta, fields)


def render_agent(draft: AgentDraft, template: str, where: str) -> str:
    """The whole file: `---`, the front matter, `---`, then the body from `template`."""
    body = render_body(template, {"name": draft.name, **draft.fields}, where)
    return f"---\n{dump_front_matter(draft.meta)}---\n\n{body.strip()}\n"


def render_body(template: str, fields: dict[str, str], where: str) -> str:
    """Fill the `$placeholders` of a body template; `where` names the template in errors."""
    try:
        return string.Template(template).substitute(fields)
    except KeyError as error:
        raise AgentFileError(f"{where}: unknown placeholder ${error.args[0]}") from None
    except ValueError as error:
        raise AgentFileError(f"{where}: {error}") from None


class _StrictDumper(yaml.SafeDumper):
    """A YAML emitter for generated front matter: no aliases, every string value quoted."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _quoted(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"')


def _mapping(dumper: yaml.SafeDumper, data: dict[str, Any]) -> yaml.MappingNode:
    items = [(yaml.ScalarNode("tag:yaml.org,2002:str", str(key)), dumper.represent_data(value))
             for key, value in data.items()]
    return yaml.MappingNode("tag:yaml.org,2002:map", items, flow_style=False)


_StrictDumper.add_representer(str, _quoted)
_StrictDumper.add_representer(dict, _mapping)


def dump_front_matter(meta: dict[str, Any]) -> str:
    """YAML of `meta` with plain keys and double-quoted strings, one key a line, so any
    text (newlines, quotes, colons, `---`) reads back exactly."""
    return yaml.dump(meta, Dumper=_StrictDumper, default_flow_style=False, sort_keys=False,
                     allow_unicode=True, width=2**31 - 1)


def code(text: str) -> str:
    """`text` as Markdown inline code, fenced with more backticks than it contains."""
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _meta(name: str, description: str, tools: str, color: str, capabilities: list[str],
          stamp: Stamp, command: tuple[str, ...] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name, "description": description, "tools": tools, "model": "inherit",
        "color": color, "capabilities": capabilities,
        "idempotent": command is not None or not edits_files(tools),
    }
    if command:
        meta["command"] = list(command)
    meta |= {"generated": stamp.generated, "generator": stamp.generator}
    return meta


def _deliver_step(tools: str) -> str:
    if edits_files(tools):
        return ("Make the smallest changes that do the job and verify them (run the tests "
                "when the project has them).")
    return f"Deliver recommendations, not edits: your tools ({tools}) do not change files."


def _capitalized(text: str) -> str:
    return text[:1].upper() + text[1:]


def _sentence(text: str) -> str:
    return text if text.endswith((".", "!", "?")) else f"{text}."
