"""Architect: the module dependency graph of a workspace.

Python imports are resolved to the workspace's own modules; the report gives import cycles,
fan-in and fan-out leaders, and a layer summary per package showing which packages depend on
which. For JavaScript and TypeScript it counts import edges between folders.
"""

from __future__ import annotations

import argparse
import ast
import re
from collections import Counter, defaultdict
from pathlib import Path, PurePosixPath

from orchestrator_tui.agent_tools.common import (
    Report,
    dotted_name,
    is_test_path,
    iter_statements,
    parse_python,
    plural,
    read_text,
    walk,
)
from orchestrator_tui.agent_tools.common import main as run_main

AGENT = "architect"
JS_SUFFIXES = (".js", ".jsx", ".ts", ".tsx", ".mjs", ".cjs")
JS_IMPORT = re.compile(
    r"""(?:\bimport\s+(?:[\w*{}\s,]+\s+from\s+)?|\bexport\s+[\w*{}\s,]+\s+from\s+|"""
    r"""\brequire\s*\(\s*|\bimport\s*\(\s*)['"]([^'"]+)['"]""")
HIGH_FAN_OUT = 15
Edge = tuple[str, str]


def module_names(files: list[tuple[str, Path]]) -> dict[str, str]:
    """Dotted module name of each Python file (by relative path), following `__init__.py`."""
    rels = {rel for rel, _ in files}
    names: dict[str, str] = {}
    for rel, _ in files:
        parts = list(PurePosixPath(rel).with_suffix("").parts)
        start = len(parts) - 1
        while start > 0 and "/".join([*parts[:start], "__init__.py"]) in rels:
            start -= 1
        dotted = parts[start:]
        if dotted[-1] == "__init__":
            dotted = dotted[:-1] or parts[-2:-1]
        names[rel] = ".".join(dotted)
    return names


def imported(tree: ast.Module, module: str,
             is_package: bool) -> list[tuple[str, int, bool, int]]:
    """(candidate module name, line, eager, member) for each import, relative ones resolved.

    `member` is 1 when the last part of the candidate may be a name rather than a module
    (`from package import name`), else 0.

    Eager imports run when the module is imported (not inside a function or class); imports
    under `if TYPE_CHECKING:` never run and are left out.
    """
    found: list[tuple[str, int, bool, int]] = []
    eager = {id(n) for n in iter_statements(tree.body, nested=False)}
    guarded = {id(child) for node in iter_statements(tree.body) if isinstance(node, ast.If)
               and dotted_name(node.test).endswith("TYPE_CHECKING")
               for child in iter_statements(node.body)}
    for node in iter_statements(tree.body):
        if id(node) in guarded:
            continue
        top = id(node) in eager
        if isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno, top, 0) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                keep = len(package) - (node.level - 1)
                if keep < 0:
                    continue
                base = ".".join([*package[:keep], *([base] if base else [])])
            found.extend((f"{base}.{alias.name}" if base else alias.name, node.lineno, top, 1)
                         for alias in node.names)
    return found


def resolve(candidate: str, known: set[str]) -> str | None:
    """The longest prefix of a dotted name that is a workspace module."""
    parts = candidate.split(".")
    for end in range(len(parts), 0, -1):
        name = ".".join(parts[:end])
        if name in known:
            return name
    return None


def strongly_connected(nodes: set[str], edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one node (iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    result: list[list[str]] = []
    counter = 0
    for start in sorted(nodes):
        if start in index:
            continue
        work = [(start, iter(sorted(edges.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        result.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = counter
                counter += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(edges.get(child, ())))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return result


def cycle_path(component: list[str], edges: dict[str, set[str]]) -> list[str]:
    """A shortest cycle through the first module of a strongly connected component."""
    members = set(component)
    start = component[0]
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(edges.get(node, ())):
                if child not in members:
                    continue
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [*reversed(path), start]
                if child not in previous:
                    previous[child] = node
                    following.append(child)
        frontier = following
    return [*component, start]


def python_graph(root: Path, report: Report) -> None:
    """Build and report the Python module graph."""
    files = [(f.rel, f.path) for f in walk(root, (".py",))]
    names = module_names(files)
    known = set(names.values())
    rel_of = {name: rel for rel, name in names.items()}
    edges: dict[str, set[str]] = defaultdict(set)
    top_edges: dict[str, set[str]] = defaultdict(set)
    lines: dict[Edge, int] = {}
    sizes: dict[str, int] = {}
    for rel, path in files:
        text = read_text(path)
        tree = parse_python(text, rel) if text is not None else None
        if tree is None:
            continue
        module = names[rel]
        sizes[module] = text.count("\n") if text else 0
        for candidate, line, top, member in imported(tree, module, rel.endswith("__init__.py")):
            target = resolve(candidate, known)
            if target is None or target == module:
                continue
            dropped = candidate.count(".") - target.count(".")
            if module.startswith(target + ".") and dropped > member:
                # a submodule that is not a workspace file (an extension module, say): importing
                # it only touches the already-initialising parent package, which is no cycle
                continue
            edges[module].add(target)
            lines.setdefault((module, target), line)
            if top:
                top_edges[module].add(target)
    report.files_scanned += len(files)
    if not files:
        return
    top_components = {tuple(c) for c in strongly_connected(known, top_edges)}
    cycles = strongly_connected(known, edges)
    for component in cycles:
        eager = tuple(component) in top_components
        chain = cycle_path(component, top_edges if eager else edges)
        first, second = chain[0], chain[1]
        report.add(rel_of[first], lines.get((first, second), 1), "high" if eager else "low",
                   "import-cycle" if eager else "lazy-import-cycle",
                   f"import cycle: {' → '.join(chain)}"
                   + ("" if eager else " (only through imports inside functions)"))
    edge_count = sum(len(t) for t in edges.values())
    report.notes.append(f"{plural(len(known), 'module')}, "
                        f"{plural(edge_count, 'internal import')}, {plural(len(cycles), 'cycle')}")
    fan_in: Counter[str] = Counter(t for targets in edges.values() for t in targets)
    fan_out = {m: len(t) for m, t in edges.items()}
    for module, count in fan_out.items():
        if count > HIGH_FAN_OUT:
            report.add(rel_of[module], 1, "low", "high-fan-out",
                       f"{module} imports {count} workspace modules; it may do too much")
    report.section("Most imported modules (fan-in)",
                   [f"{n:>3}  {m}" for m, n in fan_in.most_common(8)])
    report.section("Modules importing the most (fan-out)",
                   [f"{n:>3}  {m}" for m, n in sorted(fan_out.items(), key=lambda i: -i[1])[:8]])
    layers(rel_of, edges, sizes, lines, report)


def layer_of(rel: str) -> str:
    """A file's layer: its folder, at most two levels deep (`app/core`), or `(root)`."""
    folder = rel.split("/")[:-1]
    return "/".join(folder[:2]) or "(root)"


def layers(rel_of: dict[str, str], edges: dict[str, set[str]], sizes: dict[str, int],
           lines: dict[Edge, int], report: Report) -> None:
    """Summarise folders: size, and which other folders each one imports from."""
    members: dict[str, list[str]] = defaultdict(list)
    for module, rel in rel_of.items():
        members[layer_of(rel)].append(module)
    depends: dict[str, Counter[str]] = defaultdict(Counter)
    graph: dict[str, set[str]] = defaultdict(set)
    witness: dict[Edge, Edge] = {}
    for source, targets in sorted(edges.items()):
        for target in sorted(targets):
            a, b = layer_of(rel_of[source]), layer_of(rel_of[target])
            if a == b:
                continue
            depends[a][b] += 1
            # a package re-exporting its own submodules, or a test, makes no layer cycle
            reexport = rel_of[source].endswith("__init__.py") and target.startswith(source + ".")
            if not (reexport or is_test_path(rel_of[source])):
                graph[a].add(b)
                witness.setdefault((a, b), (source, target))
    body = []
    for layer in sorted(members):
        uses = ", ".join(f"{b} ({n})" for b, n in sorted(depends[layer].items())) or "nothing"
        size = sum(sizes.get(m, 0) for m in members[layer])
        count = len(members[layer])
        body.append(f"{layer}: {count} module{'' if count == 1 else 's'}, {size} lines "
                    f"→ uses {uses}")
    report.section("Layers (folder → folders it imports from, with import counts)", body)
    for component in strongly_connected(set(members), graph):
        path = cycle_path(component, graph)
        source, target = witness[(path[0], path[1])]
        report.add(rel_of[source], lines.get((source, target), 1), "medium", "layer-cycle",
                   f"folders import each other: {' → '.join(path)} "
                   f"(e.g. {source} imports {target})")


def js_graph(root: Path, report: Report) -> None:
    """Count import edges between folders of JavaScript/TypeScript sources."""
    files = walk(root, JS_SUFFIXES)
    if not files:
        return
    report.files_scanned += len(files)
    folders: Counter[tuple[str, str]] = Counter()
    packages: Counter[str] = Counter()
    for file in files:
        text = read_text(file.path) or ""
        source = PurePosixPath(file.rel).parent
        for spec in JS_IMPORT.findall(text):
            if spec.startswith("."):
                target = PurePosixPath(*(source / spec).parts)
                resolved = str(target.parent if target.suffix or target.name else target)
                parts: list[str] = []
                for part in resolved.split("/"):
                    if part == "..":
                        if parts:
                            parts.pop()
                    elif part not in {".", ""}:
                        parts.append(part)
                folders[(str(source), "/".join(parts) or ".")] += 1
            else:
                packages[spec.split("/")[0] if not spec.startswith("@")
                         else "/".join(spec.split("/")[:2])] += 1
    between = [(pair, n) for pair, n in folders.most_common() if pair[0] != pair[1]]
    report.section("JS/TS import edges between folders",
                   [f"{n:>3}  {a} → {b}" for (a, b), n in between[:15]])
    report.section("JS/TS external packages", [f"{n:>3}  {p}" for p, n in
                                                packages.most_common(10)])
    crossing = sum(n for _, n in between)
    report.notes.append(f"{plural(len(files), 'JS/TS file')}, "
                        f"{plural(crossing, 'cross-folder import')}")


def analyse(root: Path, args: argparse.Namespace) -> Report:
    """Map the workspace's dependencies."""
    report = Report(AGENT, root)
    python_graph(root, report)
    js_graph(root, report)
    if not report.files_scanned:
        report.notes.append("no Python or JS/TS sources")
    return report


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    return run_main(AGENT, analyse, "Map module dependencies, cycles and layers.", argv=argv)


if __name__ == "__main__":
    raise SystemExit(main())
