"""Admin endpoints for deleting documents: soft delete, undelete, erase, list deleted.

Errors come from the domain table (api/failures.py): an unknown or not-deleted document is
404, a store outage 503."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from collab_server.api.access import actor_of, document_of
from collab_server.api.context import state_of
from persistence.base import DeletedDocument


def _deleted_json(mark: DeletedDocument) -> dict[str, object]:
    return {
        "document": mark.name,
        "deleted_at": mark.deleted_at,
        "deleted_by": mark.deleted_by,
        "purge_after": mark.purge_after,
    }


async def delete_document(request: Request) -> Response:
    mark = await state_of(request).lifecycle.delete(document_of(request), actor_of(request, None, "admin"))
    return JSONResponse(_deleted_json(mark))


async def undelete_document(request: Request) -> Response:
    name = document_of(request)
    await state_of(request).lifecycle.undelete(name, actor_of(request, None, "admin"))
    return JSONResponse({"document": name, "restored": True})


async def erase_document(request: Request) -> Response:
    name = document_of(request)
    erasure = await state_of(request).lifecycle.erase(name, actor_of(request, None, "admin"))
    return JSONResponse(
        {
            "document": name,
            "erased": True,
            "rows": erasure.rows,
            "search_chunks": erasure.search_chunks,
            "archive_objects": erasure.archive_objects,
        }
    )


async def list_deleted(request: Request) -> Response:
    return JSONResponse({"deleted": [_deleted_json(mark) for mark in state_of(request).lifecycle.deleted()]})
