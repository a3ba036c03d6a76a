"""The agents a workspace can use: agent files from folders in precedence order, read leniently.

Folders, first wins: the workspace's `.claude/agents/` ("workspace"), `~/.claude/agents/`
("user"), the shipped `agents/` ("shipped"), then each `--agents-dir` ("extra"). Every
`*.md` file directly in a folder is an agent, even without front matter (its file name is
then its name), except documentation files (README, LICENSE, CHANGELOG, ...) without front
matter, which are skipped silently. An `--agents-dir` is also searched in its subfolders
(hidden ones and `node_modules` excepted), because published collections nest agents like
`plugins/NAME/agents/X.md`; there only files with front matter are agents, as the others
are the collection's own documentation. A name used twice keeps its first file and reports
the other as shadowed. Reading never raises for a bad file: every problem is collected
with its file and line.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from orchestrator_tui.core.capabilities import infer_capabilities, normalise_capabilities
from orchestrator_tui.core.errors import OrchestratorError
from orchestrator_tui.engine.agent_files import AgentFile, Problem, read_agent_file
from orchestrator_tui.engine.shipped import shipped_dir

__all__ = ["AgentFolder", "AgentSpec", "Problem", "Registry", "Shadowed", "agent_dirs",
           "agent_folders", "is_safe_name", "load_registry", "near_names", "read_agent"]

AGENT_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*")
MAX_NAME = 64
KNOWN_MODELS = ("inherit", "sonnet", "opus", "haiku")
MODEL_ID_PREFIXES = ("claude-", "gpt-", "o1", "o3", "o4", "codex-", "gemini-")
RUNNERS = ("auto", "claude", "codex", "gemini", "command", "python", "ray")
ISOLATIONS = ("worktree",)
SOURCES = ("workspace", "user", "shipped", "extra")
DOC_STEMS = frozenset({"readme", "license", "licence", "copying", "notice", "changelog",
                       "changes", "history", "contributing", "code_of_conduct", "security",
                       "authors", "index"})
SKIPPED_FOLDERS = frozenset({"node_modules", "__pycache__"})
KNOWN_KEYS = ("name", "description", "tools", "model", "color", "capabilities", "priority",
              "runner", "command", "python", "resources", "idempotent", "fallback",
              "isolation", "disallowedTools", "permissionMode", "skills", "hooks", "mcpServers")


@dataclass(frozen=True, slots=True)
class AgentSpec:
    """An agent definition as read from its file, every field checked and normalised."""

    name: str
    path: Path
    description: str = ""
    command: tuple[str, ...] | None = None
    runner: str = "auto"
    idempotent: bool = True
    capabilities: tuple[str, ...] = ()
    body: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    """The front matter as read, every key included."""
    tools: tuple[str, ...] = ()
    model: str | None = None
    color: str | None = None
    priority: int = 0
    resources: dict[str, Any] = field(default_factory=dict)
    fallback: tuple[str, ...] = ()
    isolation: str | None = None
    source: str = "extra"
    capabilities_inferred: bool = False
    archived: bool = False
    problems: tuple[Problem, ...] = ()
    key_lines: dict[str, int] = field(default_factory=dict)
    """The file line of each front matter key."""

    @property
    def summary(self) -> str:
        """The first line of the description, without `<example>` blocks, at most 160 chars."""
        text = self.description.split("<example>", 1)[0].strip()
        line = text.splitlines()[0].strip() if text else ""
        return line if len(line) <= 160 else line[:159].rstrip() + "…"


@dataclass(frozen=True, slots=True)
class Shadowed:
    """A file not used because an agent of the same name was found first."""

    name: str
    path: Path
    by: Path


@dataclass(frozen=True, slots=True)
class AgentFolder:
    """A folder of agent files, where it comes from, and whether subfolders count."""

    path: Path
    source: str
    recursive: bool = False


@dataclass
class Registry:
    """Agents by name, the first folder in precedence order winning, and what went wrong."""

    agents: dict[str, AgentSpec] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    shadowed: list[Shadowed] = field(default_factory=list)

    def get(self, name: str) -> AgentSpec:
        """The agent called `name` (case-folded), or an error naming the closest ones."""
        found = self.agents.get(name.strip().casefold())
        if found is not None:
            return found
        close = near_names(name, self.agents)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise OrchestratorError(f"unknown agent {name!r}{hint} ({len(self.agents)} agents "
                                "known; `orchestrator agent list` lists them)")


def near_names(name: str, known: Collection[str], n: int = 5) -> list[str]:
    """The known names closest to `name`, best first."""
    return difflib.get_close_matches(name.strip().casefold(), list(known), n=n, cutoff=0.6)


def is_safe_name(name: str) -> bool:
    """Whether `name` is a usable agent name: a lower-case slug, never a path."""
    return len(name) <= MAX_NAME and AGENT_NAME.fullmatch(name) is not None


def name_slug(text: str) -> str:
    """`text` made a safe name: case-folded, other characters as '-' ('' if nothing is left)."""
    slug = re.sub(r"[^a-z0-9._-]+", "-", text.casefold()).strip("-._")[:MAX_NAME]
    return slug if is_safe_name(slug) else ""


def agent_dirs(workspace: Path, extra: Collection[Path] | None = None) -> list[Path]:
    """Agent folders in precedence order: workspace, user, shipped, then `--agents-dir`s."""
    return [folder.path for folder in agent_folders(workspace, extra)]


def agent_folders(workspace: Path, extra: Collection[Path] | None = None) -> list[AgentFolder]:
    """The agent folders with their source labels; `--agents-dir`s are searched recursively."""
    return [
        AgentFolder(workspace / ".claude" / "agents", "workspace"),
        AgentFolder(Path.home() / ".claude" / "agents", "user"),
        AgentFolder(shipped_dir("agents"), "shipped"),
        *(AgentFolder(Path(path).expanduser(), "extra", recursive=True)
          for path in extra or ()),
    ]


def load_registry(workspace: Path, extra: Collection[Path] | None = None,
                  archived: Collection[str] = ()) -> Registry:
    """Read every agent file of every folder; one bad file never stops the others.

    `archived` names the agents to mark archived (kept in the database, not in the files).
    """
    registry = Registry()
    seen_folders: set[str] = set()
    for folder in agent_folders(workspace, extra):
        real = os.path.realpath(folder.path)
        if real in seen_folders:
            continue
        seen_folders.add(real)
        for path, nested in _agent_paths(folder, registry.problems):
            _add(registry, path, folder.source, nested)
    _check_fallbacks(registry)
    wanted = {name.casefold() for name in archived}
    for name, spec in registry.agents.items():
        if name in wanted:
            registry.agents[name] = replace(spec, archived=True)
    return registry


def read_agent(path: Path, problems: list[Problem], source: str = "extra") -> AgentSpec | None:
    """Read one agent file, appending what is wrong to `problems`; None if it is unusable."""
    file = read_agent_file(path, problems)
    return None if file is None else build_spec(file, source, problems)


def _add(registry: Registry, path: Path, source: str, nested: bool) -> None:
    """Read one file into the registry, unless it is documentation or shadowed."""
    problems: list[Problem] = []
    file = read_agent_file(path, problems)
    if file is not None and not file.has_front_matter:
        if nested or path.stem.casefold() in DOC_STEMS:
            return  # a collection's README or notes, not an agent
        if not file.body:
            registry.problems.append(Problem(path, 0, "empty file; skipped", "warning"))
            return
    spec = None if file is None else build_spec(file, source, problems)
    if spec is not None and spec.name in registry.agents:
        winner = registry.agents[spec.name]
        line = file.lines.get("name", 1) if file is not None else 1
        problems.append(Problem(path, line, f"agent {spec.name!r} is shadowed by "
                                            f"{winner.path} ({winner.source}), which comes "
                                            "first; this file is not used"))
        registry.shadowed.append(Shadowed(spec.name, path, winner.path))
        spec = None
    problems.sort(key=lambda problem: problem.line)
    registry.problems.extend(problems)
    if spec is not None:
        registry.agents[spec.name] = replace(spec, problems=tuple(problems))


def _agent_paths(folder: AgentFolder, problems: list[Problem]) -> Iterator[tuple[Path, bool]]:
    """The `*.md` files of a folder in name order, each with whether it is in a subfolder."""
    if not folder.path.is_dir():
        if folder.source == "extra":
            what = "does not exist" if not folder.path.exists() else "is not a folder"
            problems.append(Problem(folder.path, 0, f"agents folder {what}", "error"))
        return
    if not folder.recursive:
        yield from ((path, False) for path in _md_files(folder.path, problems))
        return
    visited: set[str] = set()
    for top, dirs, _files in os.walk(folder.path, followlinks=True,
                                     onerror=lambda error: _walk_error(error, problems)):
        real = os.path.realpath(top)
        if real in visited:  # a symlink loop, or one folder reached twice
            dirs.clear()
            continue
        visited.add(real)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIPPED_FOLDERS)
        nested = Path(top) != folder.path
        yield from ((path, nested) for path in _md_files(Path(top), problems))


def _md_files(folder: Path, problems: list[Problem]) -> list[Path]:
    try:
        with os.scandir(folder) as entries:
            return sorted(Path(entry.path) for entry in entries
                          if entry.name.lower().endswith(".md") and not _is_dir(entry))
    except OSError as error:
        problems.append(Problem(folder, 0, f"cannot list the folder: {error.strerror}", "error"))
        return []


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _walk_error(error: OSError, problems: list[Problem]) -> None:
    problems.append(Problem(Path(error.filename or "?"), 0,
                            f"cannot list the folder: {error.strerror}", "error"))


def build_spec(file: AgentFile, source: str, problems: list[Problem]) -> AgentSpec | None:
    """Check and normalise the fields of one file; None if no usable name can be made."""
    fields = _Fields(file, problems)
    name = _name(file, problems)
    if name is None:
        return None
    description = fields.text("description") or ""
    explicit = fields.names("capabilities", slug=False)
    capabilities = normalise_capabilities(explicit)
    fallback = tuple(n for n in fields.names("fallback") if n != name)
    for key in file.meta:
        if key not in KNOWN_KEYS:
            close = difflib.get_close_matches(key, KNOWN_KEYS, n=1, cutoff=0.8)
            if close:
                fields.report(key, f"unknown key {key!r} (did you mean {close[0]!r}?); "
                                   "kept as is", "note")
    return AgentSpec(
        name=name, path=file.path, description=description, command=fields.command(),
        runner=fields.choice("runner", RUNNERS, "auto") or "auto",
        idempotent=fields.boolean("idempotent", True),
        capabilities=capabilities or infer_capabilities(name, description),
        capabilities_inferred=not capabilities, body=file.body, extra=dict(file.meta),
        tools=tuple(dict.fromkeys(fields.names("tools", slug=False))),
        model=fields.model(), color=fields.text("color"), priority=fields.integer("priority"),
        resources=fields.mapping("resources"), fallback=fallback,
        isolation=fields.choice("isolation", ISOLATIONS, None), source=source,
        key_lines=dict(file.lines))


def _name(file: AgentFile, problems: list[Problem]) -> str | None:
    """The agent's name: `name` when it is safe, else the file name made a slug."""
    path, line = file.path, file.lines.get("name", 1)
    stem = name_slug(path.stem)
    raw = file.meta.get("name")
    written = str(raw).strip() if raw is not None else ""
    if not file.has_front_matter:
        problems.append(Problem(path, 1, "no front matter; the whole file is the prompt and "
                                         f"the agent is named {stem or '?'!r} after its file",
                                "note"))
    elif not written:
        problems.append(Problem(path, line, f"no `name`; the agent is named {stem or '?'!r} "
                                            "after its file", "note"))
    elif is_safe_name(written.casefold()):
        name = written.casefold()
        if name != written:
            problems.append(Problem(path, line, f"name {written!r} is used as {name!r}", "note"))
        if name != path.stem.casefold():
            problems.append(Problem(path, line, f"name {name!r} differs from the file name "
                                                f"{path.name!r}; the name is used", "note"))
        return name
    else:
        problems.append(Problem(path, line, f"name {written[:80]!r} is not a safe name (a "
                                            "letter or digit, then letters, digits, '.', '_' "
                                            f"or '-'; at most {MAX_NAME}); using "
                                            f"{stem or '?'!r} from the file name"))
    if not stem:
        problems.append(Problem(path, line, "no usable agent name in the file or its file "
                                            "name; skipped", "error"))
        return None
    return stem


class _Fields:
    """Reads typed fields from front matter, reporting each bad one at its line."""

    def __init__(self, file: AgentFile, problems: list[Problem]) -> None:
        self.file, self.problems = file, problems

    def report(self, key: str, message: str, severity: str = "warning") -> None:
        self.problems.append(Problem(self.file.path, self.file.lines.get(key, 1), message,
                                     severity))

    def text(self, key: str) -> str | None:
        value = self.file.meta.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            self.report(key, f"`{key}` should be text; read as {str(value)[:60]!r}")
        return str(value).strip() or None

    def names(self, key: str, *, slug: bool = True) -> list[str]:
        """A list written as `[a, b]`, `- a` lines or a comma string; [] when absent."""
        value = self.file.meta.get(key)
        if value is None:
            return []
        if isinstance(value, str):
            items = value.split(",")
        elif isinstance(value, list):
            items = [str(item) for item in value if item is not None]
        else:
            self.report(key, f"`{key}` should be a list or a comma-separated text; ignored",
                        "error")
            return []
        items = [item.strip() for item in items if item.strip()]
        if not slug:
            return items
        good = [item.casefold() for item in items if is_safe_name(item.casefold())]
        if len(good) != len(items):
            bad = [item for item in items if not is_safe_name(item.casefold())]
            self.report(key, f"`{key}` has names that are not safe names, ignored: "
                             f"{', '.join(map(repr, bad))}")
        return good

    def choice(self, key: str, allowed: tuple[str, ...], default: str | None) -> str | None:
        value = self.file.meta.get(key)
        if value is None or (isinstance(value, str) and value.strip().casefold() in ("", "none")):
            return default
        chosen = str(value).strip().casefold()
        if chosen in allowed:
            return chosen
        self.report(key, f"unknown {key} {str(value)!r} (allowed: {', '.join(allowed)}); "
                         f"{repr(default) if default else 'none'} is used")
        return default

    def boolean(self, key: str, default: bool) -> bool:
        value = self.file.meta.get(key)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        words = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}
        if isinstance(value, str) and value.strip().casefold() in words:
            return words[value.strip().casefold()]
        self.report(key, f"`{key}` should be true or false, not {str(value)[:40]!r}; "
                         f"{str(default).lower()} is used")
        return default

    def integer(self, key: str) -> int:
        value = self.file.meta.get(key)
        if value is None:
            return 0
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and re.fullmatch(r"[+-]?\d{1,9}", value.strip()):
            return int(value)
        self.report(key, f"`{key}` should be a whole number, not {str(value)[:40]!r}; 0 is used")
        return 0

    def mapping(self, key: str) -> dict[str, Any]:
        value = self.file.meta.get(key)
        if value is None:
            return {}
        if isinstance(value, dict):
            return {str(k): v for k, v in value.items()}
        self.report(key, f"`{key}` should be a mapping (like {{cpu: 2}}); ignored", "error")
        return {}

    def command(self) -> tuple[str, ...] | None:
        value = self.file.meta.get("command")
        if value is None:
            return None
        if isinstance(value, list) and value and all(_is_scalar(item) for item in value):
            return tuple(str(item) for item in value)
        self.report("command", 'command must be a non-empty list of strings (an argv, like '
                               '["{python}", "-m", "tool", "{workspace}"]); ignored', "error")
        return None

    def model(self) -> str | None:
        model = self.text("model")
        if model is not None and model.casefold() not in KNOWN_MODELS \
                and not model.casefold().startswith(MODEL_ID_PREFIXES):
            self.report("model", f"unknown model {model!r}, kept as written (known: "
                                 f"{', '.join(KNOWN_MODELS)}, or a full model id)", "note")
        return model


def _is_scalar(item: object) -> bool:
    return isinstance(item, (str, int, float)) and not isinstance(item, bool)


def _check_fallbacks(registry: Registry) -> None:
    """Report fallback agents that no folder defines."""
    for spec in list(registry.agents.values()):
        missing = [name for name in spec.fallback if name not in registry.agents]
        if missing:
            problem = Problem(spec.path, spec.key_lines.get("fallback", 1),
                              f"fallback agents not found: {', '.join(missing)}")
            registry.problems.append(problem)
            registry.agents[spec.name] = replace(spec, problems=(*spec.problems, problem))
