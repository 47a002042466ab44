"""Pure-Python (pycrdt) implementations of the encoded-update functions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pycrdt

from crdt_core._framing import decode_var_uint
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


def compact(snapshot: bytes, tail: Sequence[bytes]) -> bytes:
    """Snapshot plus log tail as the document's own encoding (deleted content collected).

    If some structs cannot be integrated (their dependencies are missing), the plain
    merge is returned instead so that nothing is lost.
    """
    merged = merge_updates([snapshot, *tail])
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    try:
        doc.apply_update(merged)
    except ValueError as exc:
        raise ProtocolError(str(exc)) from exc
    if _decoded_state_vector(doc.get_state()) != _decoded_state_vector(state_vector(merged)):
        return merged
    return doc.get_update()


def _decoded_state_vector(encoded: bytes) -> dict[int, int]:
    count, offset = decode_var_uint(encoded, 0)
    clocks: dict[int, int] = {}
    for _ in range(count):
        client, offset = decode_var_uint(encoded, offset)
        clocks[client], offset = decode_var_uint(encoded, offset)
    return clocks


def _native_only(name: str) -> NotImplementedError:
    return NotImplementedError(f"{name} needs the native backend (pycrdt has no v2 encoding)")


def update_v1_to_v2(update: bytes) -> bytes:
    raise _native_only("update_v1_to_v2")


def update_v2_to_v1(update: bytes) -> bytes:
    raise _native_only("update_v2_to_v1")


def merge_updates_v2(updates: Sequence[bytes]) -> bytes:
    raise _native_only("merge_updates_v2")
