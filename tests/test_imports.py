"""The package's import graph: named layers, each importing only from layers below it.

Every ``import`` is counted, module-level or inside a function, so a late import cannot hide a
dependency. ``ledger`` is the bottom (the record format and its stores); ``core`` is pure logic
(it may use the ledger's canonical JSON); adapters sit above it (``registry``: MLflow), then the
services that use them, then the entry points (Dagster definitions, HTTP service, CLI).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "governance"

# package (first name under governance) -> layer; an import must go to a strictly lower layer
# or stay inside its own package.
LAYERS = {
    "ledger": 0,
    "core": 1,
    "settings": 1,
    "witness": 1,
    "testkit": 1,
    "registry": 2,
    "transparency": 2,
    "decisions": 3,
    "pipeline": 4,
    "lifecycle": 4,
    "subjects": 4,
    "defs": 5,
    "service": 5,
    "cli": 6,
    "definitions": 6,
    "__init__": 7,
}


def _name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(path: Path) -> set[str]:
    """The governance modules ``path`` imports (a ``from pkg import sub`` names ``pkg.sub``)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] == "governance":
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    out.add(sub if sub in MODULES else node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == "governance")
    return out


GRAPH = {name: _imports(path) for name, path in MODULES.items()}


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_package_has_a_layer() -> None:
    assert {_package(m) for m in MODULES} == set(LAYERS)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_only_go_down(module: str) -> None:
    mine = _package(module)
    upward = sorted(
        target
        for target in GRAPH[module]
        if _package(target) != mine and LAYERS[_package(target)] >= LAYERS[mine]
    )
    assert not upward, f"{module} (layer {LAYERS[mine]}) imports {upward}"


def test_core_and_ledger_import_no_framework() -> None:
    frameworks = {"dagster", "fastapi", "typer", "mlflow", "starlette", "uvicorn"}
    found = []
    for module, path in MODULES.items():
        if _package(module) not in {"core", "ledger"}:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            found += [f"{module}: {n}" for n in names if n.split(".")[0] in frameworks]
    assert not found


def test_no_import_circle() -> None:
    """No module reaches itself through the imports of others (Tarjan's strongly connected
    components over the module graph)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH.get(v, ()):
            if w not in MODULES:
                continue
            if w not in index:
                visit(w)
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
                circles.append(sorted(component))

    for module in sorted(MODULES):
        if module not in index:
            visit(module)
    assert not circles, circles


def test_the_graph_is_read() -> None:
    """The checks above see real edges (guards against a parser that finds nothing)."""
    assert "governance.ledger" in GRAPH["governance.decisions.service"]
    assert "governance.registry.mlflow" in GRAPH["governance.pipeline.stages"]
