"""A document's root fields for the HTTP API: discovered off the event loop when large.

The text, version and history endpoints answer with the document's fields
(``[{"name", "kind"}]``) and read any of them as plain text; only ``text`` fields (Y.Text)
take edits. Discovery (``crdt_core.fields``) works on an encoded copy, never on the live
document, so no root's type is ever fixed by reading it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pycrdt

import crdt_core
from collab_server.rebase import EditError
from crdt_core.fields import Field, FieldKind, live_kind, read_fields

# Encoded documents at least this large are read in a worker thread.
_OFF_LOOP_BYTES = 256 * 1024


class NotATextField(EditError):
    """The field exists but is not a Y.Text: readable as text, not editable through the API."""

    code = "not_a_text_field"

    def __init__(self, name: str, kind: FieldKind) -> None:
        super().__init__(f"field {name!r} is a {kind.value} type: it can be read as text, not edited")
        self.kind = kind


async def fields_of_update(update: bytes) -> list[Field]:
    if len(update) >= _OFF_LOOP_BYTES:
        return await asyncio.to_thread(read_fields, update)
    return read_fields(update)


async def fields_of_parts(parts: Sequence[bytes]) -> list[Field]:
    """``parts``: a stored document's updates in order (``StoredDocument.parts``)."""
    return await fields_of_update(crdt_core.merge_updates(parts))


def describe(fields: list[Field]) -> list[dict[str, str]]:
    return [{"name": field.name, "kind": field.kind.value} for field in fields]


def pick(fields: list[Field], name: str) -> Field:
    """The field called ``name``; a missing one reads as an empty text field."""
    for field in fields:
        if field.name == name:
            return field
    return Field(name, FieldKind.TEXT, "")


def check_editable(doc: pycrdt.Doc[Any], name: str) -> None:
    """Raise NotATextField unless ``name`` is a Y.Text (or not there yet) in the live document."""
    kind = live_kind(doc, name)
    if kind is not None and kind is not FieldKind.TEXT:
        raise NotATextField(name, kind)
