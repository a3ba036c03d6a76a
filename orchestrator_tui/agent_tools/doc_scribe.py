"""Doc scribe: an index of modules with their docstrings, and what lacks documentation.

Reports the first docstring line of every Python module, public classes and functions
without a docstring (methods of public classes at `info` level), docstring coverage, whether
a README exists and its outline, and the Markdown pages under `docs/`.
"""

from __future__ import annotations

import argparse
import ast
import re
from pathlib import Path

from orchestrator_tui.agent_tools.common import Report, is_test_path, parse_python, read_text, walk
from orchestrator_tui.agent_tools.common import main as run_main

AGENT = "doc-scribe"
README_NAMES = ("README.md", "README.rst", "README.txt", "README", "readme.md", "Readme.md")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
RST_UNDERLINE = re.compile(r"^([=\-~^\"'`#*+])\1{2,}\s*$")
SKIP_DECORATORS = ("overload", "setter", "deleter", "override")
Definition = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef


def first_line(doc: str | None) -> str:
    """The first non-empty line of a docstring."""
    for line in (doc or "").strip().splitlines():
        if line.strip():
            return line.strip()
    return ""


def is_public(name: str) -> bool:
    """Public by naming convention (dunder methods are not API docs material)."""
    return not name.startswith("_")


def skipped(node: Definition) -> bool:
    """Overloads, property setters and explicit overrides need no docstring of their own."""
    return any(ast.unparse(d).endswith(SKIP_DECORATORS) for d in node.decorator_list)


class Coverage:
    """Counts documented and undocumented public definitions."""

    def __init__(self) -> None:
        self.documented = 0
        self.total = 0

    def record(self, documented: bool) -> None:
        """Count one public definition."""
        self.total += 1
        self.documented += documented

    @property
    def percent(self) -> str:
        """Documented share as a percentage, or `n/a` when there is nothing public."""
        return f"{100 * self.documented / self.total:.0f}%" if self.total else "n/a"


def check_module(rel: str, tree: ast.Module, report: Report, coverage: Coverage) -> str:
    """Record undocumented public definitions; return the module's docstring summary."""
    exported = module_all(tree)
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        public = node.name in exported if exported is not None else is_public(node.name)
        if not public or skipped(node):
            continue
        documented = ast.get_docstring(node) is not None
        coverage.record(documented)
        kind = "class" if isinstance(node, ast.ClassDef) else "function"
        if not documented:
            report.add(rel, node.lineno, "low", "missing-docstring",
                       f"public {kind} {node.name} has no docstring")
        if isinstance(node, ast.ClassDef):
            check_methods(rel, node, report, coverage)
    return first_line(ast.get_docstring(tree))


def check_methods(rel: str, cls: ast.ClassDef, report: Report, coverage: Coverage) -> None:
    """Public methods of a public class without a docstring (info level).

    Visitor callbacks (`visit_*`) follow their base class's contract and are skipped.
    """
    for node in cls.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and is_public(node.name) \
                and not node.name.startswith("visit_") and not skipped(node):
            documented = ast.get_docstring(node) is not None
            coverage.record(documented)
            if not documented:
                report.add(rel, node.lineno, "info", "missing-docstring",
                           f"method {cls.name}.{node.name} has no docstring")


def module_all(tree: ast.Module) -> set[str] | None:
    """The names listed in `__all__`, when the module defines it literally."""
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__"
                                                for t in node.targets):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                return None
            return {str(v) for v in value} if isinstance(value, list | tuple) else None
    return None


def outline(text: str) -> list[str]:
    """Headings of a Markdown (or reStructuredText) document, indented by level."""
    headings: list[str] = []
    fenced = False
    lines = text.splitlines()
    rst_levels: dict[str, int] = {}
    for number, line in enumerate(lines):
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            continue
        if fenced:
            continue
        match = HEADING.match(line)
        if match:
            headings.append("  " * (len(match.group(1)) - 1) + match.group(2))
            continue
        underline = RST_UNDERLINE.match(line)
        if underline and number > 0 and lines[number - 1].strip() \
                and len(line.strip()) >= len(lines[number - 1].strip()):
            char = underline.group(1)
            level = rst_levels.setdefault(char, len(rst_levels))
            headings.append("  " * level + lines[number - 1].strip())
    return headings


def readme_section(root: Path, report: Report) -> None:
    """README presence and outline."""
    readme = next((root / n for n in README_NAMES if (root / n).is_file()), None)
    if readme is None:
        report.add("README.md", 1, "medium", "no-readme",
                   "no README at the top of the workspace; add one with install and usage")
        return
    text = read_text(readme) or ""
    headings = outline(text)
    if len(text.strip()) < 200:
        report.add(readme.name, 1, "low", "short-readme",
                   f"README is only {len(text.strip())} characters long")
    lowered = text.lower()
    for topic, words in (("installation", ("install",)), ("usage", ("usage", "example",
                                                                     "getting started"))):
        if not any(w in lowered for w in words):
            report.add(readme.name, 1, "low", "readme-gap", f"README does not cover {topic}")
    report.section(f"{readme.name} outline", headings or ["(no headings)"])


def analyse(root: Path, args: argparse.Namespace) -> Report:
    """Index the documentation of the workspace."""
    report = Report(AGENT, root)
    coverage = Coverage()
    index: list[str] = []
    files = walk(root, (".py",))
    documented_modules = 0
    for file in files:
        if is_test_path(file.rel):
            continue
        report.files_scanned += 1
        text = read_text(file.path)
        tree = parse_python(text, file.rel) if text is not None else None
        if tree is None:
            index.append(f"{file.rel}: (does not parse)")
            continue
        summary = check_module(file.rel, tree, report, coverage)
        if summary:
            documented_modules += 1
        elif tree.body:
            report.add(file.rel, 1, "low", "missing-module-docstring",
                       "module has no docstring saying what it is for")
        index.append(f"{file.rel}: {summary or '(no docstring)'}")
    report.section("Module index", index)
    readme_section(root, report)
    docs = walk(root / "docs", (".md", ".rst")) if (root / "docs").is_dir() else []
    report.files_scanned += len(docs)
    if docs:
        report.section("Pages under docs/", [
            f"docs/{d.rel}: {(outline(read_text(d.path) or '') or ['(no heading)'])[0].strip()}"
            for d in docs])
    report.notes.append(f"docstring coverage {coverage.percent} "
                        f"({coverage.documented}/{coverage.total} public definitions), "
                        f"{documented_modules}/{len(index)} modules documented")
    return report


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    return run_main(AGENT, analyse, "Index module docs and find undocumented public code.",
                    argv=argv)


if __name__ == "__main__":
    raise SystemExit(main())
