"""Backend selection of the crdt_core facade (each case in a fresh interpreter)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.test_crdt_core_support import backend

PROBE = "import logging; logging.basicConfig(level=logging.INFO); import crdt_core; print(crdt_core.BACKEND)"
# Makes `import _crdt_core_native` fail as on a machine where the crate is not built.
HIDE_NATIVE = "import sys; sys.modules['_crdt_core_native'] = None; "
TIMEOUT_SECONDS = 60


def run_probe(env_value: str | None, *, hide_native: bool = False) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "NOVA_CRDT_BACKEND"}
    if env_value is not None:
        env["NOVA_CRDT_BACKEND"] = env_value
    code = (HIDE_NATIVE if hide_native else "") + PROBE
    return subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )


def test_native_is_the_default_and_logged() -> None:
    backend("rust")
    result = run_probe(None)
    assert result.stdout.strip() == "rust"
    assert "crdt_core backend: rust" in result.stderr


def test_env_forces_the_fallback() -> None:
    result = run_probe("python")
    assert result.stdout.strip() == "python"
    assert "crdt_core backend: python" in result.stderr


def test_missing_native_falls_back_quietly() -> None:
    result = run_probe(None, hide_native=True)
    assert result.returncode == 0
    assert result.stdout.strip() == "python"


def test_missing_native_is_an_error_when_rust_is_asked_for() -> None:
    result = run_probe("rust", hide_native=True)
    assert result.returncode != 0
    assert "ImportError" in result.stderr
    assert "build_native.sh" in result.stderr


def test_unknown_backend_name_is_an_error() -> None:
    result = run_probe("fortran")
    assert result.returncode != 0
    assert "NOVA_CRDT_BACKEND" in result.stderr


def test_backend_functions_rejects_unknown_names() -> None:
    import crdt_core

    with pytest.raises(ValueError, match="unknown crdt_core backend"):
        crdt_core.backend_functions("fortran")
