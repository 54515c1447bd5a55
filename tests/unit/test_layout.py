"""The dependency direction ``messages <- actors <- grasp`` (ARCHITECTURE §2), checked on the
source."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {"messages": {"actors", "grasp"}, "actors": {"grasp"}}
LAYERS = ("messages", "actors", "grasp")


def _imported_top_levels(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_grasp_domain_modules_do_not_import_actors():
    """Only grasp/relay/ and the wiring in grasp/context.py meet the actors (ARCHITECTURE §2)."""
    allowed = {ROOT / "grasp" / "context.py"}
    offenders = {
        str(path.relative_to(ROOT))
        for path in (ROOT / "grasp").rglob("*.py")
        if path not in allowed
        and "relay" not in path.relative_to(ROOT / "grasp").parts[:1]
        and _imported_top_levels(path) & {"actors"}
    }
    assert offenders == set()


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_does_not_import_upward(package):
    offenders = {
        str(path.relative_to(ROOT)): sorted(_imported_top_levels(path) & FORBIDDEN[package])
        for path in (ROOT / package).rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


# --- the rooms of grasp/relay/ and grasp/admission/ (ARCHITECTURE §8) ------------------------

RELAY = ROOT / "grasp" / "relay"
MAX_RELAY_MODULES = 8


def test_relay_package_keeps_only_the_process_at_its_top():
    """grasp/relay/ holds the process (app, cli, config, maintenance, the git service); its
    concerns live in transport/, sync_sources/ and observe/. At most 8 modules sit directly in
    it (``__init__.py`` counted)."""
    modules = sorted(path.name for path in RELAY.glob("*.py"))
    assert len(modules) <= MAX_RELAY_MODULES, modules


def test_admission_does_not_import_the_relay():
    """grasp/admission/ is domain logic the relay uses (S10.4), never the other way round."""
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            name
            for name in _imported_modules(path)
            if name == "grasp.relay" or name.startswith("grasp.relay.")
        )
        for path in (ROOT / "grasp" / "admission").rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def _imported_modules(path: Path) -> set[str]:
    """Every absolute module name ``path`` imports (``from a import b`` gives ``a`` and ``a.b``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


# --- no import cycles -----------------------------------------------------------------------------


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES: dict[str, Path] = {
    _module_name(path): path for package in LAYERS for path in (ROOT / package).rglob("*.py")
}


def _ours(dotted: str) -> str | None:
    """The module of ours that ``dotted`` names, or the package holding the name it imports."""
    parts = dotted.split(".")
    while parts and ".".join(parts) not in MODULES:
        parts.pop()
    return ".".join(parts) or None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_edges(module: str, path: Path) -> set[str]:
    """Modules of ours that ``module`` imports when it runs: top level and inside functions, but
    not under ``if TYPE_CHECKING:`` (never executed). Relative imports are resolved."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    edges: set[str | None] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            children: list[ast.AST] = list(node.orelse)
        else:
            children = list(ast.iter_child_nodes(node))
        if isinstance(node, ast.Import):
            edges.update(_ours(alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")
            base = parts[: len(parts) - node.level + 1] if node.level else []
            source = ".".join([*base, *([node.module] if node.module else [])])
            for alias in node.names:
                child = f"{source}.{alias.name}"
                edges.add(child if child in MODULES else _ours(source))
        for child_node in children:
            visit(child_node)

    visit(ast.parse(path.read_text(), filename=str(path)))
    return {edge for edge in edges if edge is not None and edge != module}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each import cycle as the list of its modules, one path around it (Tarjan's strongly
    connected components, then a walk that returns to the first member)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components: list[set[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = {stack.pop()}
            while v not in component:
                component.add(stack.pop())
            if len(component) > 1:
                components.append(component)

    for vertex in sorted(graph):
        if vertex not in index:
            strong(vertex)
    return [_walk_around(sorted(c), graph) for c in components]


def _walk_around(members: list[str], graph: dict[str, set[str]]) -> list[str]:
    """A shortest path first member -> ... -> first member inside one component."""
    start, inside = members[0], set(members)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for v in frontier:
            for w in sorted(graph[v] & inside):
                if w == start:
                    return paths[v] + [start]
                if w not in paths:
                    paths[w] = paths[v] + [w]
                    following.append(w)
        frontier = following
    return members  # unreachable for a strongly connected component


IMPORT_GRAPH = {module: _import_edges(module, path) for module, path in MODULES.items()}


def test_cycle_finder_reports_a_cycle_as_its_modules():
    """The checker below must be able to fail: a made-up graph with one cycle and one tail."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}}
    assert _cycles(graph) == [["a", "b", "c", "a"]]


@pytest.mark.parametrize("package", ["messages", "actors", "grasp"])
def test_no_import_cycles(package):
    """No module of ``package`` can reach itself through imports (counting imports inside
    functions, not those under ``if TYPE_CHECKING:``): a cycle makes start-up order matter."""
    graph = {m: e for m, e in IMPORT_GRAPH.items() if m == package or m.startswith(package + ".")}
    cycles = _cycles({m: {e for e in edges if e in graph} for m, edges in graph.items()})
    assert cycles == [], "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_import_graph_counts_function_imports_and_skips_type_checking_ones():
    """The graph is built as Python runs the code: ``grasp.git.repos`` imports ``pack_ingest``
    inside a function (counted); ``sync_sources.settings`` names the relay Config only under
    ``if TYPE_CHECKING:`` (not counted); relative imports resolve (``messages``)."""
    assert "grasp.git.pack_ingest" in IMPORT_GRAPH["grasp.git.repos"]
    assert "grasp.relay.config" not in IMPORT_GRAPH["grasp.relay.sync_sources.settings"]
    assert "grasp.relay.sync_sources.history" in IMPORT_GRAPH["grasp.relay.sync_sources.settings"]
    assert {"messages.fetch", "messages._base"} <= IMPORT_GRAPH["messages"]
    assert IMPORT_GRAPH["messages.fetch"] == {"messages._base"}
