"""crm_console's modules import each other without a circle.

Every import counts, a function's own included: an import moved into a function hides a circle
from Python's loader, not from the reader. Imports made only for type checkers do not count."""

from __future__ import annotations

import ast
from pathlib import Path

import crm_console

PACKAGE_ROOT = Path(crm_console.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and (
        (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
        or (isinstance(node.test, ast.Attribute) and node.test.attr == "TYPE_CHECKING"))


def _imported_names(tree: ast.AST, package: str) -> set[str]:
    """Every module or module.name an import statement names (outside TYPE_CHECKING blocks)."""
    names: set[str] = set()
    pending = [tree]
    while pending:
        node = pending.pop()
        if _is_type_checking_block(node):
            pending.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
        pending.extend(ast.iter_child_nodes(node))
    return names


def import_graph() -> dict[str, set[str]]:
    """Each crm_console module (migrations aside) and the crm_console modules it imports."""
    paths = {_module_name(p): p for p in PACKAGE_ROOT.rglob("*.py") if "migrations" not in p.parts}
    graph = {}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        imported = _imported_names(ast.parse(path.read_text(), str(path)), package)
        graph[name] = {m for m in imported if m in paths and m != name}
    return graph


def import_circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in sorted(graph[module]):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                circles.append(sorted(group))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return circles


def test_no_module_of_crm_console_is_part_of_an_import_circle():
    graph = import_graph()
    circles = import_circles(graph)
    assert circles == [], "\n".join(
        " <-> ".join(group) + "\n" + "\n".join(
            f"    {m} imports {sorted(graph[m] & set(group))}" for m in group)
        for group in circles)


def test_the_circle_finder_finds_a_circle_through_three_modules():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert import_circles(graph) == [["a", "b", "c"]]


def test_an_import_inside_a_function_counts():
    tree = ast.parse("def f():\n    from crm_console.x import y\n")
    assert "crm_console.x.y" in _imported_names(tree, "crm_console")


def test_an_import_for_type_checkers_only_does_not_count():
    tree = ast.parse("if TYPE_CHECKING:\n    from crm_console.x import y\n")
    assert _imported_names(tree, "crm_console") == set()
