"""Read-only document endpoints: list, text, encoded state, persistence status."""

from __future__ import annotations

import dataclasses

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from collab_server.api.access import principal_of
from collab_server.api.context import documents_of
from collab_server.api.errors import error_response
from collab_server.auth import InvalidToken
from persistence.base import CorruptDocument, StoreError

# The root Y.Text that Nova's own clients (viewer, extension, agents) edit.
DEFAULT_TEXT = "content"


async def list_documents(request: Request) -> Response:
    """Documents the caller may read, with live participant counts."""
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
        for s in await documents_of(request).summaries()
        if principal.role_for(s.name) is not None
    ]
    return JSONResponse({"documents": items})


async def _state_or_error(request: Request) -> bytes | Response:
    name = request.path_params["name"]
    try:
        state = await documents_of(request).encoded_state(name)
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
    status = documents_of(request).status(request.path_params["name"])
    return JSONResponse(dataclasses.asdict(status))
