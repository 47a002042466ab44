"""Read-only document endpoints: list, text, encoded state, persistence status."""

from __future__ import annotations

import asyncio
from typing import Any

import pycrdt
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from collab_server.api.access import caller, document_of
from collab_server.api.context import hub_of
from collab_server.api.errors import ApiError
from collab_server.hub import Hub

# The root Y.Text that Nova's own clients (viewer, extension, agents) edit.
DEFAULT_TEXT = "content"


async def list_documents(request: Request) -> Response:
    """Documents the caller may read, with live participant counts."""
    hub = hub_of(request)
    principal = caller(request)
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


async def document_state(request: Request) -> Response:
    name = document_of(request)
    state = await encoded_state(hub_of(request), name)
    if state is None:
        raise ApiError(404, "document_not_found", f"no document named {name!r}")
    return Response(state, media_type="application/octet-stream")


async def document_status(request: Request) -> Response:
    hub = hub_of(request)
    name = document_of(request)
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
