"""Writing new agent files: builders, specialists and agents from a description.

The front matter and the body fields come from `core.agent_text`; the body templates are the
shipped `agents/templates/<kind>.md.tmpl` files (`$placeholders`, `$$` for a dollar sign).
A file is written atomically into its folder and never outside it, never through a symbolic
link, and never over an existing file unless asked to.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from orchestrator_tui import __version__
from orchestrator_tui.core.agent_text import (
    AgentDraft,
    AgentFileError,
    Stamp,
    builder_draft,
    freeform_draft,
    render_agent,
    slugify,
    specialist_draft,
)
from orchestrator_tui.engine.shipped import shipped_dir


@dataclass(frozen=True)
class Generated:
    """A generated agent file: its name, where it is, how long it took, and its text."""

    name: str
    path: Path
    seconds: float
    text: str


def workspace_agents(workspace: Path) -> Path:
    """Where generated agents go by default: the workspace's `.claude/agents/`."""
    return workspace / ".claude" / "agents"


def template_path(kind: str) -> Path:
    """The shipped body template of `kind` (builder, specialist or freeform)."""
    return shipped_dir("agents") / "templates" / f"{kind}.md.tmpl"


def generate_builder(folder: Path, language: str, *, framework: str | None = None,
                     test_command: str | None = None, formatter: str | None = None,
                     force: bool = False) -> Generated:
    """Write `builder-<language>.md` with the language's test command, formatter and linter."""
    started = time.perf_counter()
    draft = builder_draft(language, stamp=stamp_now(), framework=framework,
                          test_command=test_command, formatter=formatter)
    return _generate(folder, draft, started, force)


def generate_specialist(folder: Path, specialty: str, *, domain: str, focus: str,
                        tools: str | None = None, force: bool = False) -> Generated:
    """Write `<specialty>-specialist.md` for `domain` work focused on `focus`."""
    started = time.perf_counter()
    draft = specialist_draft(specialty, domain=domain, focus=focus, tools=tools,
                             stamp=stamp_now())
    return _generate(folder, draft, started, force)


def create_agent(folder: Path, description: str, *, tools: str | None = None,
                 focus: str | None = None, force: bool = False) -> Generated:
    """Write an agent described in free text, named after the description's key words."""
    started = time.perf_counter()
    draft = freeform_draft(description, tools=tools, focus=focus, stamp=stamp_now())
    return _generate(folder, draft, started, force)


def stamp_now() -> Stamp:
    """This moment in UTC (ISO 8601) and this version, for a generated file."""
    now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return Stamp(generated=now, generator=f"orchestrator_tui {__version__}")


def _generate(folder: Path, draft: AgentDraft, started: float, force: bool) -> Generated:
    path = template_path(draft.kind)
    try:
        template = path.read_text(encoding="utf-8")
    except OSError as error:
        raise AgentFileError(f"cannot read the template {path}: {error.strerror}") from None
    text = render_agent(draft, template, str(path))
    written = write_agent_file(folder, draft.name, text, force=force)
    return Generated(draft.name, written, time.perf_counter() - started, text)


def write_agent_file(folder: Path, name: str, text: str, *, force: bool = False) -> Path:
    """Write `folder/<name>.md` atomically (a temporary file, then a rename) and return it.

    Raises:
        AgentFileError: `name` is not a safe name, the file exists (without `force`), it is
            a symbolic link, it would land outside `folder`, or the folder cannot be written.
    """
    if slugify(name) != name:
        raise AgentFileError(f"{name!r} is not a safe agent name")
    try:
        folder.mkdir(mode=0o755, parents=True, exist_ok=True)
        root = folder.resolve(strict=True)
    except OSError as error:
        raise AgentFileError(f"cannot create the agent folder {folder}: "
                             f"{error.strerror or error}") from None
    target = root / f"{name}.md"
    if target.is_symlink():
        raise AgentFileError(f"{target} is a symbolic link; refusing to write through it")
    if target.resolve().parent != root:
        raise AgentFileError(f"{target} would be outside the agent folder {root}")
    if target.exists() and not force:
        raise AgentFileError(f"{target} exists; use --force to overwrite")
    if target.is_dir():
        raise AgentFileError(f"{target} is a folder; remove it or choose another name")
    try:
        _write_atomically(root, target, text, force)
    except FileExistsError:
        raise AgentFileError(f"{target} exists; use --force to overwrite") from None
    except OSError as error:
        raise AgentFileError(f"cannot write {target}: {error.strerror or error}") from None
    return target


def _write_atomically(root: Path, target: Path, text: str, replace: bool) -> None:
    """A temporary file in `root`, synced, then renamed over `target` (or hard-linked to it
    when nothing may be replaced, so a file created meanwhile is never overwritten)."""
    handle, name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=".tmp", dir=root)
    temporary = Path(name)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        temporary.chmod(0o644)
        if replace:
            temporary.replace(target)
            return
        try:
            target.hardlink_to(temporary)
        except FileExistsError:
            raise
        except OSError:  # a file system without hard links: the check before must do
            temporary.replace(target)
    finally:
        temporary.unlink(missing_ok=True)
