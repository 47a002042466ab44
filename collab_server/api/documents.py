"""Read-only document endpoints: list, text, encoded state, persistence status."""

from __future__ import annotations

import asyncio
from typing import Any

import pycrdt
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from collab_server.api.access import principal_of
from collab_server.api.errors import error_response
from collab_server.api.health import hub_of
from collab_server.auth import InvalidToken
from collab_server.hub import Hub
from persistence.base import CorruptDocument, StoreError

# The root Y.Text that Nova's own clients (viewer, extension, agents) edit.
DEFAULT_TEXT = "content"


async def list_documents(request: Request) -> Response:
    """Documents the caller may read, with live participant counts."""
    hub = hub_of(request)
    try:
        principal = principal_of(request)
    except InvalidToken as exc:
        return error_response(401, "unauthorized", str(exc))
    items = [
        {
            "name": s.name,
            "connections": s.connections,
            "presence": s.presence,
            "updated_at": s.updated_at,
            "loaded": s.loaded,
        }
        for s in await hub.documents()
        if principal.role_for(s.name) is not None
    ]
    return JSONResponse({"documents": items})


async def encoded_state(hub: Hub, name: str) -> bytes | None:
    """The document's full state as one v1 update, live if loaded, else from the store."""
    room = hub.rooms.get(name)
    if room is not None:
        return room.doc.get_update()
    stored = await hub.store.load(name)
    if stored.is_empty:
        return None
    parts = ([stored.snapshot] if stored.snapshot is not None else []) + list(stored.tail)
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    for part in parts:
        doc.apply_update(part)
    await asyncio.sleep(0)
    return doc.get_update()


async def _state_or_error(request: Request) -> bytes | Response:
    name = request.path_params["name"]
    try:
        state = await encoded_state(hub_of(request), name)
    except CorruptDocument as exc:
        return error_response(500, "corrupt_document", str(exc))
    except StoreError as exc:
        return error_response(503, "store_unavailable", str(exc))
    if state is None:
        return error_response(404, "document_not_found", f"no document named {name!r}")
    return state


async def document_state(request: Request) -> Response:
    state = await _state_or_error(request)
    if isinstance(state, Response):
        return state
    return Response(state, media_type="application/octet-stream")


async def document_status(request: Request) -> Response:
    hub = hub_of(request)
    name = request.path_params["name"]
    room = hub.rooms.get(name)
    persisted = hub.writer.last_persisted.get(name)
    return JSONResponse(
        {
            "document": name,
            "loaded": room is not None,
            "connections": len(room.peers) if room else 0,
            "presence": room.presence.states() if room else {},
            "last_persisted_seq": persisted.seq if persisted else None,
            "last_persisted_at": persisted.at if persisted else None,
            "unsaved": hub.writer.document_pending(name),
        }
    )
