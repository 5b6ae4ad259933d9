"""The package's import graph, measured from the source: files, floors and circles.

    python docs/figures/import_graph.py [PACKAGE_DIR]     (default: xpnet/ beside this repository's docs/)

A file stands one floor above the highest file it imports (floor 1 imports nothing of the package).
An arrow A → B is an import of B in A, anywhere in A (inside functions too), resolved as Python does:
``from pkg import name`` is an import of the module ``pkg.name`` where that is a module, else of
``pkg`` itself (its ``__init__.py``: re-exports count). Imports under ``if TYPE_CHECKING:`` are left out:
they never run. A circle is a set of files that import each
other in a loop (a strongly connected component of more than one file, or a file importing itself).
"""

from __future__ import annotations

import ast
import json
import pathlib
import sys


def modules(root: pathlib.Path) -> dict[str, pathlib.Path]:
    """Dotted module name → file, for every ``.py`` under the package folder ``root``."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def imports(name: str, path: pathlib.Path, known: dict[str, pathlib.Path]) -> set[str]:
    """The package's modules that ``name`` (at ``path``) imports."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {
        id(n)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for stmt in block.body
        for n in ast.walk(stmt)
    }
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in known)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            for alias in node.names:
                target = f"{origin}.{alias.name}"
                found.add(target if target in known else origin)
    return {m for m in found if m in known and m != name}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in graph:
        if v not in index:
            visit(v)
    return out


def floors(graph: dict[str, set[str]]) -> dict[str, int]:
    """Each module's floor (the longest chain of imports below it, plus one); modules in a circle share one."""
    memo: dict[str, int] = {}

    def floor(v: str, seen: frozenset[str]) -> int:
        if v in memo:
            return memo[v]
        below = [floor(w, seen | {v}) for w in graph[v] if w not in seen]
        memo[v] = 1 + max(below, default=0)
        return memo[v]

    return {v: floor(v, frozenset()) for v in graph}


def measure(root: pathlib.Path) -> dict[str, object]:
    known = modules(root)
    graph = {name: imports(name, path, known) for name, path in known.items()}
    level = floors(graph)
    return {
        "files": len(known),
        "floors": max(level.values()),
        "arrows": sum(len(v) for v in graph.values()),
        "circles": circles(graph),
        "by_floor": {f: sorted(m for m in level if level[m] == f) for f in sorted(set(level.values()), reverse=True)},
    }


if __name__ == "__main__":
    here = pathlib.Path(__file__).resolve().parents[2] / "xpnet"
    print(json.dumps(measure(pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else here), indent=1))
