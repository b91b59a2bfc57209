"""No import cycle between capprof's modules, at module level or inside
functions: a function-level import only hides a cycle from Python, not from a
reader. The graph is read from the source with ``ast`` (nothing is imported).

``python tests/test_import_cycles.py`` prints every cycle, each edge marked
``module`` (a top-level import) or ``function`` (an import inside a function).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Where each installed package's source lives (pyproject.toml's package-dir).
PACKAGE_DIRS = {"capprof": "capprof", "capprof.tagging": "tagging", "capprof.runners": "runners",
                "capprof.profiling": "profiling", "capprof.reports": "reports"}
# Cycles tolerated for now (none: the demo calls stage functions, not `cli.main`).
KNOWN: set[frozenset[str]] = set()


def project_modules(root: Path = ROOT) -> dict[str, Path]:
    """Every project module's dotted name -> its file."""
    modules = {}
    for package, folder in PACKAGE_DIRS.items():
        base = root / folder
        for path in sorted(base.rglob("*.py")):
            rel = path.relative_to(base).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            if package == "capprof" and parts and parts[0] in {"tagging", "runners", "profiling", "reports"}:
                continue
            modules[".".join([package, *parts])] = path
    return modules


def _is_package(name: str, modules: dict[str, Path]) -> bool:
    return modules[name].name == "__init__.py"


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(name: str, modules: dict[str, Path]) -> list[tuple[str, str, int]]:
    """(imported project module, "module" | "function", line) for every import
    in ``name``'s source; imports under ``if TYPE_CHECKING:`` are left out
    (they never run)."""
    path = modules[name]
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if _is_package(name, modules) else name.rpartition(".")[0]
    found: list[tuple[str, str, int]] = []

    def target(dotted: str) -> str | None:
        # the longest project module that the dotted name starts with
        while dotted and dotted not in modules:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    def visit(node: ast.AST, level: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking(child):
                for sub in child.orelse:
                    visit(sub, level)
                continue
            inner = "function" if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)) else level
            if isinstance(child, ast.Import):
                for alias in child.names:
                    if (t := target(alias.name)) and t != name:
                        found.append((t, level, child.lineno))
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[: len(package.split(".")) - (child.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                for alias in child.names:
                    full = f"{base}.{alias.name}"
                    t = full if full in modules else target(base)
                    if t and t != name:
                        found.append((t, level, child.lineno))
            visit(child, inner)

    visit(tree, "module")
    return found


def import_graph(root: Path = ROOT) -> dict[str, dict[str, tuple[str, int]]]:
    """module -> {imported module: (the strongest kind, first line)}; a
    module-level import outranks a function-level one."""
    modules = project_modules(root)
    graph: dict[str, dict[str, tuple[str, int]]] = {m: {} for m in modules}
    for name in modules:
        for t, level, line in imports_of(name, modules):
            seen = graph[name].get(t)
            if seen is None or (seen[0] == "function" and level == "module"):
                graph[name][t] = (level, line)
    return graph


def strongly_connected(graph: dict[str, dict]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]
    sys.setrecursionlimit(max(10000, sys.getrecursionlimit()))

    def connect(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return out


def a_cycle(graph: dict[str, dict], component: list[str]) -> list[str]:
    """One shortest cycle through the component's first module."""
    start, members = component[0], set(component)
    paths = {start: [start]}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph[v]):
            if w not in members:
                continue
            if w == start:
                return paths[v] + [start]
            if w not in paths:
                paths[w] = paths[v] + [w]
                queue.append(w)
    return component


def describe(graph: dict[str, dict], cycle: list[str]) -> str:
    steps = [cycle[0]]
    for a, b in zip(cycle, cycle[1:]):
        level, line = graph[a][b]
        steps.append(f"-[{level} :{line}]-> {b}")
    return " ".join(steps)


def cycles(root: Path = ROOT) -> list[str]:
    """One line per import cycle (a strongly connected component), not
    counting the KNOWN ones."""
    graph = import_graph(root)
    return [f"{len(c)} modules: {describe(graph, a_cycle(graph, c))}"
            for c in strongly_connected(graph) if frozenset(c) not in KNOWN]


# Packages whose modules count as one node for the direction of dependencies:
# runners' subpackages depend on each other in one direction.
GROUPED = ("capprof.runners.scenarios", "capprof.runners.populations", "capprof.runners.episode",
           "capprof.runners.execution", "capprof.runners.training")


def grouped_graph(graph: dict[str, dict], groups=GROUPED) -> dict[str, dict]:
    """``graph`` with the modules of each of ``groups`` merged into one node;
    an edge keeps the first import that made it."""
    def node(name: str) -> str:
        return next((g for g in groups if name == g or name.startswith(g + ".")), name)

    merged: dict[str, dict] = {}
    for a, targets in graph.items():
        for b, how in targets.items():
            if node(a) != node(b):
                merged.setdefault(node(a), {}).setdefault(node(b), (f"{how[0]} {a} -> {b}", how[1]))
        merged.setdefault(node(a), {})
    return merged


def package_cycles(root: Path = ROOT) -> list[str]:
    """One line per cycle between runners' subpackages (and other modules)."""
    graph = grouped_graph(import_graph(root))
    return [f"{len(c)} nodes: {describe(graph, a_cycle(graph, c))}"
            for c in strongly_connected(graph) if frozenset(c) not in KNOWN]


def test_no_import_cycle_between_project_modules():
    found = cycles()
    assert not found, "import cycles (module or function level):\n" + "\n".join(found)


def test_runners_subpackages_depend_in_one_direction():
    found = package_cycles()
    assert not found, "runners' subpackages import each other both ways:\n" + "\n".join(found)


def test_the_graph_sees_function_level_imports(tmp_path):
    """A cycle closed only by an import inside a function is still found."""
    for folder in PACKAGE_DIRS.values():
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "__init__.py").write_text("")
    (tmp_path / "runners" / "a.py").write_text("from capprof.runners import b\n")
    (tmp_path / "runners" / "b.py").write_text("def f():\n    from capprof.runners.a import x\n")
    (tmp_path / "runners" / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from capprof.runners import a\n")
    (tmp_path / "profiling" / "d.py").write_text("def g():\n    from . import e\n")
    (tmp_path / "profiling" / "e.py").write_text("import capprof.profiling.d\n")
    found = cycles(tmp_path)
    assert len(found) == 2, found
    assert "2 modules: capprof.runners.a -[module :1]-> capprof.runners.b -[function :2]-> capprof.runners.a" in found
    assert any("capprof.profiling.d -[function :2]-> capprof.profiling.e" in line for line in found)
    assert not any("runners.c" in line for line in found)  # TYPE_CHECKING imports never run


if __name__ == "__main__":
    graph = import_graph()
    components = strongly_connected(graph)
    for c in components:
        known = " (known)" if frozenset(c) in KNOWN else ""
        print(f"{len(c)} modules{known}: {', '.join(c)}\n  e.g. {describe(graph, a_cycle(graph, c))}")
    print(f"{len(components)} cycle(s) among {len(graph)} modules")
    grouped = grouped_graph(graph)
    print("\nrunners' subpackages (each one node):")
    for c in strongly_connected(grouped):
        if frozenset(c) not in KNOWN:
            print(f"{len(c)} nodes: {describe(grouped, a_cycle(grouped, c))}")
    for g in GROUPED:
        print(f"  {g} -> {', '.join(sorted(t for t in grouped.get(g, {}) if t.startswith('capprof.runners'))) or '-'}")
