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
LOAD_TESTS_MAY_IMPORT = (
    "collab_server.client",
    "collab_server.rpc.client",
    "collab_server.settings",
    "collab_server.auth",
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


def test_load_tests_use_only_the_client_not_the_hub_internals() -> None:
    offenders = {
        str(p.relative_to(ROOT)): [m for m in hub_imports(p) if m not in LOAD_TESTS_MAY_IMPORT]
        for p in python_files("load_tests")
    }
    assert {path: modules for path, modules in offenders.items() if modules} == {}


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
