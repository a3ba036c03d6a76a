"""The agents a workspace can use: Markdown files with YAML front matter, read leniently."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from orchestrator_tui.core.errors import OrchestratorError
from orchestrator_tui.engine.shipped import shipped_dir

MAX_AGENT_FILE = 1024 * 1024


@dataclass(frozen=True, slots=True)
class AgentSpec:
    """An agent definition as read from its file."""

    name: str
    path: Path
    description: str = ""
    command: tuple[str, ...] | None = None
    runner: str = "auto"
    idempotent: bool = True
    capabilities: tuple[str, ...] = ()
    body: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Problem:
    """Something wrong with one agent file, with where it is."""

    path: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


@dataclass
class Registry:
    """Agents by name, the first folder in precedence order winning, and what went wrong."""

    agents: dict[str, AgentSpec] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def get(self, name: str) -> AgentSpec:
        """The agent called `name`, or an error listing the known ones."""
        try:
            return self.agents[name]
        except KeyError:
            known = ", ".join(sorted(self.agents)) or "none"
            raise OrchestratorError(f"unknown agent {name!r}; known agents: {known}") from None


def agent_dirs(workspace: Path, extra: list[Path] | None = None) -> list[Path]:
    """Agent folders in precedence order: workspace, user, shipped, then `--agents-dir`s."""
    return [
        workspace / ".claude" / "agents",
        Path.home() / ".claude" / "agents",
        shipped_dir("agents"),
        *(extra or []),
    ]


def load_registry(workspace: Path, extra: list[Path] | None = None) -> Registry:
    """Read every agent file of every folder; one bad file never stops the others."""
    registry = Registry()
    for folder in agent_dirs(workspace, extra):
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.md")):
            spec = read_agent(path, registry.problems)
            if spec is None:
                continue
            if spec.name in registry.agents:
                shadow = registry.agents[spec.name].path
                registry.problems.append(Problem(path, 1, f"agent {spec.name!r} is shadowed "
                                                          f"by {shadow}"))
                continue
            registry.agents[spec.name] = spec
    return registry


def read_agent(path: Path, problems: list[Problem]) -> AgentSpec | None:
    """Read one agent file, appending what is wrong to `problems`."""
    try:
        if path.stat().st_size > MAX_AGENT_FILE:
            problems.append(Problem(path, 1, f"file larger than {MAX_AGENT_FILE} bytes, skipped"))
            return None
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        problems.append(Problem(path, 1, f"cannot read: {error.strerror}"))
        return None
    meta, body = split_front_matter(text, path, problems)
    name = str(meta.get("name") or path.stem)
    command = meta.get("command")
    if command is not None and not (isinstance(command, list) and command
                                    and all(isinstance(p, str) for p in command)):
        problems.append(Problem(path, 1, "command must be a list of strings (argv)"))
        command = None
    capabilities = meta.get("capabilities") or []
    if not isinstance(capabilities, list):
        capabilities = [str(capabilities)]
    return AgentSpec(
        name=name, path=path, description=str(meta.get("description") or ""),
        command=tuple(command) if command else None, runner=str(meta.get("runner") or "auto"),
        idempotent=bool(meta.get("idempotent", True)),
        capabilities=tuple(str(c) for c in capabilities), body=body.strip(), extra=meta,
    )


def split_front_matter(
    text: str, path: Path, problems: list[Problem],
) -> tuple[dict[str, Any], str]:
    """Split `---` front matter from the body; a file without it is all body."""
    if not text.startswith("---"):
        problems.append(Problem(path, 1, "no front matter; the file name is the agent's name"))
        return {}, text
    end = text.find("\n---", 3)
    if end < 0:
        problems.append(Problem(path, 1, "front matter is not closed by '---'"))
        return {}, text
    header, body = text[3:end], text[end + 4:]
    try:
        meta = yaml.safe_load(header)
    except yaml.YAMLError as error:
        line = getattr(getattr(error, "problem_mark", None), "line", 0) + 2
        problems.append(Problem(path, line, f"front matter is not valid YAML: {error}"))
        return {}, body
    if not isinstance(meta, dict):
        problems.append(Problem(path, 2, "front matter is not a mapping"))
        return {}, body
    return meta, body
