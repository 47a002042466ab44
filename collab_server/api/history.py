"""History of a document: versions, past text, activity (who changed what), and restore."""

from __future__ import annotations

import pycrdt
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from collab_server.api.access import actor_of, document_of
from collab_server.api.bodies import (
    MAX_INTEGER,
    bounded_int,
    optional_string,
    query_int,
    query_text,
    read_json_object,
)
from collab_server.api.context import state_of
from collab_server.api.durability import committed, require_store
from collab_server.api.edits import (
    DEFAULT_TEXT,
    MAX_FIELD_CHARS,
    apply_staged,
    field_name,
    text_of,
)
from collab_server.api.errors import ApiError
from collab_server.document_access import MAX_ACTOR_CHARS
from collab_server.document_fields import check_editable, describe, fields_of_parts, fields_of_update, pick
from collab_server.ports import Documents, Durability
from collab_server.textops import replace_all
from collab_server.ydoc import doc_from_parts
from crdt_core import ProtocolError
from persistence.base import CorruptDocument, StoredDocument

DEFAULT_LIMIT = 100  # history and activity rows per call, unless the caller asks
MAX_LIMIT = 1000


def _text_of(stored: StoredDocument, field: str) -> str:
    try:
        doc = doc_from_parts(stored.parts)
    except ProtocolError as exc:
        raise CorruptDocument(str(exc)) from exc
    return text_of(doc, field)


def _field(raw: object) -> str:
    try:
        return field_name(raw)
    except ValueError as exc:
        raise ApiError(400, "invalid_request", str(exc)) from exc


async def _fields(documents: Documents, name: str) -> list[dict[str, str]]:
    """The document's current fields (live if loaded, else from the store)."""
    state = await documents.encoded_state(name)
    return describe(await fields_of_update(state)) if state is not None else []


async def history(request: Request) -> Response:
    store = state_of(request).store
    name = document_of(request)
    versions = await store.history(name, query_int(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT))
    fields = await _fields(state_of(request).documents, name)
    return JSONResponse(
        {
            "document": name,
            "fields": fields,
            "versions": [
                {
                    "seq": v.seq,
                    "timestamp": v.timestamp,
                    "actors": list(v.actors),
                    "update_bytes": v.update_bytes,
                    "kind": v.kind,
                }
                for v in versions
            ],
        }
    )


async def version_text(request: Request) -> Response:
    store = state_of(request).store
    name = document_of(request)
    seq = bounded_int(request.path_params["seq"], "seq", 0, MAX_INTEGER)
    field = query_text(request, "field", DEFAULT_TEXT, MAX_FIELD_CHARS)
    parts = await store.read_version(name, seq)
    fields = await fields_of_parts(parts.parts)
    chosen = pick(fields, field)
    return JSONResponse(
        {
            "document": name,
            "seq": seq,
            "field": field,
            "kind": chosen.kind.value,
            "text": chosen.text,
            "fields": describe(fields),
        }
    )


async def activity(request: Request) -> Response:
    store = state_of(request).store
    name = document_of(request)
    entries = await store.activity(name, query_int(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT))
    fields = await _fields(state_of(request).documents, name)
    return JSONResponse(
        {
            "document": name,
            "fields": fields,
            "activity": [
                {
                    "seq": e.seq,
                    "timestamp": e.timestamp,
                    "actor": e.actor,
                    "origin_node": e.origin_node,
                    "update_bytes": e.update_bytes,
                }
                for e in entries
            ],
        }
    )


async def restore_text(
    documents: Documents, durability: Durability, name: str, old: StoredDocument, *, field: str, who: str
) -> bool:
    """Make the live text of ``field`` equal to the one ``old`` rebuilds, as one new edit every
    client sees (nothing newer is lost from the history); waits for it to be stored."""
    old_text = _text_of(old, field)
    async with documents.using(name) as room:
        check_editable(room.doc, field)  # raises NotATextField, an EditError (400)
        changes = apply_staged(room, lambda doc: replace_all(doc.get(field, type=pycrdt.Text), old_text), who)
        await committed(durability, name)
    return changes


async def restore(request: Request) -> Response:
    """Make the document's text equal to an old version's, as a new edit on top of the current state."""
    store = state_of(request).store
    name = document_of(request)
    data = await read_json_object(request)
    seq = data.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise ApiError(400, "invalid_request", "'seq' (a non-negative integer version) is required")
    field = _field(data.get("field", DEFAULT_TEXT))
    who = actor_of(request, optional_string(data, "actor", MAX_ACTOR_CHARS), "restore")
    require_store(state_of(request).durability)
    changes = await restore_text(
        state_of(request).documents,
        state_of(request).durability,
        name,
        await store.read_version(name, seq),
        field=field,
        who=who,
    )
    state_of(request).access.record("restore", who, name, f"to version {seq}")
    return JSONResponse({"document": name, "restored_from": seq, "changed": changes})
