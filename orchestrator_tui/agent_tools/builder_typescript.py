"""TypeScript builder: type-check with the project's own tsc, or read its configuration.

When `node_modules/.bin/tsc` exists it runs `tsc --noEmit` and reports each compiler error
with file and line. Otherwise it parses package.json and tsconfig.json (comments and
trailing commas allowed) and reports scripts, settings and risky suppressions. A workspace
without TypeScript is reported as such.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from orchestrator_tui.agent_tools.common import (
    Report,
    find_program,
    plural,
    read_text,
    run_program,
    walk,
)
from orchestrator_tui.agent_tools.common import main as run_main

AGENT = "builder-typescript"
TS_SUFFIXES = (".ts", ".tsx", ".mts", ".cts")
TSC_LINE = re.compile(r"^(?P<path>.+?)\((?P<line>\d+),\d+\): (?P<level>error|warning) "
                      r"(?P<code>TS\d+): (?P<message>.*)$", re.MULTILINE)
SUPPRESSION = re.compile(r"//\s*@ts-(ignore|nocheck|expect-error)\b")
ANY_USE = re.compile(r"(?::|\bas)\s*any\b")
SHOWN_OPTIONS = ("target", "module", "moduleResolution", "strict", "noEmit", "outDir",
                 "rootDir", "jsx", "lib", "skipLibCheck", "noImplicitAny")


def strip_jsonc(text: str) -> str:
    """JSON with comments and trailing commas → strict JSON, keeping line numbers."""
    out: list[str] = []
    i, n = 0, len(text)
    pending = False
    while i < n:
        char = text[i]
        if char == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            if pending:
                out.append(",")
                pending = False
            out.append(text[i:j + 1])
            i = j + 1
        elif text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append("\n" * text.count("\n", i, end))
            i = end
        elif char == ",":
            if pending:
                out.append(",")
            pending = True
            i += 1
        elif char in " \t\r\n":
            out.append(char)
            i += 1
        else:
            if pending and char not in "}]":
                out.append(",")
            pending = False
            out.append(char)
            i += 1
    return "".join(out)


def load_json(root: Path, name: str, report: Report, *, lenient: bool) -> dict[str, Any] | None:
    """A JSON file of the workspace as a dict, or None (with a finding) when it is invalid."""
    text = read_text(root / name) or ""
    try:
        data = json.loads(strip_jsonc(text) if lenient else text)
    except json.JSONDecodeError as error:
        report.add(name, error.lineno, "high", "invalid-json",
                   f"{name} does not parse: {error.msg}")
        return None
    if not isinstance(data, dict):
        report.add(name, 1, "high", "invalid-json", f"{name} is not a JSON object")
        return None
    return data


def describe_package(package: dict[str, Any], report: Report) -> list[str]:
    """Name, scripts and dependencies of package.json."""
    deps = package.get("dependencies") or {}
    dev = package.get("devDependencies") or {}
    lines = [f"package: {package.get('name', '(unnamed)')} {package.get('version', '')}".rstrip(),
             f"dependencies: {len(deps)}, devDependencies: {len(dev)}"]
    for key in ("main", "module", "types", "type"):
        if key in package:
            lines.append(f"{key}: {package[key]}")
    scripts = package.get("scripts") or {}
    lines += [f"script {name}: {command}" for name, command in scripts.items()] or \
        ["no scripts"]
    if "build" not in scripts:
        report.add("package.json", 1, "low", "no-build-script",
                   "package.json has no `build` script")
    return lines


def describe_tsconfig(config: dict[str, Any], text: str, report: Report) -> list[str]:
    """Compiler options and file selection of tsconfig.json."""
    options = config.get("compilerOptions") or {}
    lines = [f"extends: {config['extends']}"] if "extends" in config else []
    lines += [f"{key}: {json.dumps(options[key])}" for key in SHOWN_OPTIONS if key in options]
    for key in ("include", "exclude", "files"):
        if key in config:
            lines.append(f"{key}: {', '.join(map(str, config[key]))}")
    if options.get("strict") is not True and "extends" not in config:
        position = text.find('"strict"')
        line = text.count("\n", 0, position) + 1 if position >= 0 else 1
        report.add("tsconfig.json", line, "low", "strict-off",
                   "compilerOptions.strict is not true; type errors slip through")
    return lines


def run_tsc(root: Path, tsc: Path, timeout: float, report: Report) -> list[str]:
    """Type-check with the project's own compiler."""
    if find_program("node") is None:
        report.add("package.json", 1, "medium", "node-missing",
                   "node_modules/.bin/tsc exists but `node` is not on PATH; skipped tsc")
        return ["tsc skipped: node is not installed"]
    argv = [str(tsc), "--noEmit", "--pretty", "false"]
    if (root / "tsconfig.json").is_file():
        argv += ["-p", "tsconfig.json"]
    result = run_program(argv, root, timeout)
    output = result.stdout + result.stderr
    errors = 0
    for match in TSC_LINE.finditer(output):
        errors += 1
        report.add(match["path"], int(match["line"]),
                   "high" if match["level"] == "error" else "low", match["code"],
                   match["message"].strip())
    if result.timed_out:
        report.add("tsconfig.json", 1, "high", "tsc-timeout", f"tsc ran over {timeout:g} s")
    elif result.code and not errors:
        last = (output.strip().splitlines() or ["no output"])[-1]
        report.add("tsconfig.json", 1, "high", "tsc-failed",
                   f"tsc exited with {result.code}: {last[:200]}")
    report.tool = "tsc"
    return [f"tsc --noEmit: exit {result.code}, {errors} diagnostics in {result.seconds:.1f} s"]


def scan_sources(root: Path, report: Report) -> int:
    """Count TypeScript files and flag type-checking suppressions; returns the file count."""
    files = walk(root, TS_SUFFIXES)
    any_uses = 0
    for file in files:
        text = read_text(file.path) or ""
        any_uses += len(ANY_USE.findall(text))
        for match in SUPPRESSION.finditer(text):
            kind = match.group(1)
            report.add(file.rel, text.count("\n", 0, match.start()) + 1,
                       "medium" if kind == "nocheck" else "low", f"ts-{kind}",
                       f"@ts-{kind} hides type errors" + (" for the whole file"
                                                          if kind == "nocheck" else ""))
    report.files_scanned += len(files)
    if files:
        report.notes.append(f"{plural(len(files), 'TypeScript file')}, "
                            f"{plural(any_uses, 'use')} of `any`")
    return len(files)


def analyse(root: Path, args: argparse.Namespace) -> Report:
    """Build-check the TypeScript side of the workspace."""
    report = Report(AGENT, root)
    has_package = (root / "package.json").is_file()
    has_tsconfig = (root / "tsconfig.json").is_file()
    sources = scan_sources(root, report)
    package = load_json(root, "package.json", report, lenient=False) if has_package else None
    report.files_scanned += has_package + has_tsconfig
    declared = {**((package or {}).get("dependencies") or {}),
                **((package or {}).get("devDependencies") or {})}
    if not (has_tsconfig or sources or "typescript" in declared):
        report.add(".", 1, "info", "no-typescript",
                   "no TypeScript here (no tsconfig.json, no .ts files); nothing to build")
        report.notes.append("no TypeScript project")
        if package:
            report.section("package.json", describe_package(package, report))
        return report
    if package:
        report.section("package.json", describe_package(package, report))
        if "typescript" not in declared:
            report.add("package.json", 1, "low", "typescript-undeclared",
                       "typescript is not in dependencies or devDependencies")
    if has_tsconfig:
        config = load_json(root, "tsconfig.json", report, lenient=True)
        if config is not None:
            report.section("tsconfig.json", describe_tsconfig(
                config, read_text(root / "tsconfig.json") or "", report))
    else:
        report.add(".", 1, "medium", "no-tsconfig",
                   "TypeScript files but no tsconfig.json; tsc falls back to defaults")
    tsc = root / "node_modules" / ".bin" / "tsc"
    if tsc.exists():
        report.section("Type check", run_tsc(root, tsc, args.timeout, report))
    else:
        if has_package and not (root / "node_modules").is_dir():
            report.add("package.json", 1, "info", "deps-not-installed",
                       "node_modules is missing; run `npm ci` to type-check with tsc")
        report.section("Type check", ["skipped: no node_modules/.bin/tsc (configuration only)"])
    return report


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of this tool."""
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="seconds allowed for tsc (default 300)")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    return run_main(AGENT, analyse, "Type-check or inspect a TypeScript project.", configure,
                    argv)


if __name__ == "__main__":
    raise SystemExit(main())
