"""Python builder: byte-compile every module and check the packaging metadata.

Compiles each Python file in memory (nothing is written to the workspace), reporting syntax
errors and compiler warnings with file and line; parses `pyproject.toml` and `setup.cfg`,
reports the declared build back end, and checks that the readme and the entry points the
metadata names exist.
"""

from __future__ import annotations

import argparse
import ast
import configparser
import re
import tomllib
import warnings
from pathlib import Path
from typing import Any

from orchestrator_tui.agent_tools.common import Report, parse_python, read_text, walk
from orchestrator_tui.agent_tools.common import main as run_main

AGENT = "builder-python"
BACKENDS = {
    "setuptools.build_meta": "setuptools", "setuptools.build_meta:__legacy__": "setuptools",
    "hatchling.build": "hatchling", "poetry.core.masonry.api": "poetry-core",
    "flit_core.buildapi": "flit-core", "pdm.backend": "pdm-backend",
    "maturin": "maturin", "scikit_build_core.build": "scikit-build-core",
    "mesonpy": "meson-python", "uv_build": "uv-build",
}
TOML_LINE = re.compile(r"at line (\d+)")


def compile_all(root: Path, report: Report) -> int:
    """Compile every Python file; returns how many compiled cleanly."""
    clean = 0
    files = walk(root, (".py",))
    report.files_scanned += len(files)
    for file in files:
        text = read_text(file.path)
        if text is None:
            report.add(file.rel, 1, "medium", "unreadable", "file is binary or unreadable")
            continue
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                compile(text, file.rel, "exec", dont_inherit=True)
            except SyntaxError as error:
                report.add(file.rel, error.lineno or 1, "high", "syntax-error",
                           f"{error.msg} (column {error.offset or 0})")
                continue
            except ValueError as error:
                report.add(file.rel, 1, "high", "syntax-error", str(error))
                continue
        clean += 1
        for warning in caught:
            report.add(file.rel, getattr(warning, "lineno", 1) or 1, "low", "compile-warning",
                       f"{warning.category.__name__}: {warning.message}")
    return clean


def module_file(root: Path, module: str) -> Path | None:
    """The file of a dotted module name in the workspace (flat or `src/` layout)."""
    parts = module.split(".")
    for base in (root, root / "src"):
        for candidate in (base.joinpath(*parts).with_suffix(".py"),
                          base.joinpath(*parts, "__init__.py")):
            if candidate.is_file():
                return candidate
    return None


def check_entry_points(root: Path, project: dict[str, Any], report: Report) -> list[str]:
    """Console scripts whose module or function is missing from the workspace."""
    lines = []
    scripts: dict[str, Any] = {**(project.get("scripts") or {}),
                               **(project.get("gui-scripts") or {})}
    for name, target in scripts.items():
        module, _, attr = str(target).partition(":")
        lines.append(f"script {name} → {target}")
        path = module_file(root, module.strip())
        if path is None:
            report.add("pyproject.toml", 1, "medium", "entry-point-missing",
                       f"script {name!r} points at module {module!r}, which is not in the "
                       "workspace")
            continue
        function = attr.split(".")[0].strip()
        tree = parse_python(read_text(path) or "", str(path))
        if function and tree is not None and not any(
                getattr(n, "name", None) == function or (
                    isinstance(n, ast.Assign | ast.ImportFrom)
                    and function in ast.unparse(n)) for n in tree.body):
            report.add("pyproject.toml", 1, "medium", "entry-point-missing",
                       f"script {name!r}: {module} has no top-level {function!r}")
    return lines


def check_pyproject(root: Path, report: Report) -> list[str]:
    """Parse pyproject.toml and describe its build system and metadata."""
    path = root / "pyproject.toml"
    text = read_text(path) or ""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        match = TOML_LINE.search(str(error))
        report.add("pyproject.toml", int(match.group(1)) if match else 1, "high",
                   "pyproject-invalid", f"pyproject.toml does not parse: {error}")
        return ["pyproject.toml: invalid TOML"]
    lines = []
    system = data.get("build-system") or {}
    backend = system.get("build-backend")
    if backend:
        lines.append(f"build back end: {backend} ({BACKENDS.get(backend, 'custom')})")
        lines.append(f"build requires: {', '.join(system.get('requires') or []) or '(none)'}")
    else:
        report.add("pyproject.toml", 1, "low", "no-build-backend",
                   "no [build-system] build-backend; pip falls back to legacy setuptools")
        lines.append("build back end: none declared (legacy setuptools)")
    project = data.get("project")
    if isinstance(project, dict):
        dynamic = set(project.get("dynamic") or [])
        for key in ("name", "version"):
            if key not in project and key not in dynamic:
                report.add("pyproject.toml", line_of(text, "[project]"), "high",
                           "metadata-missing", f"[project] has no {key!r} (nor lists it in "
                           "dynamic)")
        if "requires-python" not in project:
            report.add("pyproject.toml", line_of(text, "[project]"), "low", "metadata-gap",
                       "[project] does not declare requires-python")
        readme = project.get("readme")
        readme_file = readme if isinstance(readme, str) else (
            readme.get("file") if isinstance(readme, dict) else None)
        if readme_file and not (root / readme_file).is_file():
            report.add("pyproject.toml", line_of(text, "readme"), "medium", "readme-missing",
                       f"readme {readme_file!r} does not exist; building the package fails")
        lines.append(f"project: {project.get('name', '?')} {project.get('version', '(dynamic)')}"
                     f", requires-python {project.get('requires-python', '(any)')}, "
                     f"{len(project.get('dependencies') or [])} dependencies")
        lines += check_entry_points(root, project, report)
        check_hatch_paths(root, data, text, report)
    elif "tool" in data and "poetry" in (data.get("tool") or {}):
        lines.append("project metadata: [tool.poetry]")
    elif not (root / "setup.cfg").is_file() and not (root / "setup.py").is_file():
        report.add("pyproject.toml", 1, "medium", "metadata-missing",
                   "pyproject.toml has no [project] table and there is no setup.cfg/setup.py")
    return lines


def check_hatch_paths(root: Path, data: dict[str, Any], text: str, report: Report) -> None:
    """Folders that hatch is told to package (`packages`, `force-include`) must exist."""
    wheel = (((data.get("tool") or {}).get("hatch") or {}).get("build") or {})
    wheel = (wheel.get("targets") or {}).get("wheel") or {}
    sources = [*(wheel.get("packages") or []), *(wheel.get("force-include") or {})]
    for source in sources:
        if not (root / str(source)).exists():
            report.add("pyproject.toml", line_of(text, f'"{source}"'), "medium",
                       "packaged-path-missing",
                       f"hatch packages {source!r} into the wheel but it does not exist")


def line_of(text: str, needle: str) -> int:
    """The first line containing `needle`, else 1."""
    position = text.find(needle)
    return text.count("\n", 0, position) + 1 if position >= 0 else 1


def check_setup_cfg(root: Path, report: Report) -> list[str]:
    """Parse setup.cfg and report its metadata section."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(read_text(root / "setup.cfg") or "", "setup.cfg")
    except configparser.Error as error:
        line = getattr(error, "lineno", 1) or 1
        report.add("setup.cfg", line, "high", "setup-cfg-invalid",
                   f"setup.cfg does not parse: {str(error).splitlines()[0]}")
        return ["setup.cfg: invalid"]
    if parser.has_section("metadata"):
        name = parser.get("metadata", "name", fallback="?")
        version = parser.get("metadata", "version", fallback="?")
        return [f"setup.cfg metadata: {name} {version}"]
    return ["setup.cfg: no [metadata] section"]


def analyse(root: Path, args: argparse.Namespace) -> Report:
    """Build-check the Python side of the workspace."""
    report = Report(AGENT, root)
    clean = compile_all(root, report)
    packaging: list[str] = []
    if (root / "pyproject.toml").is_file():
        report.files_scanned += 1
        packaging += check_pyproject(root, report)
    if (root / "setup.cfg").is_file():
        report.files_scanned += 1
        packaging += check_setup_cfg(root, report)
    if (root / "setup.py").is_file():
        packaging.append("setup.py present (legacy setup script)")
    if not packaging:
        packaging.append("no pyproject.toml, setup.cfg or setup.py: not an installable package")
    report.section("Packaging", packaging)
    python = report.files_scanned - sum((root / n).is_file() for n in ("pyproject.toml",
                                                                      "setup.cfg"))
    report.notes.append(f"{clean}/{python} Python files compile" if python
                        else "no Python files")
    return report


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    return run_main(AGENT, analyse, "Byte-compile Python sources and check packaging metadata.",
                    argv=argv)


if __name__ == "__main__":
    raise SystemExit(main())
