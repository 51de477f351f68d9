"""The package is layered: each layer imports only the layers below it (docs/design.md), no module imports
itself back through others, and what reads shared tables needs neither torch nor the config machinery."""

import ast
import importlib.util
import subprocess
import sys

from .conftest import ROOT

PACKAGE = ROOT / "workflow" / "memorization"
# Lowest first; a module's layer is its folder under memorization/ (__main__.py is the command line's).
LAYERS = ("catalog", "config", "results", "engine", "measures", "report", "papers", "pipeline")


def module_name(path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> int | None:
    parts = module.split(".")
    if parts[1:] == ["__main__"]:
        return LAYERS.index("pipeline")
    return LAYERS.index(parts[1]) if len(parts) > 1 else None  # the package itself: a docstring


def imports() -> dict[str, set[str]]:
    """module → the package modules it imports anywhere: at the top, inside functions, for type checking."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = importlib.util.resolve_name("." * node.level + (node.module or ""), package)
                found |= {f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names}
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def upward(graph) -> list[str]:
    """Every import of a higher layer by a lower one."""
    return [f"{a} imports {b}" for a, bs in graph.items() for b in sorted(bs)
            if layer(b) is not None and layer(a) is not None and layer(b) > layer(a)]  # fmt: skip


def circles(graph) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while not group or group[-1] != v:
                group.append(stack.pop())
                on.discard(group[-1])
            if len(group) > 1:
                found.append(sorted(group))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_every_module_is_in_a_layer():
    assert {layer(m) for m in imports() if m != "memorization"} <= set(range(len(LAYERS)))


def test_no_layer_imports_a_higher_one():
    assert upward(imports()) == []


def test_no_module_imports_itself_back():
    assert circles(imports()) == []


def test_the_checks_find_an_upward_import_and_a_circle():
    graph = imports()
    graph["memorization.engine.sgd"] = graph["memorization.engine.sgd"] | {"memorization.report.stats"}
    assert upward(graph) == ["memorization.engine.sgd imports memorization.report.stats"]
    graph["memorization.engine.models"] = graph["memorization.engine.models"] | {"memorization.engine.sgd"}
    assert any({"memorization.engine.models", "memorization.engine.sgd"} <= set(group) for group in circles(graph))


def test_the_catalog_imports_nothing_else_of_the_package():
    graph = imports()
    for module in (m for m in graph if m.startswith("memorization.catalog")):
        assert all(b.startswith("memorization.catalog") for b in graph[module]), module


def test_reading_shared_tables_imports_no_torch_nor_the_config_machinery():
    """What `memorization figures` and `memorization claims` import: the base install has no torch, Snakemake,
    jsonschema or PyYAML (pip install 'memorization[figures]')."""
    code = (
        "import sys; import memorization.pipeline.cli, memorization.report.figures, memorization.report.scorecard; "
        "print(sorted(m for m in ('torch', 'snakemake', 'jsonschema', 'yaml', 'sklearn') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_no_module_is_longer_than_a_reader_can_hold():
    long = {p.relative_to(PACKAGE): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > 450}
    assert long == {}
