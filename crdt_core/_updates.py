"""Pure-Python (pycrdt) implementations of the encoded-update functions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pycrdt

from crdt_core._types import ProtocolError


def merge_updates(updates: Sequence[bytes]) -> bytes:
    if not updates:
        return b"\x00\x00"
    if len(updates) == 1:
        return bytes(updates[0])
    try:
        return pycrdt.merge_updates(*updates)
    except ValueError as exc:
        raise ProtocolError(str(exc)) from exc


def diff_update(update: bytes, state_vector: bytes) -> bytes:
    try:
        return pycrdt.get_update(update, state_vector)
    except ValueError as exc:
        raise ProtocolError(str(exc)) from exc


def state_vector(update: bytes) -> bytes:
    try:
        return pycrdt.get_state(update)
    except ValueError as exc:
        raise ProtocolError(str(exc)) from exc


def text_of(update: bytes, name: str) -> str:
    """The plain text of the root ``Y.Text`` called ``name`` in an encoded document."""
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    try:
        doc.apply_update(update)
    except ValueError as exc:
        raise ProtocolError(str(exc)) from exc
    return str(doc.get(name, type=pycrdt.Text))
