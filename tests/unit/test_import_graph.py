"""No import cycles: web and CLI sit over the runtime and services, which sit over the core.

Every ``import`` statement counts, at module level or inside a function, so a
cycle cannot hide behind a function-level import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "unsubsvc"
EXCLUDED = {"migrations"}


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_names(path: Path, package: Path = PACKAGE) -> list[set[str]]:
    """Return, per import statement of ``path`` (wherever it stands), the unsubsvc names it names.

    ``from unsubsvc.web import center`` gives ``{unsubsvc.web, unsubsvc.web.center}``;
    ``resolve`` then keeps the submodule when there is one, else the package.
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    here = module_name(path, package)
    is_package = path.name == "__init__.py"
    statements: list[set[str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            statements.extend({alias.name} for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            statements.append({module, *(f"{module}.{alias.name}" for alias in node.names)})
    return [
        {n for n in names if n == "unsubsvc" or n.startswith("unsubsvc.")} for names in statements
    ]


def resolve(names: set[str], modules: dict[str, Path]) -> set[str]:
    """Keep the modules one statement needs: ``pkg.mod`` over ``pkg`` when it names a module.

    ``from pkg import mod`` needs mod's code, not pkg's; ``from pkg import NAME``
    (not a module) needs pkg's.
    """
    known = {n for n in names if n in modules}
    return {n for n in known if not any(m.startswith(n + ".") for m in known)}


def module_graph() -> dict[str, set[str]]:
    """Return unsubsvc's modules and the unsubsvc modules each one imports."""
    paths = [p for p in PACKAGE.rglob("*.py") if not EXCLUDED & set(p.parts)]
    modules = {module_name(p): p for p in paths}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set().union(*(resolve(s, modules) for s in imported_names(path)))
        graph[name] = targets - {name}
    return graph


def package_of(module: str) -> str:
    """Return the first-level part a module belongs to (``unsubsvc.web.api.routes`` → ``web``)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "unsubsvc"


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for module, targets in graph.items():
        source = package_of(module)
        edges.setdefault(source, set()).update(
            package_of(t) for t in targets if package_of(t) != source
        )
    return edges


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """Return one cycle of ``graph`` as a path that ends where it starts, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_no_cycle_among_packages() -> None:
    """core, db, services, runtime, web, cli …: dependencies point one way."""
    graph = package_graph(module_graph())
    assert find_cycle(graph) is None, " → ".join(find_cycle(graph) or [])


def test_no_cycle_among_modules() -> None:
    """Nor does any module import one that imports it back, however indirectly."""
    graph = module_graph()
    assert find_cycle(graph) is None, " → ".join(find_cycle(graph) or [])


@pytest.mark.parametrize(
    ("source", "forbidden"),
    [("web", "cli"), ("core", "services"), ("core", "db"), ("services", "web")],
    ids=["web-not-cli", "core-not-services", "core-not-db", "services-not-web"],
)
def test_layers_point_one_way(source: str, forbidden: str) -> None:
    assert forbidden not in package_graph(module_graph()).get(source, set())


def test_the_check_finds_a_cycle() -> None:
    """The check itself works: a graph with a loop is reported."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_function_level_imports_count(tmp_path: Path) -> None:
    """An import inside a function is an edge too, relative imports included."""
    package = tmp_path / "unsubsvc"
    (package / "cli").mkdir(parents=True)
    source = package / "cli" / "x.py"
    source.write_text("def f():\n    from unsubsvc.web import app\n    from . import common\n")
    found = set().union(*imported_names(source, package))
    assert {"unsubsvc.web.app", "unsubsvc.cli.common"} <= found
