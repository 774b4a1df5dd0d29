"""No module of the package imports a module that imports it back: not at run time, and not
even for type names only (`if TYPE_CHECKING:`)."""

from __future__ import annotations

import ast
from pathlib import Path

import runpod_testkit

PACKAGE_DIR = Path(runpod_testkit.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking_block(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.If)
        and isinstance(node.test, ast.Name)
        and node.test.id == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, *, type_checking: bool) -> set[str]:
    """Modules named by import statements (in `if TYPE_CHECKING:` blocks too, if asked)."""
    names: set[str] = set()
    pending = [tree]
    while pending:
        node = pending.pop()
        if _is_type_checking_block(node) and not type_checking:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        pending.extend(ast.iter_child_nodes(node))
    return names


def _import_graph(*, type_checking: bool = False) -> dict[str, set[str]]:
    files = {_module_name(path): path for path in PACKAGE_DIR.rglob("*.py")}
    return {
        module: {
            target
            for target in _imports(
                ast.parse(path.read_text(encoding="utf-8")), type_checking=type_checking
            )
            # A module importing its own package's __init__ is not a circle of two modules.
            if target in files and target != module and not module.startswith(target + ".")
        }
        for module, path in files.items()
    }


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (iterative Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []
    for root, targets in graph.items():
        if root in index:
            continue
        work = [(root, iter(sorted(targets)))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    circles.append(sorted(component))
    return circles


def test_the_circle_finder_finds_a_circle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _circles(graph) == [["a", "b", "c"]]


def test_no_runtime_import_circle_in_the_package() -> None:
    graph = _import_graph()
    assert _circles(graph) == []
    assert "runpod_testkit.argtypes" in graph["runpod_testkit.check_command"]


def test_no_import_circle_of_type_names_either() -> None:
    graph = _import_graph(type_checking=True)
    assert _circles(graph) == []
    # The statistics name the SLO and their views' types only one way.
    assert "runpod_testkit.stats.accumulator" in graph["runpod_testkit.slo"]
    assert "runpod_testkit.slo" not in graph["runpod_testkit.stats.accumulator"]
