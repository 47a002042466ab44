"""HTTP edits for stateless agents: read with a version token, edit against that version.

    GET  /api/documents/<name>/text            -> {"text", "version"}
    POST /api/documents/<name>/edits           {"version", "actor", "edits": [...]} or {"version", "text"}
    POST /api/documents/<name>/suggestions     same body: stored, not applied
    GET  /api/documents/<name>/suggestions
    POST /api/documents/<name>/suggestions/<id>/accept | /reject

An edit is {"start", "end", "text"} (code points in the version's text) or
{"find", "replace"} (an exact snippet occurring once in that version). Edits against an
older version are rebased onto the live text (collab_server/rebase.py); one whose target
changed meanwhile is refused with 409 and the range, and nothing is applied.
Suggestions live in the document itself (root map ``nova:suggestions``), so they are
stored, synced to every node and visible to every client.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pycrdt
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from collab_server.api.access import actor_of
from collab_server.api.context import documents_of
from collab_server.api.errors import error_response
from collab_server.api.history import read_json
from collab_server.document_fields import check_editable, describe, fields_of_update, pick
from collab_server.documents import DocumentUnavailable, HubStopping
from collab_server.rebase import (
    Conflict,
    EditError,
    RangeEdit,
    apply_rebased,
    edits_for_new_text,
    find_edit,
    rebase,
    text_at,
    version_token,
)
from collab_server.room import Room
from crdt_core.fields import FieldKind
from persistence.base import StoreError
from persistence.group_commit import BacklogFull

DEFAULT_TEXT = "content"
SUGGESTIONS = "nova:suggestions"
MAX_EDITS = 1_000


def parse_edits(data: dict[str, Any], old: str) -> list[RangeEdit]:
    """The request's edits as ranges of the version's text (raises EditError)."""
    if "text" in data:
        if not isinstance(data["text"], str):
            raise EditError("'text' must be a string")
        return edits_for_new_text(old, data["text"])
    raw = data.get("edits")
    if not isinstance(raw, list) or not raw:
        raise EditError("give 'edits' (a non-empty list) or 'text' (the whole new text)")
    if len(raw) > MAX_EDITS:
        raise EditError(f"at most {MAX_EDITS} edits per request")
    edits = []
    for item in raw:
        if not isinstance(item, dict):
            raise EditError("each edit is an object")
        if "find" in item:
            find, replace = item.get("find"), item.get("replace", "")
            if not isinstance(find, str) or not isinstance(replace, str):
                raise EditError("'find' and 'replace' must be strings")
            edits.append(find_edit(old, find, replace))
            continue
        start, end, text = item.get("start"), item.get("end", item.get("start")), item.get("text", "")
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end)):
            raise EditError("'start' and 'end' must be integers")
        if not isinstance(text, str):
            raise EditError("'text' must be a string")
        assert isinstance(start, int) and isinstance(end, int)
        edits.append(RangeEdit(start, end, text))
    return edits


def conflict_response(conflict: Conflict) -> Response:
    return JSONResponse(
        {
            "error": {
                "code": "conflict",
                "message": str(conflict),
                "range": {"start": conflict.start, "end": conflict.end},
                "expected": conflict.expected,
                "found": conflict.found,
            }
        },
        status_code=409,
    )


def _field(data: dict[str, Any]) -> str:
    field = data.get("field", DEFAULT_TEXT)
    if not isinstance(field, str) or not field:
        raise EditError("'field' must be a non-empty string")
    return field


def _apply(room: Room, data: dict[str, Any], actor: str) -> dict[str, Any]:
    """Rebase and apply a request's edits in one transaction; returns the response body."""
    field = _field(data)
    check_editable(room.doc, field)  # raises NotATextField, an EditError (400)
    token = data.get("version")
    if token is None:
        token = version_token(room.doc)  # edits against the live text as it is now
    if not isinstance(token, str):
        raise EditError("'version' must be the token returned by a read")
    old = text_at(room.doc, token, field)
    _, rebased = rebase(room.doc, token, field, parse_edits(data, old))
    changed = room.edit(lambda doc: apply_rebased(doc, field, rebased), actor)
    text = str(room.doc.get(field, type=pycrdt.Text))
    return {"version": version_token(room.doc), "text": text, "applied": len(rebased), "changed": changed}


def _actor(data: dict[str, Any]) -> str:
    actor = data.get("actor", "agent:anonymous")
    if not isinstance(actor, str) or not actor or len(actor) > 128:
        raise EditError("'actor' must be a string of 1-128 characters")
    return actor


async def read_text(request: Request) -> Response:
    documents = documents_of(request)
    name = request.path_params["name"]
    field = request.query_params.get("field", DEFAULT_TEXT)
    try:
        if not await documents.exists(name):
            return error_response(404, "document_not_found", f"no document named {name!r}")
        async with documents.using(name) as room:
            fields = await fields_of_update(room.doc.get_update())
            chosen = pick(fields, field)
            # A Y.Text is read live (the version token matches it exactly); others as rendered.
            text = (
                str(room.doc.get(field, type=pycrdt.Text)) if chosen.kind is FieldKind.TEXT else chosen.text
            )
            return JSONResponse(
                {
                    "document": name,
                    "field": field,
                    "kind": chosen.kind.value,
                    "text": text,
                    "version": version_token(room.doc),
                    "fields": describe(fields),
                }
            )
    except (DocumentUnavailable, HubStopping, StoreError) as exc:
        return error_response(503, "document_unavailable", str(exc))


async def _guarded(request: Request, action: str) -> Response:
    """Shared error handling of the mutating endpoints."""
    documents = documents_of(request)
    name = request.path_params["name"]
    data = await read_json(request)
    if isinstance(data, Response):
        return data
    try:
        if data.get("version") is not None and not await documents.exists(name):
            return error_response(404, "document_not_found", f"no document named {name!r}")
        actor = actor_of(request, _actor(data) if "actor" in data else None, "agent:anonymous")
        async with documents.using(name) as room:
            if action == "edit":
                body = _apply(room, data, actor)
            elif action == "suggest":
                body = _suggest(room, data, actor)
            else:
                decider = actor_of(request, data.get("actor"), "human:anonymous")
                body = _decide(room, request.path_params["suggestion"], action, decider)
        return JSONResponse({"document": name, **body})
    except Conflict as conflict:
        return conflict_response(conflict)
    except LookupError as exc:
        return error_response(404, "suggestion_not_found", str(exc.args[0]))
    except EditError as exc:
        return error_response(400, exc.code, str(exc))
    except BacklogFull as exc:
        return error_response(503, "try_again_later", str(exc))
    except (DocumentUnavailable, HubStopping, StoreError) as exc:
        return error_response(503, "document_unavailable", str(exc))


async def apply_edits(request: Request) -> Response:
    return await _guarded(request, "edit")


async def suggest(request: Request) -> Response:
    return await _guarded(request, "suggest")


async def accept(request: Request) -> Response:
    return await _guarded(request, "accept")


async def reject(request: Request) -> Response:
    return await _guarded(request, "reject")


def _suggestions(room: Room) -> pycrdt.Map[Any]:
    suggestions: pycrdt.Map[Any] = room.doc.get(SUGGESTIONS, type=pycrdt.Map)
    return suggestions


def _suggest(room: Room, data: dict[str, Any], actor: str) -> dict[str, Any]:
    field = _field(data)
    check_editable(room.doc, field)  # raises NotATextField, an EditError (400)
    token = data.get("version") or version_token(room.doc)
    if not isinstance(token, str):
        raise EditError("'version' must be the token returned by a read")
    old = text_at(room.doc, token, field)
    edits = parse_edits(data, old)
    rebase(room.doc, token, field, edits)  # refuse now what could never apply
    suggestion_id = uuid.uuid4().hex[:12]
    record = {
        "id": suggestion_id,
        "author": actor,
        "version": token,
        "field": field,
        "edits": [{"start": e.start, "end": e.end, "text": e.text} for e in edits],
        "status": "open",
        "created_at": time.time(),
    }
    room.edit(lambda _doc: _suggestions(room).__setitem__(suggestion_id, json.dumps(record)), actor)
    return {"suggestion": record}


def _decide(room: Room, suggestion_id: str, action: str, decider: str) -> dict[str, Any]:
    raw = _suggestions(room).get(suggestion_id)
    if raw is None:
        raise LookupError(f"no suggestion {suggestion_id!r}")
    record = json.loads(raw)
    if record["status"] != "open":
        raise EditError(f"suggestion {suggestion_id} is already {record['status']}")
    record.update(status="accepted" if action == "accept" else "rejected", decided_by=decider)
    if action == "accept":
        edits = [RangeEdit(e["start"], e["end"], e["text"]) for e in record["edits"]]
        _, rebased = rebase(room.doc, record["version"], record["field"], edits)

        def accept_and_apply(doc: pycrdt.Doc[Any]) -> None:
            apply_rebased(doc, record["field"], rebased)
            _suggestions(room)[suggestion_id] = json.dumps(record)

        # The suggestion's edits are attributed to its author; accepting is part of the same change.
        room.edit(accept_and_apply, record["author"])
    else:
        room.edit(lambda _doc: _suggestions(room).__setitem__(suggestion_id, json.dumps(record)), decider)
    return {"suggestion": record, "text": str(room.doc.get(record["field"], type=pycrdt.Text))}


async def list_suggestions(request: Request) -> Response:
    documents = documents_of(request)
    name = request.path_params["name"]
    try:
        if not await documents.exists(name):
            return error_response(404, "document_not_found", f"no document named {name!r}")
        async with documents.using(name) as room:
            records = [json.loads(value) for value in _suggestions(room).values()]
    except (DocumentUnavailable, HubStopping, StoreError) as exc:
        return error_response(503, "document_unavailable", str(exc))
    status = request.query_params.get("status")
    if status:
        records = [r for r in records if r["status"] == status]
    return JSONResponse({"document": name, "suggestions": sorted(records, key=lambda r: r["created_at"])})
