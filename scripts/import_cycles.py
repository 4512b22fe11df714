#!/usr/bin/env python3
"""Fail when council's packages import each other in a cycle.

Each subpackage (`council.engine`, `council.server`, ...) and each top-level module
(`council.phone`, `council.config`, ...) is one node; an import anywhere in a module, lazy ones
inside functions included (they still tie the two together), is an edge. Imports under
`if TYPE_CHECKING:` are left out: they exist for the type checker only. A cycle is printed with
one import that makes each of its edges, and the exit status is 1.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

SOURCES = Path(__file__).resolve().parent.parent / "src"
PACKAGE = "council"


def node_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != PACKAGE or len(parts) < 2:
        return None
    return parts[1]


def module_name(path: Path, root: Path) -> str:
    relative = path.relative_to(root).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for item in ast.walk(tree):
        if isinstance(item, ast.If) and "TYPE_CHECKING" in ast.unparse(item.test):
            for child in item.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def imports(path: Path, root: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = type_checking_lines(tree)
    here = module_name(path, root).split(".")
    found = []
    for item in ast.walk(tree):
        if not isinstance(item, ast.Import | ast.ImportFrom) or item.lineno in skipped:
            continue
        if isinstance(item, ast.Import):
            found += [(alias.name, item.lineno) for alias in item.names]
        elif isinstance(item, ast.ImportFrom):
            if item.level:
                base = here[: len(here) - item.level + (path.name == "__init__.py")]
                target = ".".join([*base, item.module or ""]).rstrip(".")
            else:
                target = item.module or ""
            found += [(target, item.lineno)]
            found += [(f"{target}.{alias.name}", item.lineno) for alias in item.names]
    return found


def graph(root: Path) -> dict[str, dict[str, str]]:
    """node -> {node it imports: the first import that does it}."""
    package = root / PACKAGE
    nodes = {p.name for p in package.iterdir() if p.is_dir()} | {
        p.stem for p in package.glob("*.py") if p.stem != "__init__"
    }
    edges: dict[str, dict[str, str]] = defaultdict(dict)
    for path in sorted(package.rglob("*.py")):
        source = node_of(module_name(path, root))
        if source is None:
            continue
        for target, line in imports(path, root):
            node = node_of(target)
            if node is not None and node in nodes and node != source:
                edges[source].setdefault(node, f"{path.relative_to(root)}:{line} imports {target}")
    return edges


def cycles(edges: dict[str, dict[str, str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in edges.get(node, {}):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def main(argv: list[str]) -> int:
    edges = graph(Path(argv[0]) if argv else SOURCES)
    found = cycles(edges)
    for component in found:
        print(f"import cycle between {', '.join(component)}:")
        members = set(component)
        for source in component:
            for target, where in sorted(edges[source].items()):
                if target in members:
                    print(f"  {source} -> {target}: {where}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
