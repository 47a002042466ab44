"""The one rule for bytes nobody here made: malformed input is ``ProtocolError``, never a crash.

pycrdt raises ValueError (sometimes TypeError or RuntimeError) for most malformed input, but
the Rust core underneath can also panic, and pyo3 turns a panic into ``PanicException``, a
``BaseException`` that would otherwise escape every ``except Exception`` and take down the
task group it runs in. Every pycrdt call on client or stored bytes goes through `untrusted`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from crdt_core._types import ProtocolError

T = TypeVar("T")


def is_rust_panic(exc: BaseException) -> bool:
    return type(exc).__name__ == "PanicException"


def untrusted(what: str, operation: Callable[[], T]) -> T:
    """Run a pycrdt operation on untrusted bytes; malformed input raises ProtocolError."""
    try:
        return operation()
    except (ValueError, TypeError, RuntimeError) as exc:
        raise ProtocolError(f"invalid {what}: {exc}") from exc
    except BaseException as exc:
        if not is_rust_panic(exc):
            raise
        raise ProtocolError(f"invalid {what}: {exc}") from exc
