"""Validator and test runner: detect the workspace's test suites, run them, report results.

Detects pytest or unittest (Python), `npm test` (a package.json test script), `cargo test`
and `go test ./...`, runs each as an argv list in its own process group under one overall
timeout, and reports passed/failed counts and each failing test with its file and line.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import json
import os
import re
import shlex
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from orchestrator_tui.agent_tools.common import (
    Report,
    find_program,
    is_test_path,
    parse_python,
    read_text,
    run_program,
    walk,
)
from orchestrator_tui.agent_tools.common import main as run_main

AGENT = "validator-test-runner"
NPM_DEFAULT_TEST = "no test specified"
TEST_SUFFIXES = (".py", ".js", ".jsx", ".ts", ".tsx", ".mjs", ".go", ".rs")
PYTEST_FAILED = re.compile(r"^(FAILED|ERROR) ([^\s:]+)(?:::(\S+))?(?: - (.*))?$", re.MULTILINE)
UNITTEST_FAILED = re.compile(r"^(FAIL|ERROR): (\w+) \(([\w.]+)\)", re.MULTILINE)
PARAMETRISED = re.compile(r"\[.*\]$")
UNITTEST_BLOCK_END = re.compile(r"^(?:={20,}|Ran \d+ tests?)", re.MULTILINE)
COUNT = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed)")
TAIL_LINES = 25


@dataclass(frozen=True, slots=True)
class Suite:
    """A detected test suite and how to run it."""

    name: str
    argv: list[str]
    note: str = ""


def python_tests(root: Path) -> list[str]:
    """Relative paths of Python test modules."""
    return [f.rel for f in walk(root, (".py",))
            if f.path.name.startswith("test_") or f.path.name.endswith("_test.py")]


def has_pytest_config(root: Path) -> bool:
    """Whether the workspace configures pytest anywhere pytest would look."""
    checks = {"pyproject.toml": "[tool.pytest", "setup.cfg": "[tool:pytest]",
              "tox.ini": "[pytest]"}
    if (root / "pytest.ini").is_file() or (root / "conftest.py").is_file():
        return True
    return any(marker in (read_text(root / name) or "") for name, marker in checks.items()
               if (root / name).is_file())


def detect(root: Path, report: Report) -> list[Suite]:
    """The test suites of the workspace, recording runners that are missing."""
    suites: list[Suite] = []
    tests = python_tests(root)
    if tests or has_pytest_config(root):
        pytest_args = ["-rfE", "--tb=short", "--color=no", "-p", "no:cacheprovider"]
        pytest = find_program("pytest")
        if importlib.util.find_spec("pytest") is not None:
            suites.append(Suite("pytest", [sys.executable, "-m", "pytest", *pytest_args]))
        elif pytest:
            suites.append(Suite("pytest", [pytest, *pytest_args]))
        else:
            start = "tests" if (root / "tests").is_dir() else "."
            top = ["-t", "."] if (root / start / "__init__.py").is_file() else []
            suites.append(Suite("unittest", [sys.executable, "-m", "unittest", "discover", "-v",
                                             "-s", start, *top],
                                "pytest is not installed; using unittest discovery"))
    package = root / "package.json"
    if package.is_file():
        try:
            scripts = json.loads(read_text(package) or "{}").get("scripts") or {}
        except (json.JSONDecodeError, AttributeError):
            scripts = {}
            report.add("package.json", 1, "medium", "package-json-invalid",
                       "package.json does not parse; cannot read its test script")
        test = scripts.get("test") if isinstance(scripts, dict) else None
        if isinstance(test, str) and NPM_DEFAULT_TEST not in test:
            add_program(suites, report, "npm", ["npm", "test"], "package.json")
    if (root / "Cargo.toml").is_file():
        add_program(suites, report, "cargo", ["cargo", "test", "--color", "never"], "Cargo.toml")
    if (root / "go.mod").is_file():
        add_program(suites, report, "go", ["go", "test", "-v", "./..."], "go.mod")
    return suites


def add_program(suites: list[Suite], report: Report, name: str, argv: list[str],
                marker: str) -> None:
    """Add a suite run by an external program, or a finding when it is not installed."""
    program = find_program(argv[0])
    if program:
        suites.append(Suite(name, [program, *argv[1:]]))
    else:
        report.add(marker, 1, "medium", "runner-missing",
                   f"{marker} declares tests but `{argv[0]}` is not on PATH")


def definition_line(root: Path, rel: str, names: list[str]) -> int:
    """The line where a test function (optionally inside classes) is defined, else 1."""
    text = read_text(root / rel)
    tree = parse_python(text, rel) if text else None
    if tree is None:
        return 1
    body: list[ast.stmt] = tree.body
    line = 1
    for name in names:
        node = next((n for n in body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef
                                                   | ast.ClassDef) and n.name == name), None)
        if node is None:
            break
        line, body = node.lineno, node.body
    return line


def parse_pytest(root: Path, output: str, report: Report) -> Counter[str]:
    """Counts from pytest's final line; each FAILED/ERROR line becomes a finding."""
    counts: Counter[str] = Counter()
    for line in reversed(output.splitlines()):
        if " in " in line and COUNT.search(line):
            for number, kind in COUNT.findall(line):
                counts["errors" if kind.startswith("error") else kind] += int(number)
            break
    for kind, path, node_id, message in PYTEST_FAILED.findall(output):
        names = [PARAMETRISED.sub("", n) for n in node_id.split("::")] if node_id else []
        where = re.search(rf"^{re.escape(path)}:(\d+): in {re.escape(names[-1])}$", output,
                          re.MULTILINE) if names else None
        at = int(where.group(1)) if where else (
            definition_line(root, path, names) if path.endswith(".py") else 1)
        label = "::".join(names) or path
        rule = "test-failed" if kind == "FAILED" else "test-error"
        report.add(path, at, "high", rule,
                   f"{label} {'failed' if kind == 'FAILED' else 'errored'}"
                   + (f": {message.strip()[:200]}" if message else ""))
    return counts


def parse_unittest(root: Path, output: str, report: Report, start: str) -> Counter[str]:
    """Counts from unittest's `Ran N tests` and `FAILED (...)` lines, and failing tests."""
    counts: Counter[str] = Counter()
    ran = re.search(r"^Ran (\d+) tests?", output, re.MULTILINE)
    for key, number in re.findall(r"(failures|errors|skipped)=(\d+)", output):
        counts["failed" if key == "failures" else key] += int(number)
    if ran:
        counts["passed"] = int(ran.group(1)) - sum(counts.values())
    for match in UNITTEST_FAILED.finditer(output):
        kind, test, dotted = match.groups()
        block = UNITTEST_BLOCK_END.split(output[match.end():], maxsplit=1)[0]
        error = next((ln.strip() for ln in reversed(block.splitlines())
                      if ln.strip() and not ln.startswith("---")), "")
        parts = dotted.split(".")
        if parts[-1] == test:
            parts = parts[:-1]
        module, classes = parts[0], parts[1:]
        found = next(((Path(base, *parts[:depth - 1], parts[depth - 1] + ".py"), depth)
                      for base in (start, ".") for depth in range(len(parts), 0, -1)
                      if (root / base / Path(*parts[:depth - 1], parts[depth - 1] + ".py"))
                      .is_file()), None)
        if found:
            module, classes = found[0].as_posix(), parts[found[1]:]
        rel = module.removeprefix("./")
        where = re.search(rf'File "[^"]*{re.escape(rel)}", line (\d+), in {test}$', block,
                          re.MULTILINE)
        line = int(where.group(1)) if where else definition_line(root, rel, [*classes, test])
        report.add(rel, line, "high",
                   "test-failed" if kind == "FAIL" else "test-error",
                   f"{'.'.join([*classes, test])} {'failed' if kind == 'FAIL' else 'errored'}"
                   + (f": {error[:200]}" if error else ""))
    return counts


def parse_other(name: str, output: str, report: Report, marker: str) -> Counter[str]:
    """Counts for npm (jest, vitest, mocha, node:test), cargo and go output."""
    counts: Counter[str] = Counter()
    patterns = {
        "npm": [(r"Tests?:?\s+(?:.*?(\d+) failed)", "failed"), (r"Tests?:?\s+.*?(\d+) passed",
                                                               "passed"),
                (r"(\d+) passing", "passed"), (r"(\d+) failing", "failed"),
                (r"^# pass (\d+)", "passed"), (r"^# fail (\d+)", "failed")],
        "cargo": [(r"test result: \w+\. (\d+) passed", "passed"), (r"; (\d+) failed;", "failed")],
        "go": [(r"^\s*--- PASS:", "passed"), (r"^\s*--- FAIL:", "failed")],
    }
    for pattern, kind in patterns.get(name, []):
        for match in re.finditer(pattern, output, re.MULTILINE):
            counts[kind] += int(match.group(1)) if match.groups() else 1
    failed = {"cargo": r"^test (\S+) \.\.\. FAILED", "go": r"^\s*--- FAIL: (\S+)",
              "npm": r"^\s*(?:\u2715|\u00d7|FAIL)\s+(.+)$"}.get(name)
    for match in re.finditer(failed or r"$^", output, re.MULTILINE):
        report.add(marker, 1, "high", "test-failed", f"{match.group(1).strip()[:160]} failed")
    return counts


def run_suite(root: Path, suite: Suite, remaining: float, report: Report) -> str:
    """Run one suite, record its findings and section, and return its summary note."""
    env = {k: v for k, v in os.environ.items() if k not in {"FORCE_COLOR", "PYTEST_ADDOPTS"}}
    env.update({"CI": "1", "NO_COLOR": "1", "PY_COLORS": "0", "PYTHONDONTWRITEBYTECODE": "1"})
    result = run_program(suite.argv, root, max(remaining, 1.0), env)
    output = result.stdout + "\n" + result.stderr
    marker = {"npm": "package.json", "cargo": "Cargo.toml", "go": "go.mod"}.get(suite.name, ".")
    before = len(report.findings)
    if suite.name == "pytest":
        counts = parse_pytest(root, output, report)
    elif suite.name == "unittest":
        counts = parse_unittest(root, output, report, suite.argv[suite.argv.index("-s") + 1])
    else:
        counts = parse_other(suite.name, output, report, marker)
    outcome = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()) if n) or "no counts"
    if result.timed_out:
        report.add(marker, 1, "high", "test-timeout",
                   f"{suite.name} did not finish within {remaining:.0f} s and was stopped")
    elif suite.name == "pytest" and result.code == 5:
        report.add(marker, 1, "info", "no-tests", "no tests found: pytest collected nothing")
    elif result.code and len(report.findings) == before:
        last = next((ln for ln in reversed(output.strip().splitlines()) if ln.strip()), "")
        report.add(marker, 1, "high", "suite-error",
                   f"{suite.name} exited with {result.code}: {last.strip()[:200]}")
    status = "timed out" if result.timed_out else f"exit {result.code}"
    body = [f"command: {shlex.join(suite.argv)}", f"{status} after {result.seconds:.1f} s",
            f"results: {outcome}"]
    if suite.note:
        body.insert(0, suite.note)
    if result.code or result.timed_out:
        tail = [ln for ln in output.rstrip().splitlines() if ln.strip()][-TAIL_LINES:]
        body += ["output (last lines):", *(f"  {ln[:160]}" for ln in tail)]
    report.section(f"{suite.name} run", body)
    return f"{suite.name}: {outcome}" + (" (timed out)" if result.timed_out else "")


def analyse(root: Path, args: argparse.Namespace) -> Report:
    """Detect and run the workspace's tests."""
    report = Report(AGENT, root)
    report.files_scanned = sum(1 for f in walk(root, TEST_SUFFIXES) if is_test_path(f.rel))
    suites = detect(root, report)
    if not suites:
        report.add(".", 1, "info", "no-tests",
                   "no tests found (looked for pytest/unittest, npm test, cargo, go)")
        report.notes.append("no tests found")
        return report
    report.tool = ", ".join(s.name for s in suites)
    deadline = time.monotonic() + args.timeout
    for suite in suites:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            report.add(".", 1, "high", "test-timeout",
                       f"{suite.name} was not started: the {args.timeout:g} s budget ran out")
            continue
        report.notes.append(run_suite(root, suite, remaining, report))
    return report


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of this tool."""
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="seconds for all test runs together (default 600)")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    return run_main(AGENT, analyse, "Detect and run the workspace's tests.", configure, argv)


if __name__ == "__main__":
    raise SystemExit(main())
