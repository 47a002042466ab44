"""HTTP edits for stateless agents: read with a version token, edit against that version.

    GET  /api/documents/<name>/text            -> {"text", "version"}
    POST /api/documents/<name>/edits           {"version", "actor", "edits": [...]} or {"version", "text"}

An edit is {"start", "end", "text"} (code points in the version's text) or
{"find", "replace"} (an exact snippet occurring once in that version). Edits against an
older version are rebased onto the live text (collab_server/rebase.py); one whose target
changed meanwhile is refused with 409 and the range, and nothing is applied.

Every request is validated in full before the document is touched, then applied as one
update (collab_server/staged_edit.py): all of it or none of it. In strict durability the
answer comes after the commit (collab_server/api/durability.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pycrdt
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from collab_server.api.access import actor_of, document_of
from collab_server.api.bodies import optional_string, query_text, read_json_object
from collab_server.api.context import state_of
from collab_server.api.durability import durable_write
from collab_server.api.errors import ApiError
from collab_server.document_access import MAX_ACTOR_CHARS
from collab_server.document_fields import check_editable, describe, fields_of_update, pick
from collab_server.ports import Documents
from collab_server.rebase import (
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
from collab_server.staged_edit import stage
from crdt_core.fields import FieldKind

DEFAULT_TEXT = "content"
# Root names Nova keeps for itself (the suggestions map): never edited as text.
RESERVED_PREFIX = "nova:"
# API contract of every write endpoint (HTTP and gRPC share these parsers); a body is bounded
# by `max_http_body_bytes` before any of them is checked.
MAX_EDITS = 1_000  # edits in one request (applied as one update)
MAX_FIELD_CHARS = 128  # a root field's name
MAX_VERSION_CHARS = 64 * 1024  # the opaque version (a state vector) an edit is based on


@dataclass(frozen=True, slots=True)
class EditRequest:
    """A validated edit request; its ranges still need the version's text (``ranges``)."""

    field: str
    version: str | None
    actor: str | None
    new_text: str | None
    edits: tuple[dict[str, Any], ...]

    def ranges(self, old: str) -> list[RangeEdit]:
        if self.new_text is not None:
            return edits_for_new_text(old, self.new_text)
        ranges = []
        for item in self.edits:
            if "find" in item:
                ranges.append(find_edit(old, item["find"], item.get("replace", "")))
            else:
                start = item["start"]
                ranges.append(RangeEdit(start, item.get("end", start), item.get("text", "")))
        return ranges


def field_name(raw: object) -> str:
    if not isinstance(raw, str) or not raw or len(raw) > MAX_FIELD_CHARS:
        raise EditError(f"'field' must be a string of 1-{MAX_FIELD_CHARS} characters")
    if raw.startswith(RESERVED_PREFIX):
        raise EditError(f"fields starting with {RESERVED_PREFIX!r} are reserved")
    return raw


def parse_edit_request(data: dict[str, Any]) -> EditRequest:
    """Check every part of the body's shape and types (raises EditError / ApiError)."""
    field = field_name(data.get("field", DEFAULT_TEXT))
    version = data.get("version")
    if version is not None and (not isinstance(version, str) or len(version) > MAX_VERSION_CHARS):
        raise EditError("'version' must be the token returned by a read")
    actor = optional_string(data, "actor", MAX_ACTOR_CHARS)
    if "text" in data:
        if not isinstance(data["text"], str):
            raise EditError("'text' must be a string")
        return EditRequest(field, version, actor, data["text"], ())
    raw = data.get("edits")
    if not isinstance(raw, list) or not raw:
        raise EditError("give 'edits' (a non-empty list) or 'text' (the whole new text)")
    if len(raw) > MAX_EDITS:
        raise EditError(f"at most {MAX_EDITS} edits per request")
    for item in raw:
        _check_edit(item)
    return EditRequest(field, version, actor, None, tuple(raw))


def _check_edit(item: object) -> None:
    if not isinstance(item, dict):
        raise EditError("each edit is an object")
    if "find" in item:
        if not isinstance(item["find"], str) or not isinstance(item.get("replace", ""), str):
            raise EditError("'find' and 'replace' must be strings")
        return
    start, end = item.get("start"), item.get("end", item.get("start"))
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end)):
        raise EditError("'start' and 'end' must be integers")
    if not isinstance(item.get("text", ""), str):
        raise EditError("'text' must be a string")


def text_of(doc: pycrdt.Doc[Any], field: str) -> str:
    return str(doc.get(field, type=pycrdt.Text))


def prepare(room: Room, request: EditRequest) -> tuple[str, list[RangeEdit]]:
    """The version token the request is against and its edits in live positions (raises
    EditError or Conflict; touches nothing)."""
    check_editable(room.doc, request.field)  # raises NotATextField, an EditError (400)
    token = request.version if request.version is not None else version_token(room.doc)
    old = text_at(room.doc, token, request.field)
    _, rebased = rebase(room.doc, token, request.field, request.ranges(old))
    return token, rebased


def edit_in_room(room: Room, data: dict[str, Any], actor: str) -> dict[str, Any]:
    """Validate, rebase and apply an edit body in ``room``, all or nothing (the HTTP and gRPC
    edit); returns the answer's fields. The caller waits for the commit."""
    edit = parse_edit_request(data)
    _, rebased = prepare(room, edit)
    changed = apply_staged(room, lambda doc: apply_rebased(doc, edit.field, rebased), actor)
    return {
        "version": version_token(room.doc),
        "text": text_of(room.doc, edit.field),
        "applied": len(rebased),
        "changed": changed,
    }


def apply_staged(room: Room, mutate: Any, actor: str) -> bool:
    """Apply a change made on a staged copy as one update: whole, or (on any error) not at all."""
    update = stage(room.doc, mutate)
    return room.apply_update(update, None, actor)


async def document_exists(documents: Documents, name: str) -> bool:
    return await documents.exists(name)


async def read_text(request: Request) -> Response:
    documents = state_of(request).documents
    name = document_of(request)
    field = query_text(request, "field", DEFAULT_TEXT, MAX_FIELD_CHARS)
    if not await document_exists(documents, name):
        raise ApiError(404, "document_not_found", f"no document named {name!r}")
    async with documents.using(name) as room:
        fields = await fields_of_update(room.doc.get_update())
        chosen = pick(fields, field)
        # A Y.Text is read live (the version token matches it exactly); other kinds as rendered,
        # never by asking the live document for a Y.Text (that would fix the root's type).
        text = text_of(room.doc, field) if chosen.kind is FieldKind.TEXT else chosen.text
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


async def apply_edits(request: Request) -> Response:
    return await edit_endpoint(request, edit_in_room)


async def edit_endpoint(
    request: Request,
    change: Callable[[Room, dict[str, Any], str], dict[str, Any]],
    also_check: Callable[[dict[str, Any]], None] | None = None,
) -> Response:
    """An edit request (applied, or suggested): the body checked in full before the document
    is loaded (``also_check``: what the endpoint adds to an edit), then ``change`` made as one
    durable write."""
    state = state_of(request)
    name = document_of(request)
    data = await read_json_object(request)
    edit = parse_edit_request(data)
    if also_check is not None:
        also_check(data)
    actor = actor_of(request, edit.actor, "agent:anonymous")
    result = await durable_write(
        state.documents,
        state.durability,
        name,
        lambda room: change(room, data, actor),
        must_exist=edit.version is not None,
    )
    return JSONResponse({"document": name, **result})
