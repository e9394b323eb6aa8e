"""No import cycles among ``bot/`` modules.

The graph is read from the source with :mod:`ast` (nothing is imported): an edge for every
``import bot.x`` / ``from bot.x import y`` / relative import, at module level *and* inside
functions, plus the parent packages Python initialises first (``from bot.config.model import
X`` runs ``bot/config/__init__.py``). Imports under ``if TYPE_CHECKING:`` never run and are
left out. The plugin registries import their modules at the first lookup
(:class:`bot.registry.Registry`), a call at run time rather than an import, so no package's
import pulls in its plugins.

An import inside a function runs later, when the function is called, so it may break a cycle —
but only as a stated decision: such edges are dropped only when listed in
:data:`LAZY_ALLOWED` with the reason. A listed edge that no longer exists fails too, so the list
stays true.
"""

from __future__ import annotations

import ast
import itertools
from dataclasses import dataclass
from pathlib import Path

BOT = Path(__file__).resolve().parents[1] / "bot"

#: (importer, imported) → why the import is inside a function rather than at the top.
LAZY_ALLOWED: dict[tuple[str, str], str] = {
    ("bot.config.load", "bot.sources"): (
        "the loader validates sources through the registry; every source module imports its "
        "params base class from bot.config, whose package imports the loader"
    ),
    ("bot.config.load", "bot.rules"): (
        "the loader validates rules through the registry; every rule module imports RuleParams "
        "from bot.config, whose package imports the loader"
    ),
}


@dataclass(frozen=True)
class Edge:
    """``importer`` imports ``imported`` (at ``line``; ``lazy``: inside a function)."""

    importer: str
    imported: str
    line: int
    lazy: bool


def module_name(path: Path) -> str:
    """``bot/config/__init__.py`` → ``bot.config``; ``bot/cli.py`` → ``bot.cli``."""
    parts = list(path.relative_to(BOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    """Every module of the ``bot`` package by dotted name."""
    return {module_name(path): path for path in sorted(BOT.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> list[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Import statements with whether each is inside a function; TYPE_CHECKING blocks skipped."""
    found: list[tuple[ast.Import | ast.ImportFrom, bool]] = []

    def visit(node: ast.AST, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for other in child.orelse:
                    visit(other, lazy)
                continue
            if isinstance(child, ast.Import | ast.ImportFrom):
                found.append((child, lazy))
            inner = lazy or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            visit(child, inner)

    visit(tree, False)
    return found


def _targets(
    importer: str, is_package: bool, node: ast.Import | ast.ImportFrom, modules: set[str]
) -> list[str]:
    """The ``bot`` modules an import statement names (not yet their parents)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name.split(".")[0] == "bot"]
    if node.level:
        package = importer if is_package else importer.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{node.module}" if node.module else package
    else:
        base = node.module or ""
    if base.split(".")[0] != "bot":
        return []
    names = [f"{base}.{alias.name}" for alias in node.names]
    submodules = [name for name in names if name in modules]
    # `from bot import backtest` imports the module bot.backtest (and bot first)
    return [base, *submodules]


def import_graph() -> list[Edge]:
    """Every import edge among ``bot`` modules (see the module docstring for what counts)."""
    modules = all_modules()
    names = set(modules)
    edges: list[Edge] = []
    for importer, path in modules.items():
        tree = ast.parse(path.read_text("utf-8"), str(path))
        is_package = path.name == "__init__.py"
        for node, lazy in _imports(tree):
            for target in _targets(importer, is_package, node, names):
                # Python initialises every parent package first, except those already
                # initialising because the importer lives inside them.
                parts = target.split(".")
                for depth in range(1, len(parts) + 1):
                    name = ".".join(parts[:depth])
                    ancestor = importer == name or importer.startswith(name + ".")
                    if name in names and not ancestor:
                        edges.append(Edge(importer, name, node.lineno, lazy))
    return edges


def find_cycle(edges: list[Edge]) -> list[str] | None:
    """One cycle of the graph as a list of modules (first == last), or ``None``."""
    graph: dict[str, set[str]] = {}
    for edge in edges:
        graph.setdefault(edge.importer, set()).add(edge.imported)
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start)
            if cycle:
                return cycle
    return None


def _kept(edges: list[Edge]) -> list[Edge]:
    return [e for e in edges if not (e.lazy and (e.importer, e.imported) in LAZY_ALLOWED)]


def test_no_import_cycles() -> None:
    """Module-level and in-function imports together form no cycle (bar :data:`LAZY_ALLOWED`)."""
    edges = import_graph()
    cycle = find_cycle(_kept(edges))
    if cycle:
        where = {(e.importer, e.imported): e for e in edges}
        steps = []
        for a, b in itertools.pairwise(cycle):
            edge = where[a, b]
            steps.append(f"{a} -> {b} (line {edge.line}{', in a function' if edge.lazy else ''})")
        raise AssertionError("import cycle:\n  " + "\n  ".join(steps))


def test_allowed_lazy_imports_exist_and_are_lazy() -> None:
    """Each :data:`LAZY_ALLOWED` entry is a real in-function import (the list stays true)."""
    lazy = {(e.importer, e.imported) for e in import_graph() if e.lazy}
    assert set(LAZY_ALLOWED) <= lazy, set(LAZY_ALLOWED) - lazy


def test_the_walker_sees_cycles() -> None:
    """The walker finds a cycle through a parent package and through an in-function import."""
    edges = [
        Edge("bot.a", "bot.pkg", 1, lazy=False),  # `from bot.pkg.model import X` runs bot.pkg
        Edge("bot.pkg", "bot.pkg.load", 1, lazy=False),
        Edge("bot.pkg.load", "bot.a", 9, lazy=True),
    ]
    assert find_cycle(edges) == ["bot.a", "bot.pkg", "bot.pkg.load", "bot.a"]
    assert find_cycle(edges[:2]) is None
    importer_graph = [e for e in import_graph() if e.importer == "bot.config.load"]
    assert {"bot.config.model", "bot.rules", "bot.sources"} <= {e.imported for e in importer_graph}


def test_every_module_imports_first_in_a_fresh_interpreter() -> None:
    """Each ``bot`` module can be the first one imported (a cycle shows up as an ImportError
    of a partially initialised module, depending on which module came first)."""
    import subprocess
    import sys

    script = (
        "import importlib, subprocess, sys\n"
        "failed = []\n"
        "for name in sys.argv[1:]:\n"
        "    code = f'import {name}'\n"
        "    done = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)\n"
        "    if done.returncode:\n"
        "        failed.append(name + ': ' + done.stderr.strip().splitlines()[-1])\n"
        "print('\\n'.join(failed))\n"
    )
    names = [name for name in all_modules() if name != "bot.__main__"]
    done = subprocess.run(
        [sys.executable, "-c", script, *names],
        capture_output=True,
        text=True,
        cwd=BOT.parent,
        timeout=300,
        check=True,
    )
    assert done.stdout.strip() == "", done.stdout
