"""Read-only document endpoints: list, text, encoded state, persistence status."""

from __future__ import annotations

import dataclasses

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from collab_server.api.access import caller, document_of
from collab_server.api.context import state_of
from collab_server.api.errors import ApiError
from collab_server.document_access import may_read

# The root Y.Text that Nova's own clients (viewer, extension, agents) edit.
DEFAULT_TEXT = "content"


async def list_documents(request: Request) -> Response:
    """Documents the caller may read, with live participant counts."""
    principal = caller(request)
    items = [
        {
            "name": s.name,
            "connections": s.connections,
            "presence": s.presence,
            "updated_at": s.updated_at,
            "loaded": s.loaded,
        }
        for s in await state_of(request).documents.summaries()
        if may_read(principal, s.name)
    ]
    return JSONResponse({"documents": items})


async def document_state(request: Request) -> Response:
    name = document_of(request)
    state = await state_of(request).documents.encoded_state(name)
    if state is None:
        raise ApiError(404, "document_not_found", f"no document named {name!r}")
    return Response(state, media_type="application/octet-stream")


async def document_status(request: Request) -> Response:
    status = state_of(request).documents.status(document_of(request))
    return JSONResponse(dataclasses.asdict(status))
