"""The module boundaries of docs/architecture.md, checked: a test fails when a lower layer
imports a higher one, or the load tests reach into the hub's internals."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.fast

ROOT = Path(__file__).resolve().parent.parent
# Layers that must never import the hub package (they are used by it, not the other way).
INDEPENDENT = ("persistence", "awareness", "crdt_core")
# What the load tests may use of the hub: the Python clients (y-websocket and gRPC: peers like any other),
# and the settings and token helpers to start and call a hub.
# The composition root and the adapters that build ports over the hub: the only modules that
# may import `collab_server.hub`. HTTP handlers (api/), gRPC (rpc/), both socket kinds and the
# sync steps depend on the narrow ports of `collab_server/ports.py` instead.
MAY_IMPORT_THE_HUB = (
    "collab_server/app.py",
    "collab_server/health.py",
    "collab_server/events/wiring.py",
)
# The hub's edges, named so that a move of the rule above cannot silently drop one.
EDGES = (
    "collab_server/api",
    "collab_server/rpc",
    "collab_server/connection.py",
    "collab_server/hocuspocus_socket.py",
    "collab_server/hocuspocus_channel.py",
    "collab_server/websocket.py",
    "collab_server/ysync.py",
    "collab_server/viewer.py",
)
LOAD_TESTS_MAY_IMPORT = (
    "collab_server.client",
    "collab_server.rpc.client",
    "collab_server.settings",
    "collab_server.auth",
    # A self-contained Redis client (no hub state): its benchmark measures it against redis-py.
    "collab_server.redis_wire",
)


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def python_files(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def hub_imports(path: Path) -> list[str]:
    return sorted(m for m in imported_modules(path) if m == "collab_server" or m.startswith("collab_server."))


@pytest.mark.parametrize("package", INDEPENDENT)
def test_lower_layers_never_import_the_hub(package: str) -> None:
    offenders = {str(p.relative_to(ROOT)): hub_imports(p) for p in python_files(package)}
    assert {path: modules for path, modules in offenders.items() if modules} == {}


def imports_the_hub(path: Path) -> bool:
    return "collab_server.hub" in imported_modules(path) or any(
        isinstance(node, ast.ImportFrom)
        and node.module == "collab_server"
        and "hub" in {a.name for a in node.names}
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
    )


def test_only_the_composition_root_imports_the_hub() -> None:
    importers = sorted(
        p.relative_to(ROOT).as_posix() for p in python_files("collab_server") if imports_the_hub(p)
    )
    assert [path for path in importers if path not in MAY_IMPORT_THE_HUB] == []


@pytest.mark.parametrize("edge", EDGES)
def test_handlers_sockets_and_rpc_depend_on_ports_not_the_hub(edge: str) -> None:
    path = ROOT / edge
    files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
    assert files, f"{edge} is gone: update EDGES"
    assert [p.relative_to(ROOT).as_posix() for p in files if imports_the_hub(p)] == []


def test_load_tests_use_only_the_client_not_the_hub_internals() -> None:
    offenders = {
        str(p.relative_to(ROOT)): [m for m in hub_imports(p) if m not in LOAD_TESTS_MAY_IMPORT]
        for p in python_files("load_tests")
    }
    assert {path: modules for path, modules in offenders.items() if modules} == {}


def test_the_native_core_facade_imports_nothing_of_ours() -> None:
    ours = ("collab_server", "persistence", "awareness")
    offenders = {
        str(p.relative_to(ROOT)): sorted(m for m in imported_modules(p) if m.split(".")[0] in ours)
        for p in python_files("crdt_core")
    }
    assert {path: modules for path, modules in offenders.items() if modules} == {}


@pytest.mark.parametrize("package", (*INDEPENDENT, "collab_server", "load_tests"))
def test_no_relative_imports_so_the_layer_checks_see_every_import(package: str) -> None:
    relative = [
        f"{p.relative_to(ROOT)}:{node.lineno}"
        for p in python_files(package)
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8")))
        if isinstance(node, ast.ImportFrom) and node.level > 0
    ]
    assert relative == []


def test_every_test_module_in_tests_fast_joins_the_fast_tier() -> None:
    unmarked = [
        p.relative_to(ROOT).as_posix()
        for p in sorted((ROOT / "tests" / "fast").glob("test_*.py"))
        if "pytest.mark.fast" not in p.read_text(encoding="utf-8")
    ]
    assert unmarked == []


def test_the_architecture_page_names_every_hub_module() -> None:
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    missing = [
        p.relative_to(ROOT).as_posix()
        for p in python_files("collab_server")
        if p.name != "__init__.py"
        and p.relative_to(ROOT).as_posix() not in page
        and f"{p.parent.relative_to(ROOT).as_posix()}/" not in page
    ]
    assert missing == []
