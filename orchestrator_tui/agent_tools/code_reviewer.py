"""Code reviewer: lint findings from ruff (or pyflakes, or built-in checks) plus design checks.

The linter is ruff when it is installed, else pyflakes, else built-in syntax-tree checks
(syntax errors, unused imports, bare excepts, mutable defaults). Design checks (long
functions, too many branches, print debugging, leftover debuggers, TODO/FIXME markers) always
run, unless the linter already reported the same rule.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import json
import re
import sys
from pathlib import Path

from orchestrator_tui.agent_tools.common import (
    Report,
    find_program,
    is_test_path,
    iter_statements,
    read_text,
    resolve_call,
    run_program,
    walk,
)
from orchestrator_tui.agent_tools.common import main as run_main

AGENT = "code-reviewer"
MAX_FUNCTION_LINES = 80
MAX_BRANCHES = 12
MARKER = re.compile(r"(?:#|//|/\*|<!--)\s*(TODO|FIXME|XXX|HACK)\b:?\s*(.{0,80})")
MARKER_SUFFIXES = (".py", ".js", ".jsx", ".ts", ".tsx", ".go", ".rs", ".java", ".sh", ".rb")
IDENTIFIER = re.compile(r"[A-Za-z_]\w*")
HIGH_CODES = re.compile(r"^(invalid-syntax|E9\d\d|F63\d|F7\d\d|F82\d|F811)$")
MEDIUM_CODES = re.compile(r"^(F|B|S|ASYNC|PLE|PLW)")
CLI_MODULES = {"__main__.py", "cli.py", "main.py", "manage.py", "setup.py", "conftest.py"}
CLI_IMPORTS = {"argparse", "click", "typer", "fire", "docopt"}
ALREADY_COVERED = {"long-function": {"PLR0915", "C901"}, "too-many-branches": {"PLR0912", "C901"},
                   "print-debugging": {"T201"}, "debugger": {"T100"}, "todo": {"FIX002", "TD002"}}


def ruff_findings(ruff: str, root: Path, report: Report) -> bool:
    """Run ruff over the workspace; False when its output cannot be used."""
    result = run_program([ruff, "check", "--output-format", "json", "--exit-zero", "--no-cache",
                          "--extend-exclude", ".orchestrator", "."], root, 300)
    try:
        items = json.loads(result.stdout or "null")
    except json.JSONDecodeError:
        return False
    if not isinstance(items, list):
        return False
    for item in items:
        code = str(item.get("code") or "invalid-syntax")
        severity = ("high" if HIGH_CODES.match(code) else
                    "medium" if MEDIUM_CODES.match(code) else "low")
        filename = Path(str(item.get("filename", "")))
        rel = filename.relative_to(root).as_posix() if filename.is_relative_to(root) \
            else filename.as_posix()
        report.add(rel, (item.get("location") or {}).get("row", 1), severity, code,
                   str(item.get("message", "")))
    return True


PYFLAKES_LINE = re.compile(r"^(?P<path>.+?):(?P<line>\d+):(?:\d+:)?\s*(?P<message>.+)$")


def pyflakes_findings(argv: list[str], root: Path, report: Report) -> bool:
    """Run pyflakes; False when it did not run."""
    result = run_program([*argv, "."], root, 300)
    if result.code is None or result.code > 1:
        return False
    for line in (result.stdout + result.stderr).splitlines():
        match = PYFLAKES_LINE.match(line)
        if not match:
            continue
        message = match["message"]
        severity = "high" if ("undefined name" in message or "syntax" in message) else "medium"
        rel = match["path"].removeprefix("./")
        report.add(rel, int(match["line"]), severity, "pyflakes", message)
    return True


def bound_names(node: ast.Import | ast.ImportFrom) -> list[tuple[str, str]]:
    """(local name, what it imports) pairs, skipping explicit re-exports (`x as x`)."""
    pairs = []
    for alias in node.names:
        if alias.name == "*" or (alias.asname and alias.asname == alias.name.rsplit(".")[-1]):
            continue
        local = alias.asname or alias.name.split(".")[0]
        pairs.append((local, alias.name))
    return pairs


def lint_module(rel: str, tree: ast.Module, report: Report) -> None:
    """Built-in lint: unused imports, bare excepts and mutable default arguments."""
    used: set[str] = set()
    words: set[str] = set()
    imports: list[tuple[str, str, int]] = []
    probes = availability_probes(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            used.add(node.id)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and len(node.value) < 200:
            words.update(IDENTIFIER.findall(node.value))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            if (isinstance(node, ast.ImportFrom) and node.module == "__future__") \
                    or id(node) in probes:
                continue
            imports.extend((local, full, node.lineno) for local, full in bound_names(node))
        elif isinstance(node, ast.ExceptHandler) and node.type is None:
            report.add(rel, node.lineno, "medium", "bare-except",
                       "bare `except:` also catches KeyboardInterrupt and SystemExit")
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for default in [*node.args.defaults, *node.args.kw_defaults]:
                if default is not None and is_mutable(default):
                    report.add(rel, default.lineno, "medium", "mutable-default",
                               f"mutable default argument in {node.name}(); it is shared "
                               "between calls, use None")
    if rel.endswith("__init__.py"):
        return
    for local, full, line in imports:
        if local not in used and local not in words:
            report.add(rel, line, "medium", "unused-import", f"`{full}` imported but unused")


def availability_probes(tree: ast.Module) -> set[int]:
    """Imports inside `try:` blocks that catch ImportError: they test what is installed."""
    probes: set[int] = set()
    for node in iter_statements(tree.body):
        if isinstance(node, ast.Try) and any(
                "ImportError" in ast.unparse(h.type) or "ModuleNotFoundError" in ast.unparse(h.type)
                for h in node.handlers if h.type is not None):
            probes.update(id(n) for n in node.body if isinstance(n, ast.Import | ast.ImportFrom))
    return probes


def is_mutable(node: ast.AST | None) -> bool:
    """Whether a default value is a fresh mutable container."""
    if isinstance(node, ast.List | ast.Dict | ast.Set | ast.ListComp | ast.DictComp | ast.SetComp):
        return True
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
        and node.func.id in {"list", "dict", "set", "bytearray"}


def count_branches(function: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Branch points in a function body, not counting nested functions."""
    count = 0
    for node in iter_statements(function.body, nested=False):
        if isinstance(node, ast.If | ast.For | ast.AsyncFor | ast.While):
            count += 1
            if node.orelse and not (isinstance(node, ast.If)
                                    and isinstance(node.orelse[0], ast.If)):
                count += 1
        elif isinstance(node, ast.Try | ast.TryStar):
            count += len(node.handlers)
        elif isinstance(node, ast.Match):
            count += len(node.cases)
    return count


def looks_like_cli(rel: str, tree: ast.Module) -> bool:
    """Modules where printing is the point: entry points, scripts, tests."""
    if rel.rsplit("/", 1)[-1] in CLI_MODULES or is_test_path(rel) or "scripts/" in rel:
        return True
    for node in tree.body:
        if isinstance(node, ast.If) and "__name__" in ast.unparse(node.test):
            return True
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
                [a.name for a in node.names]
            if any(n.split(".")[0] in CLI_IMPORTS for n in names):
                return True
    return False


def design_module(rel: str, tree: ast.Module, report: Report, skip: set[str]) -> None:
    """Design checks: long and branchy functions, prints and debugger calls."""
    cli = looks_like_cli(rel, tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > MAX_FUNCTION_LINES and "long-function" not in skip:
                report.add(rel, node.lineno, "medium" if length > 2 * MAX_FUNCTION_LINES
                           else "low", "long-function",
                           f"{node.name}() is {length} lines long (limit {MAX_FUNCTION_LINES}); "
                           "split it")
            branches = count_branches(node)
            if branches > MAX_BRANCHES and "too-many-branches" not in skip:
                report.add(rel, node.lineno, "low", "too-many-branches",
                           f"{node.name}() has {branches} branches (limit {MAX_BRANCHES})")
        elif isinstance(node, ast.Call):
            name = resolve_call(node.func, {})
            if name in {"breakpoint", "pdb.set_trace", "ipdb.set_trace", "pudb.set_trace"} \
                    and "debugger" not in skip:
                report.add(rel, node.lineno, "medium", "debugger",
                           f"{name}() left in the code")
            elif name == "print" and not cli and "print-debugging" not in skip:
                report.add(rel, node.lineno, "low", "print-debugging",
                           "print() in library code; use logging or remove it")


def syntax_error(rel: str, text: str, report: Report) -> ast.Module | None:
    """Parse a module; on a syntax error, record it (when no linter did) and return None."""
    try:
        return ast.parse(text, filename=rel)
    except SyntaxError as error:
        if report.tool == "builtin":
            report.add(rel, error.lineno or 1, "high", "syntax-error",
                       f"{error.msg} (column {error.offset or 0})")
    except ValueError as error:
        if report.tool == "builtin":
            report.add(rel, 1, "high", "syntax-error", str(error))
    return None


def choose_linter(root: Path, choice: str, report: Report) -> None:
    """Run the requested (or the first available) external linter."""
    if choice in {"auto", "ruff"}:
        ruff = find_program("ruff")
        if ruff and ruff_findings(ruff, root, report):
            report.tool = "ruff"
            return
    if choice in {"auto", "pyflakes"}:
        program = find_program("pyflakes")
        argv = [program] if program else (
            [sys.executable, "-m", "pyflakes"] if importlib.util.find_spec("pyflakes") else [])
        if argv and pyflakes_findings(argv, root, report):
            report.tool = "pyflakes"


def analyse(root: Path, args: argparse.Namespace) -> Report:
    """Review the workspace."""
    report = Report(AGENT, root)
    files = walk(root, MARKER_SUFFIXES)
    python = [f for f in files if f.rel.endswith(".py")]
    report.files_scanned = len(files)
    if python and args.linter != "builtin":
        choose_linter(root, args.linter, report)
    reported = {f.rule for f in report.findings}
    skip = {rule for rule, codes in ALREADY_COVERED.items() if codes & reported}
    markers: dict[str, int] = {}
    for file in files:
        text = read_text(file.path)
        if text is None:
            continue
        if "todo" not in skip:
            for match in MARKER.finditer(text):
                kind = match.group(1)
                markers[kind] = markers.get(kind, 0) + 1
                line = text.count("\n", 0, match.start()) + 1
                report.add(file.rel, line, "info" if kind == "TODO" else "low", "todo",
                           f"{kind}: {match.group(2).strip()}".rstrip(": "))
        if not file.rel.endswith(".py"):
            continue
        tree = syntax_error(file.rel, text, report)
        if tree is None:
            continue
        if report.tool == "builtin":
            lint_module(file.rel, tree, report)
        design_module(file.rel, tree, report, skip)
    report.notes.append(f"{len(python)} Python modules")
    if markers:
        report.notes.append(", ".join(f"{n} {k}" for k, n in sorted(markers.items())))
    return report


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of this tool."""
    parser.add_argument("--linter", choices=["auto", "ruff", "pyflakes", "builtin"],
                        default="auto", help="which linter to use (default: the best installed)")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    return run_main(AGENT, analyse, "Review code quality with a linter and design checks.",
                    configure, argv)


if __name__ == "__main__":
    raise SystemExit(main())
