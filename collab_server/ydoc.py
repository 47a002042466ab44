"""pycrdt documents from bytes the hub did not make: client updates, stored rows, state vectors.

What bad bytes mean (including a Rust panic) is decided once, in `crdt_core.untrusted`
(`crdt_core/_untrusted.py`); these are the hub's document operations built on it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pycrdt

from crdt_core import untrusted

Doc = pycrdt.Doc[Any]


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
