"""Suggestions: edits stored in the document for a person to accept or reject.

    POST /api/documents/<name>/suggestions     same body as an edit: stored, not applied
    GET  /api/documents/<name>/suggestions     ?status=open|accepted|rejected
    POST /api/documents/<name>/suggestions/<id>/accept | /reject

They live in the document itself (root map ``nova:suggestions``), so they are stored,
synced to every node and visible to every client — and any writer can put anything there.
So records are untrusted data: each is parsed against a strict shape (malformed ones are
skipped and reported under ``"skipped"``, never a 500), and what the server attributes comes
from the verified caller: the author recorded at submission is the caller's token subject,
and an accepted suggestion's edits are attributed to whoever accepts it (the ``author``
field of a record is what a writer claims, shown but never trusted).
"""

from __future__ import annotations

import json
import logging
import math
import time
import uuid
from dataclasses import asdict, dataclass, replace
from typing import Any

import pycrdt
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from collab_server.api.access import actor_of, document_of
from collab_server.api.bodies import optional_string, read_json_object
from collab_server.api.context import state_of
from collab_server.api.durability import durable_write
from collab_server.api.edits import (
    MAX_EDITS,
    apply_staged,
    document_exists,
    edit_endpoint,
    field_name,
    parse_edit_request,
    prepare,
    text_of,
)
from collab_server.api.errors import ApiError
from collab_server.document_access import MAX_ACTOR_CHARS
from collab_server.rebase import EditError, RangeEdit, apply_rebased, rebase, text_at
from collab_server.room import Room

logger = logging.getLogger(__name__)

SUGGESTIONS = "nova:suggestions"
STATUSES = ("open", "accepted", "rejected")
MAX_RECORD_CHARS = 256 * 1024  # one stored suggestion record (JSON text); a corrupt longer one is skipped


class MalformedSuggestion(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Suggestion:
    id: str
    author: str
    version: str
    field: str
    edits: tuple[RangeEdit, ...]
    status: str
    created_at: float
    decided_by: str | None = None
    model: str | None = None  # claimed by the caller, like presence's model

    def to_json(self) -> dict[str, Any]:
        record = asdict(self)
        record["edits"] = [{"start": e.start, "end": e.end, "text": e.text} for e in self.edits]
        for optional in ("decided_by", "model"):
            if record[optional] is None:
                del record[optional]
        return record


def parse_record(key: str, raw: object) -> Suggestion:
    """A stored record, checked field by field (raises MalformedSuggestion)."""
    if not isinstance(raw, str) or len(raw) > MAX_RECORD_CHARS:
        raise MalformedSuggestion("not a JSON string of a sane size")
    try:
        record = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise MalformedSuggestion("not JSON") from exc
    if not isinstance(record, dict):
        raise MalformedSuggestion("not an object")
    strings = {name: record.get(name) for name in ("id", "author", "version", "field", "status")}
    if not all(isinstance(value, str) and value for value in strings.values()):
        raise MalformedSuggestion("id, author, version, field and status must be non-empty strings")
    if record["id"] != key:
        raise MalformedSuggestion("its id is not its key")
    if record["status"] not in STATUSES or len(record["author"]) > MAX_ACTOR_CHARS:
        raise MalformedSuggestion("unknown status or over-long author")
    try:
        field_name(record["field"])
    except EditError as exc:
        raise MalformedSuggestion(str(exc)) from exc
    created_at = record.get("created_at")
    if (
        isinstance(created_at, bool)
        or not isinstance(created_at, (int, float))
        or not math.isfinite(created_at)
    ):
        raise MalformedSuggestion("created_at must be a number")
    decided_by = record.get("decided_by")
    if decided_by is not None and not isinstance(decided_by, str):
        raise MalformedSuggestion("decided_by must be a string")
    model = record.get("model")
    if model is not None and (not isinstance(model, str) or len(model) > MAX_ACTOR_CHARS):
        raise MalformedSuggestion("model must be a short string")
    raw_edits = record.get("edits")
    if not isinstance(raw_edits, list) or not raw_edits or len(raw_edits) > MAX_EDITS:
        raise MalformedSuggestion("edits must be a non-empty list")
    edits = []
    for item in raw_edits:
        if not isinstance(item, dict):
            raise MalformedSuggestion("each edit is an object")
        start, end, text = item.get("start"), item.get("end"), item.get("text")
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (start, end)):
            raise MalformedSuggestion("start and end must be non-negative integers")
        if not isinstance(text, str):
            raise MalformedSuggestion("text must be a string")
        assert isinstance(start, int) and isinstance(end, int)
        edits.append(RangeEdit(start, end, text))
    return Suggestion(
        id=record["id"],
        author=record["author"],
        version=record["version"],
        field=record["field"],
        edits=tuple(edits),
        status=record["status"],
        created_at=float(created_at),
        decided_by=decided_by,
        model=model,
    )


def _suggestions(doc: pycrdt.Doc[Any]) -> pycrdt.Map[Any]:
    suggestions: pycrdt.Map[Any] = doc.get(SUGGESTIONS, type=pycrdt.Map)
    return suggestions


def _store(suggestion: Suggestion) -> Any:
    encoded = json.dumps(suggestion.to_json())
    return lambda doc: _suggestions(doc).__setitem__(suggestion.id, encoded)


def suggest_in_room(room: Room, data: dict[str, Any], author: str) -> dict[str, Any]:
    """Validate an edit body and store it as an open suggestion by ``author`` (the verified
    caller), all or nothing (the HTTP and gRPC suggestion); the caller waits for the commit."""
    edit = parse_edit_request(data)
    model = optional_string(data, "model", MAX_ACTOR_CHARS)
    token, _ = prepare(room, edit)  # refuse now what could never apply
    suggestion = Suggestion(
        id=uuid.uuid4().hex[:12],
        author=author,
        version=token,
        field=edit.field,
        edits=tuple(edit.ranges(_text_at_version(room, token, edit.field))),
        status="open",
        created_at=time.time(),
        model=model,
    )
    apply_staged(room, _store(suggestion), author)
    return {"suggestion": suggestion.to_json()}


async def suggest(request: Request) -> Response:
    # The model a suggestion names is checked with the rest, before the document is loaded.
    return await edit_endpoint(request, suggest_in_room, also_check=_check_model)


def _check_model(data: dict[str, Any]) -> None:
    optional_string(data, "model", MAX_ACTOR_CHARS)


def _text_at_version(room: Room, token: str, field: str) -> str:
    return text_at(room.doc, token, field)


async def accept(request: Request) -> Response:
    return await _decide(request, "accepted")


async def reject(request: Request) -> Response:
    return await _decide(request, "rejected")


async def _decide(request: Request, status: str) -> Response:
    state = state_of(request)
    name = document_of(request)
    suggestion_id = request.path_params["suggestion"]
    data = await read_json_object(request)
    decider = actor_of(request, optional_string(data, "actor", MAX_ACTOR_CHARS), "human:anonymous")

    def decide(room: Room) -> tuple[Suggestion, str]:
        raw = _suggestions(room.doc).get(suggestion_id)
        if raw is None:
            raise ApiError(404, "suggestion_not_found", f"no suggestion {suggestion_id[:64]!r}")
        try:
            suggestion = parse_record(suggestion_id, raw)
        except MalformedSuggestion as exc:
            raise ApiError(422, "malformed_suggestion", f"suggestion {suggestion_id[:64]!r}: {exc}") from exc
        if suggestion.status != "open":
            raise EditError(f"suggestion {suggestion.id} is already {suggestion.status}")
        decided = replace(suggestion, status=status, decided_by=decider)
        if status == "accepted":
            _, rebased = rebase(room.doc, suggestion.version, suggestion.field, list(suggestion.edits))

            def accept_and_apply(doc: pycrdt.Doc[Any]) -> None:
                apply_rebased(doc, suggestion.field, rebased)
                _store(decided)(doc)

            # The change is made by whoever accepts it: the only verified party here.
            apply_staged(room, accept_and_apply, decider)
        else:
            apply_staged(room, _store(decided), decider)
        return decided, text_of(room.doc, suggestion.field)

    decided, text = await durable_write(state.documents, state.durability, name, decide, must_exist=True)
    return JSONResponse({"document": name, "suggestion": decided.to_json(), "text": text})


async def list_suggestions(request: Request) -> Response:
    documents = state_of(request).documents
    name = document_of(request)
    status = request.query_params.get("status")
    if status is not None and status not in STATUSES:
        raise ApiError(400, "invalid_request", f"'status' must be one of {', '.join(STATUSES)}")
    if not await document_exists(documents, name):
        raise ApiError(404, "document_not_found", f"no document named {name!r}")
    async with documents.using(name) as room:
        stored = list(_suggestions(room.doc).items())
    records: list[Suggestion] = []
    skipped: list[dict[str, str]] = []
    for key, raw in stored:
        try:
            records.append(parse_record(key, raw))
        except MalformedSuggestion as exc:
            skipped.append({"id": key[:64], "reason": str(exc)})
    if skipped:
        logger.warning("document %r: skipped %d malformed suggestion records", name, len(skipped))
    if status:
        records = [r for r in records if r.status == status]
    records.sort(key=lambda r: r.created_at)
    return JSONResponse({"document": name, "suggestions": [r.to_json() for r in records], "skipped": skipped})
