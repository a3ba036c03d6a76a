"""Shared helpers of the agent tools: workspace walking, findings, reports and the CLI shell."""

from __future__ import annotations

import argparse
import ast
import bisect
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

SEVERITIES = ("high", "medium", "low", "info")
MAX_FILE_BYTES = 1_000_000
SKIP_DIRS = frozenset({
    ".git", ".hg", ".svn", ".orchestrator", "node_modules", "__pycache__", ".venv", "venv",
    ".tox", ".nox", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".cache", "build", "dist",
    "target", ".next", ".nuxt", ".turbo", ".gradle", ".idea", ".vscode", "site-packages",
    "bower_components", "coverage", "htmlcov", ".eggs", "vendor", ".terraform",
})
BINARY_SUFFIXES = frozenset({
    ".png", ".jpg", ".jpeg", ".gif", ".bmp", ".ico", ".webp", ".pdf", ".zip", ".gz", ".tgz",
    ".bz2", ".xz", ".7z", ".tar", ".whl", ".egg", ".so", ".dylib", ".dll", ".exe", ".bin",
    ".pyc", ".pyo", ".o", ".a", ".class", ".jar", ".woff", ".woff2", ".ttf", ".otf", ".eot",
    ".mp3", ".mp4", ".mov", ".avi", ".wav", ".sqlite", ".db", ".npy", ".npz", ".pkl",
    ".parquet", ".lock",
})
TEXT_OUTPUT_LIMIT = 60
"""Findings printed per severity in the text report; `--json` always has all of them."""


class WorkspaceError(Exception):
    """The workspace cannot be read; the tool exits with status 2."""


@dataclass(frozen=True, slots=True)
class SourceFile:
    """A file of the workspace: its path, its path relative to the root (POSIX) and size."""

    path: Path
    rel: str
    size: int


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing worth a developer's attention, at a file and line."""

    path: str
    line: int
    severity: str
    rule: str
    message: str


@dataclass
class Report:
    """What a tool found, plus informational sections and an optional summary tail."""

    agent: str
    root: Path
    files_scanned: int = 0
    findings: list[Finding] = field(default_factory=list)
    tool: str = "builtin"
    sections: list[tuple[str, list[str]]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """Short facts appended to the summary line, e.g. `3 cycles`."""

    def add(self, path: str, line: int, severity: str, rule: str, message: str) -> None:
        """Record a finding."""
        self.findings.append(Finding(path, max(int(line or 1), 1), severity, rule, message))

    def section(self, title: str, lines: Iterable[str]) -> None:
        """Add an informational section to the text report."""
        self.sections.append((title, list(lines)))

    def summary(self) -> str:
        """The one-line summary, without the `SUMMARY: ` prefix."""
        counts = Counter(f.severity for f in self.findings)
        text = plural(len(self.findings), "finding")
        parts = [f"{counts[s]} {s}" for s in SEVERITIES if counts[s]]
        if parts:
            text += f" ({', '.join(parts)})"
        text += f" in {plural(self.files_scanned, 'file')}"
        if self.notes:
            text += "; " + "; ".join(self.notes)
        return text


def plural(count: int, word: str) -> str:
    """`1 file`, `2 files`."""
    return f"{count} {word}{'' if count == 1 else 's'}"


def is_virtualenv(path: Path) -> bool:
    """Whether a folder is a Python virtual environment."""
    return (path / "pyvenv.cfg").is_file()


def walk(root: Path, suffixes: Iterable[str] | None = None,
         names: Iterable[str] = ()) -> list[SourceFile]:
    """Files of the workspace in sorted order, skipping VCS, dependency and build folders.

    Args:
        root: the workspace.
        suffixes: keep only files ending with one of these (e.g. ``{".py"}``); None keeps all.
        names: exact file names kept regardless of `suffixes` (e.g. ``{"Dockerfile"}``).
    """
    wanted = tuple(suffixes) if suffixes is not None else None
    exact = frozenset(names)
    found: list[SourceFile] = []
    for dirpath, dirnames, filenames in os.walk(root):
        current = Path(dirpath)
        dirnames[:] = sorted(
            d for d in dirnames
            if d not in SKIP_DIRS and not d.endswith(".egg-info")
            and not is_virtualenv(current / d)
        )
        for name in sorted(filenames):
            dot = name.rfind(".")
            if dot > 0 and name[dot:].lower() in BINARY_SUFFIXES:
                continue
            if wanted is not None and name not in exact and not name.endswith(wanted):
                continue
            path = current / name
            try:
                stat = path.lstat()
            except OSError:
                continue
            if not path.is_file() or path.is_symlink() or stat.st_size > MAX_FILE_BYTES:
                continue
            found.append(SourceFile(path, path.relative_to(root).as_posix(), stat.st_size))
    return found


def read_text(path: Path) -> str | None:
    """The text of a file, or None when it is binary or unreadable."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if b"\0" in data[:8192]:
        return None
    return data.decode("utf-8", errors="replace")


def parse_python(text: str, name: str = "<file>") -> ast.Module | None:
    """The syntax tree of a Python source, or None when it does not parse."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ast.parse(text, filename=name)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def is_test_path(rel: str) -> bool:
    """Whether a relative path looks like a test module or lives in a test folder."""
    parts = rel.split("/")
    name = parts[-1]
    return (name.startswith("test_") or name.endswith(("_test.py", ".test.ts", ".test.js",
                                                         ".spec.ts", ".spec.js"))
            or name == "conftest.py" or any(p in {"tests", "test", "__tests__"} for p in parts))


class LineIndex:
    """Maps character offsets of a text to 1-based line numbers."""

    def __init__(self, text: str) -> None:
        self.starts = [0]
        position = text.find("\n")
        while position >= 0:
            self.starts.append(position + 1)
            position = text.find("\n", position + 1)

    def line(self, offset: int) -> int:
        """The line holding `offset`."""
        return bisect.bisect_right(self.starts, offset)


def dotted_name(node: ast.AST) -> str:
    """`a.b.c` for a Name/Attribute chain, else an empty string."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return ""


def iter_statements(body: list[ast.stmt], *, nested: bool = True) -> Iterable[ast.stmt]:
    """Every statement of a body, depth first, without walking into expressions.

    Args:
        body: the statements to start from.
        nested: also enter the bodies of nested functions and classes.
    """
    stack = list(reversed(body))
    while stack:
        node = stack.pop()
        yield node
        if not nested and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef
                                     | ast.ClassDef):
            continue
        for name in ("body", "orelse", "finalbody", "handlers", "cases"):
            children = getattr(node, name, None)
            if not children:
                continue
            for child in reversed(children):
                if isinstance(child, ast.stmt):
                    stack.append(child)
                else:
                    stack.extend(reversed(getattr(child, "body", [])))


def import_aliases(tree: ast.Module) -> dict[str, str]:
    """Local names bound by imports, mapped to what they import (`np` → `numpy`)."""
    aliases: dict[str, str] = {}
    for node in iter_statements(tree.body):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    aliases[alias.asname] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return aliases


def resolve_call(func: ast.AST, aliases: dict[str, str]) -> str:
    """The dotted name a call target refers to, following import aliases."""
    name = dotted_name(func)
    if not name:
        return ""
    head, _, tail = name.partition(".")
    if head in aliases:
        return aliases[head] + ("." + tail if tail else "")
    return name


def find_program(name: str) -> str | None:
    """An external program on PATH or beside the running interpreter (a virtualenv's bin)."""
    found = shutil.which(name)
    if found:
        return found
    sibling = Path(sys.executable).parent / name
    return str(sibling) if sibling.is_file() and os.access(sibling, os.X_OK) else None


@dataclass(frozen=True, slots=True)
class ProgramResult:
    """What an external program did: exit code, output and whether it ran out of time."""

    code: int | None
    stdout: str
    stderr: str
    timed_out: bool
    seconds: float


def run_program(argv: list[str], cwd: Path, timeout: float,
                env: dict[str, str] | None = None) -> ProgramResult:
    """Run an argv list in its own process group; on timeout the whole group is killed."""
    started = time.monotonic()
    process = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=env, start_new_session=True)
    try:
        out, err = process.communicate(timeout=timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        timed_out = True
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except OSError:
            process.kill()
        out, err = process.communicate()
    return ProgramResult(None if timed_out else process.returncode,
                         out.decode("utf-8", errors="replace"),
                         err.decode("utf-8", errors="replace"), timed_out,
                         time.monotonic() - started)


def render_text(report: Report, limit: int = TEXT_OUTPUT_LIMIT) -> str:
    """The human-readable report: findings grouped by severity, rule counts, sections."""
    tool = "built-in checks" if report.tool == "builtin" else report.tool
    lines = [f"{report.agent} report for {report.root}",
             f"Scanned {plural(report.files_scanned, 'file')} with {tool}.", ""]
    ordered = sorted(report.findings, key=lambda f: (SEVERITIES.index(f.severity)
                                                     if f.severity in SEVERITIES else 9,
                                                     f.path, f.line, f.rule))
    if not ordered:
        lines += ["No findings.", ""]
    for severity in SEVERITIES:
        group = [f for f in ordered if f.severity == severity]
        if not group:
            continue
        lines.append(f"{severity.upper()} ({len(group)})")
        shown = group[:limit]
        width = min(max(len(f"{f.path}:{f.line}") for f in shown), 60)
        rule_width = min(max(len(f.rule) for f in shown), 24)
        for f in shown:
            location = f"{f.path}:{f.line}"
            lines.append(f"  {location:<{width}}  {f.rule:<{rule_width}}  {f.message}")
        if len(group) > limit:
            lines.append(f"  ... and {len(group) - limit} more (see --json)")
        lines.append("")
    if ordered:
        by_rule = Counter(f.rule for f in ordered)
        lines.append("By rule: " + ", ".join(f"{rule} {n}" for rule, n in by_rule.most_common()))
        lines.append("")
    for title, body in report.sections:
        lines.append(f"== {title} ==")
        lines.extend(f"  {line}" for line in body or ["(none)"])
        lines.append("")
    lines.append(f"SUMMARY: {report.summary()}")
    return "\n".join(lines)


def to_json(report: Report) -> str:
    """The report as one JSON object."""
    return json.dumps({
        "agent": report.agent, "summary": report.summary(),
        "files_scanned": report.files_scanned,
        "findings": [asdict(f) for f in report.findings], "tool": report.tool,
    }, indent=2)


def check_workspace(raw: str) -> Path:
    """The workspace as an absolute path, or WorkspaceError with a clear reason."""
    root = Path(raw).expanduser()
    if not root.exists():
        raise WorkspaceError(f"workspace {raw!r} does not exist")
    if not root.is_dir():
        raise WorkspaceError(f"workspace {raw!r} is not a directory")
    try:
        next(root.iterdir(), None)
    except OSError as error:
        raise WorkspaceError(f"workspace {raw!r} cannot be read: {error.strerror}") from None
    return root.resolve()


def main(agent: str, analyse: Callable[[Path, argparse.Namespace], Report], description: str,
         configure: Callable[[argparse.ArgumentParser], None] | None = None,
         argv: list[str] | None = None) -> int:
    """Parse the command line, run `analyse` and print the report; returns the exit code."""
    module = agent.replace("-", "_")
    parser = argparse.ArgumentParser(prog=f"python -m orchestrator_tui.agent_tools.{module}",
                                     description=description)
    parser.add_argument("workspace", help="folder to analyse")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--limit", type=int, default=TEXT_OUTPUT_LIMIT,
                        help="findings shown per severity in the text report")
    if configure:
        configure(parser)
    args = parser.parse_args(argv)
    try:
        root = check_workspace(args.workspace)
        report = analyse(root, args)
    except WorkspaceError as error:
        print(f"{agent}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{agent}: interrupted", file=sys.stderr)
        return 130
    output = to_json(report) if args.json else render_text(report, max(args.limit, 1))
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="replace")  # a non-UTF-8 terminal still gets the report
    try:
        print(output)
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0
