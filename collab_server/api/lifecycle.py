"""Admin endpoints for deleting documents: soft delete, undelete, erase, list deleted."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from collab_server.api.access import actor_of, requires
from collab_server.api.errors import error_response
from collab_server.api.health import hub_of
from collab_server.auth import Role
from collab_server.lifecycle import NotDeleted, UnknownDocument
from persistence.base import DeletedDocument, StoreError


def _deleted_json(mark: DeletedDocument) -> dict[str, object]:
    return {
        "document": mark.name,
        "deleted_at": mark.deleted_at,
        "deleted_by": mark.deleted_by,
        "purge_after": mark.purge_after,
    }


@requires(Role.ADMIN)
async def delete_document(request: Request) -> Response:
    hub, name = hub_of(request), request.path_params["name"]
    try:
        mark = await hub.lifecycle.delete(name, actor_of(request, None, "admin"))
    except UnknownDocument as exc:
        return error_response(404, "unknown_document", str(exc))
    except StoreError as exc:
        return error_response(503, "store_unavailable", str(exc))
    return JSONResponse(_deleted_json(mark))


@requires(Role.ADMIN, deleted_ok=True)
async def undelete_document(request: Request) -> Response:
    hub, name = hub_of(request), request.path_params["name"]
    try:
        await hub.lifecycle.undelete(name, actor_of(request, None, "admin"))
    except NotDeleted as exc:
        return error_response(404, "not_deleted", str(exc))
    except StoreError as exc:
        return error_response(503, "store_unavailable", str(exc))
    return JSONResponse({"document": name, "restored": True})


@requires(Role.ADMIN, deleted_ok=True)
async def erase_document(request: Request) -> Response:
    hub, name = hub_of(request), request.path_params["name"]
    try:
        erasure = await hub.lifecycle.erase(name, actor_of(request, None, "admin"))
    except StoreError as exc:
        return error_response(503, "store_unavailable", str(exc))
    return JSONResponse(
        {
            "document": name,
            "erased": True,
            "rows": erasure.rows,
            "search_chunks": erasure.search_chunks,
            "archive_objects": erasure.archive_objects,
        }
    )


@requires(Role.ADMIN, document_param=None)
async def list_deleted(request: Request) -> Response:
    return JSONResponse({"deleted": [_deleted_json(mark) for mark in hub_of(request).lifecycle.deleted()]})
