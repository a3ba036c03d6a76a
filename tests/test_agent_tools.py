"""The shipped agents' analysis programs, run as real subprocesses on a planted repository.

Also checks that every shipped agent file has strict YAML front matter with a `command`, and
that the default workflow has the eight intents of the main menu.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ["security_scout", "code_reviewer", "perf_optimizer", "architect", "doc_scribe",
         "api_designer", "validator_test_runner", "builder_python", "builder_typescript"]
AGENTS = ["architect", "code-reviewer", "security-scout", "validator-test-runner", "doc-scribe",
          "perf-optimizer", "api-designer", "builder-python", "builder-typescript"]
INTENTS = {"analyze", "build", "research", "document", "fix", "improve", "deploy", "report"}
FAKE_AWS_KEY = "AKIA" + "Q3EGRTPJ5KXZ7WNB"
SUMMARY = re.compile(r"^SUMMARY: \d+ findings? (\([^)]*\) )?in \d+ files?")

FILES = {
    "README.md": "# Demo\n\n## Install\n\npip install demo\n\n## Usage\n\nRun it.\n",
    "pyproject.toml": textwrap.dedent("""\
        [build-system]
        requires = ["hatchling"]
        build-backend = "hatchling.build"

        [project]
        name = "demo"
        version = "0.1.0"
        requires-python = ">=3.11"
        """),
    "app/__init__.py": '"""Demo application."""\n',
    "app/config.py": f'"""Settings."""\nAWS_ACCESS_KEY_ID = "{FAKE_AWS_KEY}"\n',
    "app/risky.py": textwrap.dedent('''\
        """Risky things."""
        import os
        import subprocess


        def run(cmd):
            subprocess.run(cmd, shell=True)
            return eval(cmd)


        def swallow():
            """Bare except."""
            try:
                return 1
            except:
                return 0
        '''),
    "app/slow.py": textwrap.dedent('''\
        """Slow code."""
        import time


        def pairs(items):
            """Quadratic."""
            out = []
            for a in items:
                for b in items:
                    out.append((a, b))
            return out


        async def wait():
            """Blocks the loop."""
            time.sleep(1)
        '''),
    "app/a.py": '"""A."""\nfrom app import b\n\nVALUE = 1\n',
    "app/b.py": '"""B."""\nfrom app import a\n\nOTHER = 2\n',
    "app/web.py": textwrap.dedent('''\
        """Routes."""
        from flask import Flask

        app = Flask(__name__)


        @app.get("/users")
        def list_users():
            """All users."""


        @app.get("/users")
        def list_users_again():
            """Shadowed."""


        def make(a, b, c, d, e, f):
            """Too many positional parameters."""
        '''),
    "app/broken.py": "def broken(:\n    pass\n",
    "tests/test_app.py": textwrap.dedent("""\
        def test_passes():
            assert 1 + 1 == 2


        def test_fails():
            assert 1 + 1 == 3
        """),
    ".env": "API_TOKEN=s3cr3t-Value-9f8e7d6c\n",
}


def run_tool(name: str, workspace: Path, *args: str, timeout: float = 60) -> \
        subprocess.CompletedProcess[str]:
    """Run one agent tool the way the engine does: a child process with an argv list."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", f"orchestrator_tui.agent_tools.{name}", str(workspace), *args],
        capture_output=True, text=True, timeout=timeout, env=env, check=False)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small repository with planted problems (a git repository when git is installed)."""
    root = tmp_path_factory.mktemp("planted")
    for rel, text in FILES.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    if shutil.which("git"):
        subprocess.run(["git", "init", "-q", str(root)], check=True)
        subprocess.run(["git", "-C", str(root), "add", ".env", "app"], check=True)
    return root


@pytest.fixture(scope="module")
def reports(repo: Path) -> dict[str, dict[str, Any]]:
    """Each tool's JSON report on the planted repository, computed once."""
    results = {}
    for name in TOOLS:
        done = run_tool(name, repo, "--json")
        assert done.returncode == 0, done.stderr
        results[name] = json.loads(done.stdout)
    return results


def located(report: dict[str, Any], rule: str) -> set[tuple[str, int]]:
    """(path, line) of every finding of one rule."""
    return {(f["path"], f["line"]) for f in report["findings"] if f["rule"] == rule}


@pytest.mark.parametrize("name", TOOLS)
def test_json_shape(reports: dict[str, dict[str, Any]], name: str) -> None:
    report = reports[name]
    assert set(report) == {"agent", "summary", "files_scanned", "findings", "tool"}
    assert report["agent"] == name.replace("_", "-")
    assert isinstance(report["files_scanned"], int)
    assert isinstance(report["tool"], str) and report["tool"]
    for finding in report["findings"]:
        assert set(finding) == {"path", "line", "severity", "rule", "message"}
        assert finding["severity"] in {"high", "medium", "low", "info"}
        assert isinstance(finding["line"], int) and finding["line"] >= 1
        assert finding["message"]


@pytest.mark.parametrize("name", [t for t in TOOLS if t != "validator_test_runner"])
def test_text_report_ends_with_summary(repo: Path, name: str) -> None:
    done = run_tool(name, repo)
    assert done.returncode == 0, done.stderr
    last = done.stdout.rstrip().splitlines()[-1]
    assert SUMMARY.match(last), last
    assert sum(line.startswith("SUMMARY: ") for line in done.stdout.splitlines()) == 1


@pytest.mark.parametrize("name", TOOLS)
def test_missing_workspace_exits_2(tmp_path: Path, name: str) -> None:
    done = run_tool(name, tmp_path / "nowhere")
    assert done.returncode == 2
    assert "does not exist" in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_security_scout(repo: Path, reports: dict[str, dict[str, Any]]) -> None:
    report = reports["security_scout"]
    assert ("app/config.py", 2) in located(report, "aws-access-key")
    assert ("app/risky.py", 7) in located(report, "shell-true")
    assert ("app/risky.py", 8) in located(report, "eval")
    assert FAKE_AWS_KEY not in json.dumps(report)
    env_rules = {f["rule"] for f in report["findings"] if f["path"] == ".env"}
    assert env_rules & {"tracked-env-file", "env-file", "unignored-env-file"}
    if shutil.which("git"):
        assert "tracked-env-file" in env_rules
    text = run_tool("security_scout", repo).stdout
    assert "HIGH (" in text and "app/config.py:2" in text


def test_code_reviewer_builtin(repo: Path) -> None:
    report = json.loads(run_tool("code_reviewer", repo, "--json", "--linter", "builtin").stdout)
    assert report["tool"] == "builtin"
    assert ("app/risky.py", 2) in located(report, "unused-import")
    assert ("app/risky.py", 15) in located(report, "bare-except")
    assert ("app/broken.py", 1) in located(report, "syntax-error")


def test_code_reviewer_default_linter(reports: dict[str, dict[str, Any]]) -> None:
    report = reports["code_reviewer"]
    assert report["tool"] in {"ruff", "pyflakes", "builtin"}
    unused = {"ruff": "F401", "pyflakes": "pyflakes", "builtin": "unused-import"}[report["tool"]]
    assert ("app/risky.py", 2) in located(report, unused)


def test_perf_optimizer(repo: Path, reports: dict[str, dict[str, Any]]) -> None:
    report = reports["perf_optimizer"]
    assert ("app/slow.py", 9) in located(report, "nested-loop-same-collection")
    assert ("app/slow.py", 16) in located(report, "sleep-in-async")
    assert "Largest source files" in run_tool("perf_optimizer", repo).stdout


def test_architect(reports: dict[str, dict[str, Any]]) -> None:
    report = reports["architect"]
    cycles = [f for f in report["findings"] if f["rule"] == "import-cycle"]
    assert [(f["path"], f["line"], f["severity"]) for f in cycles] == [("app/a.py", 2, "high")]
    assert "app.a → app.b → app.a" in cycles[0]["message"]
    assert "1 cycle" in report["summary"]


def test_doc_scribe(repo: Path, reports: dict[str, dict[str, Any]]) -> None:
    report = reports["doc_scribe"]
    assert ("app/risky.py", 6) in located(report, "missing-docstring")
    assert ("app/broken.py", 1) not in located(report, "missing-docstring")
    text = run_tool("doc_scribe", repo).stdout
    assert "app/slow.py: Slow code." in text
    assert "README.md outline" in text and "Install" in text


def test_api_designer(repo: Path, reports: dict[str, dict[str, Any]]) -> None:
    report = reports["api_designer"]
    assert ("app/web.py", 12) in located(report, "duplicate-route")
    assert ("app/web.py", 17) in located(report, "positional-heavy")
    text = run_tool("api_designer", repo).stdout
    assert "GET     /users" in text
    assert "make(a, b, c, d, e, f)" in text


def test_validator_runs_tests(reports: dict[str, dict[str, Any]]) -> None:
    report = reports["validator_test_runner"]
    assert ("tests/test_app.py", 6) in located(report, "test-failed")
    assert "1 failed, 1 passed" in report["summary"]
    assert report["tool"] in {"pytest", "unittest"}


def test_validator_without_tests(tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text("print('hi')\n")
    done = run_tool("validator_test_runner", tmp_path)
    assert done.returncode == 0
    assert "no tests found" in done.stdout
    assert done.stdout.rstrip().splitlines()[-1].startswith("SUMMARY: ")


def test_validator_timeout_stops_the_suite(tmp_path: Path) -> None:
    (tmp_path / "test_slow.py").write_text("import time\n\n\ndef test_slow():\n"
                                           "    time.sleep(60)\n")
    done = run_tool("validator_test_runner", tmp_path, "--json", "--timeout", "3")
    assert done.returncode == 0
    rules = {f["rule"] for f in json.loads(done.stdout)["findings"]}
    assert "test-timeout" in rules


def test_builder_python(repo: Path, reports: dict[str, dict[str, Any]]) -> None:
    report = reports["builder_python"]
    assert ("app/broken.py", 1) in located(report, "syntax-error")
    assert "hatchling.build" in run_tool("builder_python", repo).stdout


def test_builder_typescript(tmp_path: Path, reports: dict[str, dict[str, Any]]) -> None:
    assert located(reports["builder_typescript"], "no-typescript")
    (tmp_path / "package.json").write_text(json.dumps(
        {"name": "web", "scripts": {"build": "tsc"}, "devDependencies": {"typescript": "5"}}))
    (tmp_path / "tsconfig.json").write_text(
        '{\n  // settings\n  "compilerOptions": {\n    "strict": false,\n  },\n}\n')
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.ts").write_text("// @ts-ignore\nexport const a: any = 1;\n")
    report = json.loads(run_tool("builder_typescript", tmp_path, "--json").stdout)
    assert ("tsconfig.json", 4) in located(report, "strict-off")
    assert ("src/a.ts", 1) in located(report, "ts-ignore")
    assert not located(report, "invalid-json")


def front_matter(path: Path) -> dict[str, Any]:
    """The YAML front matter of an agent file, parsed strictly."""
    text = path.read_text(encoding="utf-8")
    assert text.startswith("---\n"), path
    end = text.index("\n---", 3)
    meta = yaml.safe_load(text[4:end])
    assert isinstance(meta, dict), path
    return meta


def test_shipped_agents_front_matter() -> None:
    files = sorted((ROOT / "agents").glob("*.md"))
    assert {p.stem for p in files} >= set(AGENTS)
    for path in files:
        meta = front_matter(path)
        assert meta["name"] == path.stem
        assert isinstance(meta["description"], str) and len(meta["description"]) > 40
        assert isinstance(meta["tools"], str) and "Read" in meta["tools"]
        assert meta["model"] == "inherit" and isinstance(meta["color"], str)
        assert meta["idempotent"] is True and isinstance(meta["capabilities"], list)
        command = meta["command"]
        assert isinstance(command, list) and all(isinstance(p, str) for p in command)
        assert command[:2] == ["{python}", "-m"] and command[-1] == "{workspace}"
        module = command[2].rsplit(".", 1)[-1]
        assert module in TOOLS and (ROOT / "orchestrator_tui" / "agent_tools" /
                                    f"{module}.py").is_file()
        assert "SUMMARY:" in path.read_text(encoding="utf-8").split("\n---", 2)[-1]


def test_default_workflow_has_the_eight_intents() -> None:
    data = yaml.safe_load((ROOT / "workflows" / "default.yaml").read_text(encoding="utf-8"))
    intents = data["intents"]
    assert set(intents) == INTENTS
    shipped = set(AGENTS)
    for name, intent in intents.items():
        assert intent["description"], name
        assert 6 <= len(intent["examples"]) <= 10, name
        if "agents" in intent:
            assert intent["parallel"] is True and intent["max_concurrent"] >= 1
            assert set(intent["agents"]) <= shipped, name
        else:
            for phase in intent["phases"]:
                assert set(phase["agents"]) <= shipped, name
    assert intents["analyze"]["agents"] == ["security-scout", "code-reviewer", "perf-optimizer"]
    assert intents["analyze"]["max_concurrent"] == 3
    phases = intents["build"]["phases"]
    assert [p["name"] for p in phases] == ["planning", "implementation", "validation"]
    assert phases[0]["agents"] == ["architect", "api-designer"]
    assert phases[1]["agents"] == ["builder-python", "builder-typescript"]
    assert phases[1]["depends_on"] == ["planning"]
    assert phases[2]["agents"] == ["validator-test-runner", "security-scout"]
    assert phases[2]["depends_on"] == ["implementation"]


def test_security_scout_follows_a_yaml_loader_through_an_assignment(tmp_path: Path) -> None:
    (tmp_path / "safe.py").write_text(
        "import yaml\nLOADER = getattr(yaml, 'CSafeLoader', yaml.SafeLoader)\n"
        "data = yaml.load('a: 1', Loader=LOADER)\n")
    (tmp_path / "unsafe.py").write_text(
        "import yaml\nLOADER = yaml.Loader\ndata = yaml.load('a: 1', Loader=LOADER)\n")
    report = json.loads(run_tool("security_scout", tmp_path, "--json").stdout)
    assert located(report, "yaml-load") == {("unsafe.py", 3)}
