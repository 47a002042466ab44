"""pycrdt documents from bytes the hub did not make: client updates, stored rows, state vectors.

The one place that decides what bad bytes mean. pycrdt raises ValueError for most malformed
input, but the Rust core can also panic, and pyo3 turns a panic into ``PanicException``, a
``BaseException`` that would otherwise escape every ``except Exception`` and take down the
task group it runs in. Here both become ``ProtocolError``: bad input, never a crash.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import pycrdt

from crdt_core import ProtocolError

Doc = pycrdt.Doc[Any]
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


def apply_update(doc: Doc, update: bytes, what: str = "update") -> None:
    untrusted(what, lambda: doc.apply_update(update))


def missing_since(doc: Doc, state_vector: bytes) -> bytes:
    """The update a peer with ``state_vector`` lacks; a malformed vector raises ProtocolError."""
    return untrusted("state vector", lambda: doc.get_update(state_vector))


def doc_from_parts(parts: Iterable[bytes], *, skip_gc: bool = False) -> Doc:
    """A document rebuilt from encoded updates (a store's snapshot + tail, in order)."""
    doc: Doc = pycrdt.Doc(skip_gc=skip_gc)
    for part in parts:
        apply_update(doc, part, "stored update")
    return doc
