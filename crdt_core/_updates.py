"""Pure-Python (pycrdt) implementations of the encoded-update functions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pycrdt

from crdt_core._untrusted import untrusted


def merge_updates(updates: Sequence[bytes]) -> bytes:
    if not updates:
        return b"\x00\x00"
    if len(updates) == 1:
        return bytes(updates[0])
    return untrusted("update", lambda: pycrdt.merge_updates(*updates))


def diff_update(update: bytes, state_vector: bytes) -> bytes:
    return untrusted("update or state vector", lambda: pycrdt.get_update(update, state_vector))


def state_vector(update: bytes) -> bytes:
    return untrusted("update", lambda: pycrdt.get_state(update))


def text_of(update: bytes, name: str) -> str:
    """The plain text of the root ``Y.Text`` called ``name`` in an encoded document."""
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    untrusted("update", lambda: doc.apply_update(update))
    return str(doc.get(name, type=pycrdt.Text))


def compact(snapshot: bytes, tail: Sequence[bytes]) -> bytes:
    """Snapshot plus log tail as one update: the smaller of their merge and the encoding
    of the document they make (deleted content collected).

    If some structs cannot be integrated yet (their dependencies are missing), the merge
    is returned so that nothing is lost. Deletes of structs that are missing entirely
    are only kept by the native backend (pycrdt does not expose its pending delete set).
    """
    merged = merge_updates([snapshot, *tail])
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    untrusted("update", lambda: doc.apply_update(merged))
    if diff_update(merged, doc.get_state())[:1] != b"\x00":
        return merged  # structs the document could not integrate
    encoded = doc.get_update()
    return encoded if len(encoded) < len(merged) else merged


def _native_only(name: str) -> NotImplementedError:
    return NotImplementedError(f"{name} needs the native backend (pycrdt has no v2 encoding)")


def update_v1_to_v2(update: bytes) -> bytes:
    raise _native_only("update_v1_to_v2")


def update_v2_to_v1(update: bytes) -> bytes:
    raise _native_only("update_v2_to_v1")


def merge_updates_v2(updates: Sequence[bytes]) -> bytes:
    raise _native_only("merge_updates_v2")
