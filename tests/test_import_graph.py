"""The import graph of ``app`` and ``models`` has no cycle, the Qt-free packages import no Qt, and no
module is over 400 lines.

The graph is read from the source with :mod:`ast`, not by importing: every ``import x`` and
``from x import y`` anywhere in a module, top level or inside a function, is an edge, because a lazy
import only hides a cycle until somebody moves it to the top. Imports under ``if TYPE_CHECKING:`` are
left out: they never run, they only name types for annotations (the GUI's actions module names the
main window that way). ``from pkg import
name`` is an edge to ``pkg.name`` when that is a module, else to ``pkg``. Importing a package also runs
its ``__init__``, but an edge from a module to its own parent package is left out (Python has already
imported the parent by then).
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("app", "models")
QT_FREE = ("models", "app.gui.state")
QT = ("PySide6", "shiboken6", "pyqtgraph")


def _modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for pkg in PACKAGES:
        for path in sorted((REPO_ROOT / pkg).rglob("*.py")):
            parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _is_type_checking(node: ast.AST) -> bool:
    if not isinstance(node, ast.If):
        return False
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node of ``tree`` except the bodies of ``if TYPE_CHECKING:`` (their ``else`` stays)."""
    out: list[ast.AST] = []
    todo = [tree]
    while todo:
        node = todo.pop()
        out.append(node)
        if _is_type_checking(node):
            assert isinstance(node, ast.If)
            todo.extend(node.orelse)
        else:
            todo.extend(ast.iter_child_nodes(node))
    return out


def _imports(name: str, path: Path) -> set[str]:
    """Every dotted name ``name`` imports (absolute, relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    base = name.split(".") if _is_package(path) else name.split(".")[:-1]
    out: set[str] = set()
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base[: len(base) - (node.level - 1)]
                mod = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                mod = node.module or ""
            out.add(mod)
            out.update(f"{mod}.{alias.name}" for alias in node.names)
    return out


def import_graph() -> dict[str, set[str]]:
    """Module → the modules of ``app``/``models`` it imports (see the module docstring)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges: set[str] = set()
        for target in _imports(name, path):
            while target and target not in modules:  # ``from pkg.mod import func`` → pkg.mod
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(target + "."):
                edges.add(target)
        graph[name] = edges
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


def test_graph_reader_resolves_imports() -> None:
    graph = import_graph()
    assert "models.tagging.engine" in graph and "app.cli" in graph and "app.gui.state" in graph
    assert "models.packs.pack" in graph["models.tagging.engine"]  # from models.packs.pack import ...
    assert graph["models"] == set() or all(m.startswith("models.") for m in graph["models"])
    tc = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import a\nelse:\n    import b\n")
    assert {n.names[0].name for n in _runtime_nodes(tc) if isinstance(n, ast.Import)} == {"b"}
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    tc = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import a\nelse:\n    import b\n")
    assert {n.names[0].name for n in _runtime_nodes(tc) if isinstance(n, ast.Import)} == {"b"}
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles() -> None:
    cycles = find_cycles(import_graph())
    assert cycles == [], "import cycles (each a group of modules that reach each other): " + "; ".join(
        " ↔ ".join(c) for c in cycles
    )


def test_qt_free_packages_import_no_qt() -> None:
    """Statically, including lazy imports (tests/test_qt_free.py checks it at run time)."""
    bad = {}
    for name, path in _modules().items():
        if not any(name == p or name.startswith(p + ".") for p in QT_FREE):
            continue
        qt = sorted(m for m in _imports(name, path) if m.split(".")[0] in QT)
        if qt:
            bad[name] = qt
    assert "models.tagging.engine" in _modules() and bad == {}, bad


def test_no_module_over_400_lines() -> None:
    """Every Python module of the project (code, tests, tools) stays readable in one sitting."""
    roots = [REPO_ROOT / d for d in ("app", "models", "tests", "tools")]
    sizes = {
        str(p.relative_to(REPO_ROOT)): len(p.read_text(encoding="utf-8").splitlines())
        for root in roots
        for p in root.rglob("*.py")
    }
    assert len(sizes) > 100
    assert {p: n for p, n in sizes.items() if n > 400} == {}
