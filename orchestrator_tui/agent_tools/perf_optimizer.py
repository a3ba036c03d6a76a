"""Performance optimizer: static hot-spot hints in Python code, and the largest source files.

Hints: nested loops over the same collection, string building with `+=` in a loop, list
membership or `.index` inside a loop, regexes compiled in a loop, `time.sleep` and other
blocking calls in `async def`, deep loop nesting and huge functions.
"""

from __future__ import annotations

import argparse
import ast
from pathlib import Path

from orchestrator_tui.agent_tools.common import (
    Report,
    import_aliases,
    is_test_path,
    iter_statements,
    parse_python,
    read_text,
    resolve_call,
    walk,
)
from orchestrator_tui.agent_tools.common import main as run_main

AGENT = "perf-optimizer"
CODE_SUFFIXES = (".py", ".js", ".jsx", ".ts", ".tsx", ".mjs", ".go", ".rs", ".java", ".c",
                 ".cc", ".cpp", ".h", ".rb", ".php", ".cs", ".kt", ".swift")
HUGE_FUNCTION = 150
LARGE_FILE = 1000
BLOCKING = {
    "requests.get", "requests.post", "requests.put", "requests.patch", "requests.delete",
    "requests.head", "requests.request", "urllib.request.urlopen", "subprocess.run",
    "subprocess.call", "subprocess.check_call", "subprocess.check_output", "os.system",
    "socket.create_connection", "sqlite3.connect", "input", "os.popen", "shutil.copytree",
    "shutil.rmtree",
}
REGEX_CALLS = {"re.match", "re.search", "re.fullmatch", "re.findall", "re.finditer", "re.sub",
               "re.split", "re.subn"}
LIST_SEARCHES = {"index", "count", "remove"}
Function = ast.FunctionDef | ast.AsyncFunctionDef


def is_small_range(node: ast.AST) -> bool:
    """`range(3)` and literal collections: nesting them is not a hot spot."""
    if isinstance(node, ast.Tuple | ast.List | ast.Set | ast.Constant):
        return True
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == "range" and all(isinstance(a, ast.Constant) for a in node.args))


def typed_names(body: list[ast.stmt]) -> tuple[set[str], set[str]]:
    """Names assigned a list and names assigned a string in a body (not nested functions)."""
    lists: set[str] = set()
    strings: set[str] = set()
    for node in iter_statements(body, nested=False):
        value, targets = None, []
        if isinstance(node, ast.Assign):
            value, targets = node.value, node.targets
        elif isinstance(node, ast.AnnAssign):
            value, targets = node.value, [node.target]
            if ast.unparse(node.annotation).lower().startswith("list"):
                lists.update(t.id for t in targets if isinstance(t, ast.Name))
        names = [t.id for t in targets if isinstance(t, ast.Name)]
        if isinstance(value, ast.List | ast.ListComp) or (
                isinstance(value, ast.Call) and isinstance(value.func, ast.Name)
                and value.func.id in {"list", "sorted"}):
            lists.update(names)
        elif isinstance(value, ast.JoinedStr) or (
                isinstance(value, ast.Constant) and isinstance(value.value, str)):
            strings.update(names)
    return lists, strings


class HotSpots(ast.NodeVisitor):
    """Walks one module keeping track of enclosing loops and the current function."""

    def __init__(self, rel: str, tree: ast.Module, report: Report) -> None:
        self.rel = rel
        self.report = report
        self.aliases = import_aliases(tree)
        self.module_lists, _ = typed_names(tree.body)
        self.lists = set(self.module_lists)
        self.strings: set[str] = set()
        self.loops: list[ast.AST] = []
        self.iters: list[str] = []
        self.is_async = False
        self.deep_reported: set[int] = set()

    def flag(self, node: ast.AST, severity: str, rule: str, message: str) -> None:
        """Record a finding at the node's line."""
        self.report.add(self.rel, getattr(node, "lineno", 1), severity, rule, message)

    def visit_function(self, node: Function) -> None:
        """Check a function's size, then its body with fresh loop and type context."""
        length = (node.end_lineno or node.lineno) - node.lineno + 1
        if length > HUGE_FUNCTION:
            self.flag(node, "low", "huge-function",
                      f"{node.name}() is {length} lines; hard to profile and optimise")
        saved = (self.lists, self.strings, self.loops, self.iters, self.is_async)
        lists, strings = typed_names(node.body)
        for arg in [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]:
            if arg.annotation is not None and \
                    ast.unparse(arg.annotation).lower().startswith("list"):
                lists.add(arg.arg)
        self.lists, self.strings = self.module_lists | lists, strings
        self.loops, self.iters = [], []
        self.is_async = isinstance(node, ast.AsyncFunctionDef)
        for child in [*node.decorator_list, *node.body]:
            self.visit(child)
        self.lists, self.strings, self.loops, self.iters, self.is_async = saved

    visit_FunctionDef = visit_function
    visit_AsyncFunctionDef = visit_function

    def visit_Lambda(self, node: ast.Lambda) -> None:
        saved = (self.loops, self.is_async)
        self.loops, self.is_async = [], False
        self.generic_visit(node)
        self.loops, self.is_async = saved

    def enter_loop(self, node: ast.AST, iterable: ast.AST | None) -> None:
        """Push a loop, checking for a repeated collection and for deep nesting."""
        if iterable is not None and not is_small_range(iterable):
            key = ast.dump(iterable)
            if key in self.iters:
                self.flag(node, "medium", "nested-loop-same-collection",
                          f"nested loop over `{ast.unparse(iterable)}` again: O(n²); index it "
                          "in a dict or set first")
            self.iters.append(key)
        else:
            self.iters.append("")
        self.loops.append(node)
        statements = [loop for loop in self.loops if isinstance(loop, ast.For | ast.AsyncFor
                                                                | ast.While)]
        if len(statements) == 3 and id(statements[0]) not in self.deep_reported:
            self.deep_reported.add(id(statements[0]))
            self.flag(node, "low", "deep-loop-nesting",
                      "three nested loop statements: check how large each one gets")

    def leave_loop(self) -> None:
        """Pop the innermost loop."""
        self.loops.pop()
        self.iters.pop()

    def visit_For(self, node: ast.For | ast.AsyncFor) -> None:
        self.visit(node.iter)
        self.enter_loop(node, node.iter)
        self.visit(node.target)
        for child in node.body:
            self.visit(child)
        self.leave_loop()
        for child in node.orelse:
            self.visit(child)

    visit_AsyncFor = visit_For

    def visit_While(self, node: ast.While) -> None:
        self.enter_loop(node, None)
        self.visit(node.test)
        for child in node.body:
            self.visit(child)
        self.leave_loop()
        for child in node.orelse:
            self.visit(child)

    def visit_comprehension_node(self, node: ast.ListComp | ast.SetComp | ast.GeneratorExp
                                 | ast.DictComp) -> None:
        """Each generator of a comprehension is a loop around its condition and element."""
        entered = 0
        for generator in node.generators:
            self.visit(generator.iter)
            self.enter_loop(node, generator.iter)
            entered += 1
            for condition in generator.ifs:
                self.visit(condition)
        for part in (node.key, node.value) if isinstance(node, ast.DictComp) else (node.elt,):
            self.visit(part)
        for _ in range(entered):
            self.leave_loop()

    visit_ListComp = visit_comprehension_node
    visit_SetComp = visit_comprehension_node
    visit_GeneratorExp = visit_comprehension_node
    visit_DictComp = visit_comprehension_node

    def visit_Compare(self, node: ast.Compare) -> None:
        if self.loops:
            for op, right in zip(node.ops, node.comparators, strict=True):
                if isinstance(op, ast.In | ast.NotIn) and isinstance(right, ast.Name) \
                        and right.id in self.lists:
                    self.flag(node, "medium", "list-membership-in-loop",
                              f"`in {right.id}` scans a list on every iteration; use a set")
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if self.loops and isinstance(node.op, ast.Add) and isinstance(node.target, ast.Name):
            value = node.value
            textual = isinstance(value, ast.JoinedStr) or (
                isinstance(value, ast.Constant) and isinstance(value.value, str))
            if node.target.id in self.strings or textual:
                self.flag(node, "low", "string-concat-in-loop",
                          f"`{node.target.id} +=` builds a string in a loop; collect parts "
                          "and ''.join() them")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        name = resolve_call(node.func, self.aliases)
        if self.loops:
            self.loop_call(node, name)
        if self.is_async:
            if name == "time.sleep":
                self.flag(node, "high", "sleep-in-async",
                          "time.sleep() blocks the event loop; use await asyncio.sleep()")
            elif name in BLOCKING:
                self.flag(node, "medium", "blocking-in-async",
                          f"{name}() blocks the event loop; use an async API or "
                          "asyncio.to_thread()")
        self.generic_visit(node)

    def loop_call(self, node: ast.Call, name: str) -> None:
        """Checks for calls made on every iteration of a loop."""
        if name == "re.compile":
            self.flag(node, "medium", "regex-compile-in-loop",
                      "re.compile() on every iteration; compile once outside the loop")
        elif name in REGEX_CALLS and node.args and isinstance(node.args[0], ast.Constant):
            self.flag(node, "info", "regex-in-loop",
                      f"{name}() with a literal pattern in a loop; hoist a compiled pattern")
        elif isinstance(node.func, ast.Attribute) and node.func.attr in LIST_SEARCHES \
                and isinstance(node.func.value, ast.Name) and node.func.value.id in self.lists:
            self.flag(node, "medium", "list-search-in-loop",
                      f"`{node.func.value.id}.{node.func.attr}()` is O(n) on every iteration; "
                      "use a dict or set")


def analyse(root: Path, args: argparse.Namespace) -> Report:
    """Look for hot spots."""
    report = Report(AGENT, root)
    files = walk(root, CODE_SUFFIXES)
    report.files_scanned = len(files)
    sizes: list[tuple[int, str]] = []
    total = checked = 0
    for file in files:
        text = read_text(file.path)
        if text is None:
            continue
        lines = text.count("\n") + (0 if text.endswith("\n") or not text else 1)
        total += lines
        sizes.append((lines, file.rel))
        if lines > LARGE_FILE:
            report.add(file.rel, 1, "low", "large-file",
                       f"{lines} lines; slow to load, review and test; consider splitting")
        if file.rel.endswith(".py") and not is_test_path(file.rel):
            checked += 1
            tree = parse_python(text, file.rel)
            if tree is not None:
                HotSpots(file.rel, tree, report).visit(tree)
    sizes.sort(key=lambda item: (-item[0], item[1]))
    width = len(str(sizes[0][0])) if sizes else 1
    report.section("Largest source files (lines)",
                   [f"{n:>{width}}  {rel}" for n, rel in sizes[:10]])
    report.notes.append(f"{total} lines of code")
    report.section("Scope", [f"{checked} Python modules checked for hot spots (test code is "
                             "left out: its speed rarely matters)"])
    return report


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    return run_main(AGENT, analyse, "Find static performance hot spots.", argv=argv)


if __name__ == "__main__":
    raise SystemExit(main())
