"""Security scout: committed secrets, risky calls and tracked `.env` files.

Secrets are found with patterns over every text file; risky calls with the syntax tree in
Python and with patterns in other source files. Secret values are never printed in full.
"""

from __future__ import annotations

import argparse
import ast
import math
import re
from collections import Counter
from pathlib import Path

from orchestrator_tui.agent_tools.common import (
    LineIndex,
    Report,
    SourceFile,
    find_program,
    import_aliases,
    is_test_path,
    parse_python,
    read_text,
    resolve_call,
    run_program,
    walk,
)
from orchestrator_tui.agent_tools.common import main as run_main

AGENT = "security-scout"
SECRET_PATTERNS: list[tuple[str, str, re.Pattern[str]]] = [
    ("aws-access-key", "high", re.compile(r"(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("aws-secret-key", "high", re.compile(
        r"(?i)aws_?secret_?access_?key\W{0,4}[=:]\s*['\"]?([A-Za-z0-9/+=]{40})\b")),
    ("private-key", "high", re.compile(
        r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |PGP |ENCRYPTED )?PRIVATE KEY(?: BLOCK)?-----")),
    ("github-token", "high", re.compile(
        r"gh[pousr]_[A-Za-z0-9]{36,}\b|github_pat_[A-Za-z0-9_]{60,}\b")),
    ("slack-token", "high", re.compile(r"xox[abposr]-[A-Za-z0-9-]{10,}")),
    ("slack-webhook", "medium", re.compile(
        r"https://hooks\.slack\.com/services/T[A-Za-z0-9]+/B[A-Za-z0-9]+/[A-Za-z0-9]+")),
    ("stripe-key", "high", re.compile(r"(?:sk|rk)_live_[0-9a-zA-Z]{20,}\b")),
    ("google-api-key", "high", re.compile(r"AIza[0-9A-Za-z_\-]{35}\b")),
]
"""Token formats. Patterns start with a literal (fast to search); the word boundary before
a match is checked in code."""
SECRET_NAME = (r"[A-Za-z0-9_.\-]*(?:password|passwd|pwd|secret|token|api[_\-]?key|apikey|"
               r"access[_\-]?key|auth[_\-]?key|private[_\-]?key|credentials?)[A-Za-z0-9_]*")
SECRET_WORD = re.compile(r"(?i)(?=[pstac])(?:password|passwd|pwd|secret|token|api[_\-]?key|"
                         r"access[_\-]?key|auth[_\-]?key|private[_\-]?key|credential)")
"""Lines mentioning one of these words are checked for secret assignments."""
QUOTED_ASSIGNMENT = re.compile(
    rf"(?i)\b({SECRET_NAME})['\"]?\s*(?::=|=>|[:=])\s*[bfru]?(['\"])([^'\"\s]{{8,200}})\2")
BARE_ASSIGNMENT = re.compile(
    rf"(?im)^\s*(?:export\s+)?({SECRET_NAME})\s*[:=]\s*([^'\"\s#]{{8,200}})\s*$")
CONFIG_SUFFIXES = (".env", ".ini", ".cfg", ".conf", ".properties", ".toml", ".yaml", ".yml")
PLACEHOLDER = re.compile(
    r"(?i)(example|changeme|change_me|your|dummy|placeholder|sample|redacted|xxxx|\*\*\*|"
    r"\$\{|\{\{|<|%\(|os\.environ|getenv|process\.env|\.\.\.|none|null|true|false)")
DOTTED_NAME = re.compile(r"[a-z_]+(\.[a-z_]+)+")
NOT_SECRET_CHARS = re.compile(r"[\[\]()\\*^$|?{}<>,;]")
"""Regexes, templates and expressions, not credentials."""
CODE_SUFFIXES = (".js", ".jsx", ".ts", ".tsx", ".mjs", ".cjs", ".php", ".rb", ".go", ".java",
                 ".sh", ".bash", ".zsh", ".ps1")
SHELL_NAMES = ("Dockerfile", "Makefile", "Jenkinsfile")
CODE_PATTERNS: list[tuple[str, str, re.Pattern[str], str]] = [
    ("eval", "medium", re.compile(r"(?<![\w.])eval\s*\("), "eval() runs arbitrary code"),
    ("new-function", "medium", re.compile(r"\bnew\s+Function\s*\("),
     "new Function() compiles code from strings"),
    ("shell-true", "high", re.compile(r"\bshell\s*:\s*true\b"),
     "child process started through a shell; pass an argument array instead"),
    ("tls-verify-off", "high", re.compile(
        r"rejectUnauthorized\s*:\s*false|NODE_TLS_REJECT_UNAUTHORIZED\W{0,3}0|"
        r"InsecureSkipVerify\s*:\s*true|CURLOPT_SSL_VERIFYPEER\s*,\s*(?:false|0)"),
     "TLS certificate verification disabled"),
    ("curl-insecure", "medium", re.compile(r"\bcurl\b[^\n]*\s(?:-k|--insecure)\b"),
     "curl without certificate verification"),
    ("chmod-777", "medium", re.compile(r"\bchmod\s+(?:-R\s+)?0?777\b"),
     "world-writable permissions"),
    ("pipe-to-shell", "medium", re.compile(r"\b(?:curl|wget)\b[^\n|]*\|\s*(?:sudo\s+)?(?:ba)?sh\b"),
     "downloaded script piped straight into a shell"),
]
RISKY_WORD = re.compile(r"\b(?:eval|exec|pickle|cPickle|dill|marshal|shelve|read_pickle|yaml|"
                        r"system|popen|getoutput|getstatusoutput|md5|sha1|hashlib|mktemp|chmod|"
                        r"shell|verify|create_subprocess_shell)\b")
"""Python files without any of these words cannot contain a risky call: skip parsing them."""
ENV_TEMPLATES = (".example", ".sample", ".template", ".dist", ".defaults")


def entropy(value: str) -> float:
    """Shannon entropy in bits per character."""
    counts = Counter(value)
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


def redact(value: str) -> str:
    """A recognisable but harmless form of a secret."""
    return f"{value[:4]}…({len(value)} chars)"


def scan_secrets(file: SourceFile, text: str, report: Report) -> None:
    """Known token formats anywhere, and high-entropy values assigned to secret-like names."""
    index: LineIndex | None = None

    def line_at(offset: int) -> int:
        nonlocal index
        index = index or LineIndex(text)
        return index.line(offset)

    for rule, severity, pattern in SECRET_PATTERNS:
        for match in pattern.finditer(text):
            before = text[match.start() - 1] if match.start() else " "
            if before.isalnum() or before == "_":
                continue
            value = match.group(match.lastindex or 0)
            label = rule.replace("-", " ")
            if "EXAMPLE" in value:
                report.add(file.rel, line_at(match.start()), "low", rule,
                           f"documented example {label} {redact(value)}: harmless, but other "
                           "scanners will flag it too")
                continue
            report.add(file.rel, line_at(match.start()), severity, rule,
                       f"{label} committed: {redact(value)}; rotate it, then remove it"
                       if rule != "private-key" else "private key block committed; rotate it")
    config = file.rel.endswith(CONFIG_SUFFIXES) or file.path.name.startswith(".env")
    assignments = []
    lowered = text.lower()
    if len(lowered) != len(text):
        lowered = text
    for start in sorted({lowered.rfind("\n", 0, m.start()) + 1
                         for m in SECRET_WORD.finditer(lowered)}):
        end = text.find("\n", start)
        line = text[start:end if end >= 0 else len(text)]
        assignments += [(start + m.start(), m.group(1), m.group(3))
                        for m in QUOTED_ASSIGNMENT.finditer(line)]
        if config:
            assignments += [(start + m.start(), m.group(1), m.group(2))
                            for m in BARE_ASSIGNMENT.finditer(line)]
    for offset, name, value in assignments:
        if PLACEHOLDER.search(value) or entropy(value) < 3.0 or value.isidentifier():
            continue
        if DOTTED_NAME.fullmatch(value) or NOT_SECRET_CHARS.search(value):
            continue
        report.add(file.rel, line_at(offset), "medium", "hardcoded-secret",
                   f"high-entropy value assigned to {name!r}: {redact(value)}")


class RiskyCalls(ast.NodeVisitor):
    """Finds dangerous calls in one Python module."""

    def __init__(self, rel: str, tree: ast.Module, report: Report) -> None:
        self.rel = rel
        self.report = report
        self.aliases = import_aliases(tree)
        self.classes = {node.name: [ast.unparse(b) for b in node.bases]
                        for node in tree.body if isinstance(node, ast.ClassDef)}
        # `LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)` and the like
        self.classes.update({target.id: [ast.unparse(node.value)]
                             for node in tree.body if isinstance(node, ast.Assign)
                             for target in node.targets if isinstance(target, ast.Name)})
        self.in_tests = is_test_path(rel)

    def safe_loader(self, name: str, depth: int = 0) -> bool:
        """Whether a YAML loader is a safe one, following aliases and local subclasses."""
        if "Safe" in name or "Safe" in self.aliases.get(name, ""):
            return True
        return depth < 5 and any(self.safe_loader(base, depth + 1)
                                 for base in self.classes.get(name, []))

    def flag(self, node: ast.AST, severity: str, rule: str, message: str) -> None:
        """Record a finding; in test code one level lower, as it never runs in production."""
        if self.in_tests:
            severity = {"high": "medium", "medium": "low"}.get(severity, severity)
            message += " (test code)"
        self.report.add(self.rel, getattr(node, "lineno", 1), severity, rule, message)

    def visit_Call(self, node: ast.Call) -> None:
        name = resolve_call(node.func, self.aliases)
        literal = bool(node.args) and isinstance(node.args[0], ast.Constant)
        keywords = {k.arg: k.value for k in node.keywords if k.arg}
        if name in {"eval", "exec"}:
            self.flag(node, "low" if literal else "high", name,
                      f"{name}() on a {'constant' if literal else 'dynamic'} value runs code")
        elif name in {"pickle.loads", "pickle.load", "cPickle.loads", "dill.loads",
                      "marshal.loads", "shelve.open", "pandas.read_pickle"}:
            self.flag(node, "medium", "unsafe-deserialization",
                      f"{name}() executes code hidden in untrusted data")
        elif name in {"yaml.load", "yaml.load_all"}:
            loader = keywords.get("Loader") or (node.args[1] if len(node.args) > 1 else None)
            if loader is None or not self.safe_loader(ast.unparse(loader)):
                self.flag(node, "high", "yaml-load",
                          f"{name}() without SafeLoader can build arbitrary objects")
        elif name in {"yaml.unsafe_load", "yaml.full_load"}:
            self.flag(node, "medium", "yaml-load", f"{name}() is not the safe loader")
        elif name in {"os.system", "os.popen", "subprocess.getoutput",
                      "subprocess.getstatusoutput", "commands.getoutput"}:
            self.flag(node, "medium" if literal else "high", "os-system",
                      f"{name}() runs a shell command line; use subprocess with an argv list")
        elif name in {"hashlib.md5", "hashlib.sha1"} or (
                name == "hashlib.new" and literal
                and str(getattr(node.args[0], "value", "")).lower() in {"md5", "sha1"}):
            used = keywords.get("usedforsecurity")
            if not (isinstance(used, ast.Constant) and used.value is False):
                self.flag(node, "low", "weak-hash", "MD5/SHA-1 are broken for security use; "
                          "use sha256, or pass usedforsecurity=False for checksums")
        elif name == "tempfile.mktemp":
            self.flag(node, "medium", "mktemp",
                      "tempfile.mktemp() is racy; use mkstemp() or NamedTemporaryFile()")
        elif name.endswith("chmod"):
            mode = node.args[-1] if node.args else keywords.get("mode")
            if isinstance(mode, ast.Constant) and isinstance(mode.value, int) \
                    and mode.value & 0o002:
                self.flag(node, "medium", "chmod-777",
                          f"world-writable permissions {oct(mode.value)}")
        self.keyword_checks(node, name, keywords, literal)
        self.generic_visit(node)

    def keyword_checks(self, node: ast.Call, name: str, keywords: dict[str, ast.expr],
                       literal: bool) -> None:
        """Risky keyword arguments of any call: shell=True and verify=False."""
        shell = keywords.get("shell")
        if isinstance(shell, ast.Constant) and shell.value is True:
            self.flag(node, "medium" if literal else "high", "shell-true",
                      f"{name or 'call'}(shell=True) runs through a shell; pass an argv list")
        verify = keywords.get("verify")
        if isinstance(verify, ast.Constant) and verify.value is False:
            self.flag(node, "high", "tls-verify-off",
                      f"{name or 'call'}(verify=False) disables certificate checks")
        if name == "asyncio.create_subprocess_shell":
            self.flag(node, "medium", "shell-true", "create_subprocess_shell runs via a shell")


def scan_code(file: SourceFile, text: str, report: Report) -> None:
    """Pattern checks for risky calls in non-Python source and shell-like files."""
    index = LineIndex(text)
    for rule, severity, pattern, message in CODE_PATTERNS:
        for match in pattern.finditer(text):
            report.add(file.rel, index.line(match.start()), severity, rule, message)


def is_env_file(name: str) -> bool:
    """`.env`, `.env.local`, `prod.env`, but not `.env.example` and the like."""
    if name.endswith(ENV_TEMPLATES):
        return False
    return name == ".env" or name.startswith(".env.") or name.endswith(".env")


def check_env_files(root: Path, files: list[SourceFile], report: Report) -> None:
    """Flag `.env` files: tracked ones are high, ones that git does not ignore are medium."""
    env_files = [f.rel for f in files if is_env_file(f.path.name)]
    git = find_program("git")
    if git and (root / ".git").exists():
        listed = run_program([git, "-C", str(root), "ls-files", "-z"], root, 60)
        tracked = {p for p in listed.stdout.split("\0") if is_env_file(p.rsplit("/", 1)[-1])}
        for rel in sorted(tracked):
            report.add(rel, 1, "high", "tracked-env-file",
                       ".env file is committed; remove it from git and rotate its values")
        untracked = [rel for rel in env_files if rel not in tracked]
        if untracked:
            ignored = run_program([git, "-C", str(root), "check-ignore", "--", *untracked],
                                  root, 60)
            ignored_set = set(ignored.stdout.split())
            for rel in untracked:
                if rel not in ignored_set:
                    report.add(rel, 1, "medium", "unignored-env-file",
                               ".env file is not in .gitignore; it will be committed by accident")
        return
    for rel in env_files:
        report.add(rel, 1, "medium", "env-file",
                   ".env file in the workspace; make sure it is never committed")


def analyse(root: Path, args: argparse.Namespace) -> Report:
    """Scan the workspace."""
    report = Report(AGENT, root)
    files = walk(root)
    report.files_scanned = len(files)
    parsed = python = 0
    for file in files:
        text = read_text(file.path)
        if text is None:
            continue
        scan_secrets(file, text, report)
        if file.rel.endswith(".py"):
            python += 1
            tree = parse_python(text, file.rel) if RISKY_WORD.search(text) else None
            if tree is not None:
                parsed += 1
                RiskyCalls(file.rel, tree, report).visit(tree)
        elif file.rel.endswith(CODE_SUFFIXES) or file.path.name in SHELL_NAMES:
            scan_code(file, text, report)
    check_env_files(root, files, report)
    report.tool = "builtin+git" if find_program("git") and (root / ".git").exists() \
        else "builtin"
    secrets = sum(1 for f in report.findings
                  if f.rule in {r for r, _, _ in SECRET_PATTERNS} | {"hardcoded-secret"})
    report.notes.append(f"{secrets} possible secret{'' if secrets == 1 else 's'}")
    report.section("Scope", [f"{len(files)} text files checked for secrets",
                             f"{python} Python modules checked for risky calls ({parsed} "
                             "mention risky names and were parsed)"])
    return report


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    return run_main(AGENT, analyse, "Scan a workspace for committed secrets and risky calls.",
                    argv=argv)


if __name__ == "__main__":
    raise SystemExit(main())
