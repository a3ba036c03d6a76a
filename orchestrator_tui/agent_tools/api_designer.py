"""API designer: the public API surface of a workspace and where it is inconsistent.

Lists public Python functions and classes with their signatures, HTTP routes declared with
Flask/FastAPI-style decorators, Django `path()` tables, Express or Go routers, and OpenAPI
documents. Flags mixed naming styles, positional-heavy signatures, boolean positional
parameters, duplicate routes and routes missing from the OpenAPI document.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator_tui.agent_tools.common import (
    Report,
    is_test_path,
    iter_statements,
    parse_python,
    plural,
    read_text,
    walk,
)
from orchestrator_tui.agent_tools.common import main as run_main

AGENT = "api-designer"
VERBS = {"get", "post", "put", "patch", "delete", "head", "options"}
ROUTE_DECORATORS = VERBS | {"route", "api_route", "websocket"}
JS_ROUTE = re.compile(r"\b(?:app|router|server|api)\.(get|post|put|patch|delete|all)\s*\(\s*"
                      r"['\"`](/[^'\"`]*)['\"`]")
GO_ROUTE = re.compile(r"\.(GET|POST|PUT|PATCH|DELETE|HandleFunc|Handle)\(\s*\"(/[^\"]*)\"")
OPENAPI_HINT = re.compile(r"""^\s*["']?(openapi|swagger)["']?\s*:""", re.MULTILINE)
YAML_PATH = re.compile(r"^  ['\"]?(/[^'\":]*)['\"]?:\s*$", re.MULTILINE)
PARAM = re.compile(r"\{[^}]*\}|<[^>]*>|:\w+")
SNAKE = re.compile(r"^_*[a-z][a-z0-9_]*$")
CAMEL = re.compile(r"^_*[a-z]+[A-Z][A-Za-z0-9]*$")
CAPWORDS = re.compile(r"^_*[A-Z][A-Za-z0-9]*$")
CAMEL_HUMP = re.compile(r"[a-z][A-Z]")
MAX_POSITIONAL = 5
SURFACE_LIMIT = 400


@dataclass(frozen=True, slots=True)
class Route:
    """One HTTP route declared in code."""

    method: str
    path: str
    handler: str
    rel: str
    line: int


def signature(node: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    """`name(args) -> returns`, shortened when very long."""
    text = f"{node.name}({ast.unparse(node.args)})"
    if node.returns is not None:
        text += f" -> {ast.unparse(node.returns)}"
    prefix = "async " if isinstance(node, ast.AsyncFunctionDef) else ""
    return prefix + (text if len(text) <= 110 else text[:107] + "...")


def check_signature(rel: str, node: ast.FunctionDef | ast.AsyncFunctionDef, owner: str,
                    report: Report) -> None:
    """Positional-heavy signatures and boolean positional parameters."""
    positional = [*node.args.posonlyargs, *node.args.args]
    if positional and positional[0].arg in {"self", "cls"}:
        positional = positional[1:]
    label = f"{owner}{node.name}()"
    if len(positional) > MAX_POSITIONAL and not node.args.kwonlyargs:
        report.add(rel, node.lineno, "low", "positional-heavy",
                   f"{label} takes {len(positional)} positional parameters; make the optional "
                   "ones keyword-only (after `*`)")
    defaults = node.args.defaults
    for arg, default in zip(positional[len(positional) - len(defaults):], defaults, strict=False):
        if isinstance(default, ast.Constant) and isinstance(default.value, bool):
            report.add(rel, node.lineno, "info", "boolean-positional",
                       f"{label}: `{arg.arg}={default.value}` can be passed positionally, so "
                       "calls read f(x, True); make it keyword-only")


def route_of(decorator: ast.expr) -> tuple[str, str] | None:
    """(method, path) of a route decorator such as `@app.get("/items")`."""
    if not (isinstance(decorator, ast.Call) and isinstance(decorator.func, ast.Attribute)):
        return None
    attr = decorator.func.attr
    if attr not in ROUTE_DECORATORS:
        return None
    path_node = decorator.args[0] if decorator.args else next(
        (k.value for k in decorator.keywords if k.arg in {"path", "rule"}), None)
    if not (isinstance(path_node, ast.Constant) and isinstance(path_node.value, str)):
        return None
    if attr in VERBS:
        return attr.upper(), path_node.value
    methods = next((k.value for k in decorator.keywords if k.arg == "methods"), None)
    if isinstance(methods, ast.List | ast.Tuple):
        names = [str(e.value).upper() for e in methods.elts if isinstance(e, ast.Constant)]
        return ",".join(names) or "GET", path_node.value
    return ("WS" if attr == "websocket" else "GET"), path_node.value


@dataclass
class Surface:
    """What the scan collects across modules."""

    report: Report
    lines: list[str] = field(default_factory=list)
    routes: list[Route] = field(default_factory=list)
    styles: Counter[str] = field(default_factory=Counter)
    functions: list[tuple[str, ast.AST, str]] = field(default_factory=list)


def python_module(rel: str, tree: ast.Module, surface: Surface) -> None:
    """Collect the public surface and routes of one module."""
    report, routes = surface.report, surface.routes
    private = any(p.startswith("_") and p not in {"__init__.py"} for p in rel.split("/"))
    for statement in iter_statements(tree.body):
        if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef):
            for decorator in statement.decorator_list:
                found = route_of(decorator)
                if found:
                    routes.append(Route(found[0], found[1], statement.name, rel,
                                        decorator.lineno))
    for node in ast.walk(tree) if rel.endswith("urls.py") else ():
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id in {"path", "re_path", "url"} \
                and node.args and isinstance(node.args[0], ast.Constant):
            handler = ast.unparse(node.args[1]) if len(node.args) > 1 else "?"
            routes.append(Route("ANY", "/" + str(node.args[0].value).lstrip("^/"), handler, rel,
                                node.lineno))
    if private or is_test_path(rel):
        return
    entries = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) \
                and not node.name.startswith("_"):
            surface.functions.append((rel, node, node.name))
            surface.styles["snake" if SNAKE.match(node.name) else
                  "camel" if CAMEL.match(node.name) else "other"] += 1
            check_signature(rel, node, "", report)
            entries.append(f"  {node.lineno:>4}  {signature(node)}")
        elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            entries.append(f"  {node.lineno:>4}  {class_line(rel, node, report)}")
    if entries:
        surface.lines.append(rel)
        surface.lines.extend(entries)


def class_line(rel: str, node: ast.ClassDef, report: Report) -> str:
    """`class Name(bases): __init__ signature; public methods`, checking method signatures."""
    if not CAPWORDS.match(node.name):
        report.add(rel, node.lineno, "low", "naming-style",
                   f"class {node.name} is not CapWords")
    bases = ", ".join(ast.unparse(b) for b in node.bases)
    text = f"class {node.name}({bases})" if bases else f"class {node.name}"
    methods = []
    for item in node.body:
        if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
            if item.name == "__init__":
                args = ast.unparse(item.args).removeprefix("self, ").removeprefix("self")
                text += f"({args})" if len(args) < 80 else "(...)"
                check_signature(rel, item, f"{node.name}.", report)
            elif not item.name.startswith("_"):
                methods.append(item.name)
                check_signature(rel, item, f"{node.name}.", report)
    if methods:
        shown = ", ".join(methods[:8]) + (f", +{len(methods) - 8}" if len(methods) > 8 else "")
        text += f": {shown}"
    return text


def naming_findings(tree_names: list[tuple[str, ast.AST, str]], names: Counter[str],
                    report: Report) -> None:
    """Flag public functions whose naming style is the workspace's minority style."""
    if names["snake"] and names["camel"]:
        minority = "camel" if names["snake"] >= names["camel"] else "snake"
        pattern = CAMEL if minority == "camel" else SNAKE
        majority = "snake_case" if minority == "camel" else "camelCase"
        for rel, node, name in tree_names:
            if pattern.match(name):
                report.add(rel, getattr(node, "lineno", 1), "low", "naming-style",
                           f"function {name} breaks the workspace's {majority} convention")


def normalise(path: str) -> str:
    """A route path with parameters as `{}` and no trailing slash, for comparisons."""
    return PARAM.sub("{}", path).rstrip("/") or "/"


def route_findings(routes: list[Route], report: Report) -> None:
    """Duplicate routes, mixed segment styles and mixed trailing slashes."""
    seen: dict[tuple[str, str], Route] = {}
    for route in routes:
        key = (route.method, normalise(route.path))
        if key in seen:
            first = seen[key]
            report.add(route.rel, route.line, "medium", "duplicate-route",
                       f"{route.method} {route.path} is also handled at {first.rel}:{first.line}")
        seen.setdefault(key, route)
    styles: dict[str, list[Route]] = {"snake_case": [], "kebab-case": [], "camelCase": []}
    for route in routes:
        segments = [s for s in PARAM.sub("", route.path).split("/") if s]
        for segment in segments:
            if "_" in segment:
                styles["snake_case"].append(route)
            elif "-" in segment:
                styles["kebab-case"].append(route)
            elif CAMEL_HUMP.search(segment):
                styles["camelCase"].append(route)
    used = {k: v for k, v in styles.items() if v}
    if len(used) > 1:
        main_style = max(used, key=lambda k: len(used[k]))
        for style, members in used.items():
            for route in {id(r): r for r in members}.values() if style != main_style else ():
                report.add(route.rel, route.line, "low", "route-naming",
                           f"{route.path} uses {style} segments; most routes use {main_style}")
    slashed = [r for r in routes if len(r.path) > 1 and r.path.endswith("/")]
    if slashed and len(slashed) < len(routes) and not all(r.method == "ANY" for r in routes):
        minority = slashed if len(slashed) * 2 < len(routes) else \
            [r for r in routes if not r.path.endswith("/") and len(r.path) > 1]
        for route in minority:
            report.add(route.rel, route.line, "low", "trailing-slash",
                       f"{route.path}: trailing slashes are used inconsistently across routes")


def openapi_documents(root: Path, report: Report) -> tuple[list[str], set[str]]:
    """Lines describing each OpenAPI/Swagger document, and the paths they declare."""
    lines: list[str] = []
    declared: set[str] = set()
    for file in walk(root, (".json", ".yaml", ".yml")):
        text = read_text(file.path) or ""
        named = file.path.stem.lower() in {"openapi", "swagger", "api"}
        if not OPENAPI_HINT.search(text[:4000]) or (not named and "paths" not in text):
            continue
        report.files_scanned += 1
        if file.rel.endswith(".json"):
            try:
                data = json.loads(text)
            except json.JSONDecodeError as error:
                report.add(file.rel, error.lineno, "medium", "openapi-invalid",
                           f"OpenAPI document is not valid JSON: {error.msg}")
                continue
            paths = list((data.get("paths") or {}) if isinstance(data, dict) else {})
        else:
            section = text.split("\npaths:", 1)
            paths = YAML_PATH.findall(section[1]) if len(section) > 1 else []
        declared.update(normalise(p) for p in paths)
        lines.append(f"{file.rel}: {plural(len(paths), 'path')}")
    return lines, declared


def analyse(root: Path, args: argparse.Namespace) -> Report:
    """Describe the workspace's API surface."""
    report = Report(AGENT, root)
    collected = Surface(report)
    routes = collected.routes
    for file in walk(root, (".py", ".js", ".ts", ".mjs", ".go")):
        text = read_text(file.path)
        if text is None:
            continue
        report.files_scanned += 1
        if not file.rel.endswith(".py"):
            pattern = GO_ROUTE if file.rel.endswith(".go") else JS_ROUTE
            for match in pattern.finditer(text):
                method = match.group(1).upper().replace("HANDLEFUNC", "ANY").replace("HANDLE",
                                                                                     "ANY")
                routes.append(Route(method, match.group(2), "", file.rel,
                                    text.count("\n", 0, match.start()) + 1))
            continue
        tree = parse_python(text, file.rel)
        if tree is None:
            continue
        python_module(file.rel, tree, collected)
    naming_findings(collected.functions, collected.styles, report)
    route_findings(routes, report)
    specs, declared = openapi_documents(root, report)
    if declared:
        for route in routes:
            if normalise(route.path) not in declared:
                report.add(route.rel, route.line, "info", "route-not-in-spec",
                           f"{route.method} {route.path} is not in the OpenAPI document")
    surface = collected.lines
    shown = surface[:SURFACE_LIMIT]
    if len(surface) > SURFACE_LIMIT:
        shown.append(f"... {len(surface) - SURFACE_LIMIT} more lines (see the modules)")
    report.section("Public Python API (line, signature)", shown)
    report.section("HTTP routes", [f"{r.method:<7} {r.path}  "
                                   + (f"→ {r.handler} " if r.handler else "")
                                   + f"({r.rel}:{r.line})" for r in routes])
    report.section("OpenAPI documents", specs)
    public = sum(1 for line in surface if line.startswith("  "))
    report.notes.append(f"{plural(public, 'public definition')}, {plural(len(routes), 'route')}, "
                        f"{plural(len(specs), 'OpenAPI document')}")
    return report


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    return run_main(AGENT, analyse, "Describe the public API surface and its inconsistencies.",
                    argv=argv)


if __name__ == "__main__":
    raise SystemExit(main())
