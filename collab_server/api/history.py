"""History of a document: versions, past text, activity (who changed what), and restore."""

from __future__ import annotations

import json
from typing import Any

import pycrdt
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from collab_server.api.access import actor_of
from collab_server.api.context import access_of, documents_of, store_of
from collab_server.api.errors import error_response
from collab_server.document_fields import (
    NotATextField,
    check_editable,
    describe,
    fields_of_parts,
    fields_of_update,
    pick,
)
from collab_server.documents import DocumentUnavailable, HubStopping
from collab_server.ports import Documents
from collab_server.textops import replace_all
from collab_server.ydoc import doc_from_parts
from crdt_core import ProtocolError
from persistence.base import CorruptDocument, StoredDocument, StoreError, UnknownVersion
from persistence.group_commit import BacklogFull

DEFAULT_TEXT = "content"
MAX_BODY_BYTES = 64 * 1024


def _limit(request: Request) -> int:
    raw = request.query_params.get("limit", "100")
    return max(1, min(1000, int(raw))) if raw.isdigit() else 100


def _text_of(stored: StoredDocument, field: str) -> str:
    try:
        doc = doc_from_parts(stored.parts)
    except ProtocolError as exc:
        raise CorruptDocument(str(exc)) from exc
    return str(doc.get(field, type=pycrdt.Text))


async def _fields(documents: Documents, name: str) -> list[dict[str, str]]:
    """The document's current fields (live if loaded, else from the store)."""
    state = await documents.encoded_state(name)
    return describe(await fields_of_update(state)) if state is not None else []


async def history(request: Request) -> Response:
    store = store_of(request)
    name = request.path_params["name"]
    try:
        versions = await store.history(name, _limit(request))
        fields = await _fields(documents_of(request), name)
    except CorruptDocument as exc:
        return error_response(500, "corrupt_document", str(exc))
    except StoreError as exc:
        return error_response(503, "store_unavailable", str(exc))
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
    store = store_of(request)
    name = request.path_params["name"]
    seq = int(request.path_params["seq"])
    field = request.query_params.get("field", DEFAULT_TEXT)
    try:
        parts = await store.read_version(name, seq)
        fields = await fields_of_parts(parts.snapshot, list(parts.tail))
    except UnknownVersion as exc:
        return error_response(404, "unknown_version", str(exc))
    except CorruptDocument as exc:
        return error_response(500, "corrupt_document", str(exc))
    except StoreError as exc:
        return error_response(503, "store_unavailable", str(exc))
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
    store = store_of(request)
    name = request.path_params["name"]
    try:
        entries = await store.activity(name, _limit(request))
        fields = await _fields(documents_of(request), name)
    except CorruptDocument as exc:
        return error_response(500, "corrupt_document", str(exc))
    except StoreError as exc:
        return error_response(503, "store_unavailable", str(exc))
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


async def read_json(request: Request) -> dict[str, Any] | Response:
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        return error_response(413, "body_too_large", f"body over {MAX_BODY_BYTES} bytes")
    try:
        data = json.loads(body or b"{}")
    except json.JSONDecodeError as exc:
        return error_response(400, "malformed_json", str(exc))
    if not isinstance(data, dict):
        return error_response(400, "malformed_json", "the body must be a JSON object")
    return data


async def restore(request: Request) -> Response:
    """Make the document's text equal to an old version's, as a new edit on top of the current state."""
    store = store_of(request)
    name = request.path_params["name"]
    data = await read_json(request)
    if isinstance(data, Response):
        return data
    seq = data.get("seq")
    actor = data.get("actor")
    field = data.get("field", DEFAULT_TEXT)
    if not isinstance(seq, int) or isinstance(seq, bool):
        return error_response(400, "invalid_request", "'seq' (an integer version) is required")
    if actor is not None and not isinstance(actor, str):
        return error_response(400, "invalid_request", "'actor' must be a string")
    try:
        old_text = _text_of(await store.read_version(name, seq), str(field))
        async with documents_of(request).using(name) as room:
            check_editable(room.doc, str(field))
            ytext = room.doc.get(str(field), type=pycrdt.Text)
            who = actor_of(request, actor, "restore")
            changed = room.edit(lambda _doc: replace_all(ytext, old_text), who)
        access_of(request).record("restore", who, name, f"to version {seq}")
    except UnknownVersion as exc:
        return error_response(404, "unknown_version", str(exc))
    except NotATextField as exc:
        return error_response(400, "not_a_text_field", str(exc))
    except (DocumentUnavailable, HubStopping) as exc:
        return error_response(503, "document_unavailable", str(exc))
    except BacklogFull as exc:
        return error_response(503, "try_again_later", str(exc))
    except StoreError as exc:
        return error_response(503, "store_unavailable", str(exc))
    return JSONResponse({"document": name, "restored_from": seq, "changed": changed})
