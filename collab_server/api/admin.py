"""Admin endpoints: revoke tokens (on every node) and read the audit log."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from collab_server.api.access import ALL_DOCUMENTS, principal_of, requires
from collab_server.api.context import access_of, revocations_of, store_of
from collab_server.api.errors import error_response
from collab_server.api.history import read_json
from collab_server.auth import InvalidToken, Principal, Role
from persistence.base import StoreError


@requires(Role.ADMIN, document_param=None)
async def revoke(request: Request) -> Response:
    data = await read_json(request)
    if isinstance(data, Response):
        return data
    token_id = data.get("jti")
    if not isinstance(token_id, str) or not token_id:
        return error_response(400, "invalid_request", "'jti' (the token id to revoke) is required")
    expires_at = data.get("exp")
    if expires_at is not None and (
        not isinstance(expires_at, (int, float)) or isinstance(expires_at, bool) or not 0 < expires_at < 2**53
    ):
        return error_response(
            400, "invalid_request", "'exp' (the token's expiry, unix seconds) must be a number"
        )
    principal: Principal = request.state.principal
    try:
        closed = await revocations_of(request).revoke(
            token_id, by=principal.subject, expires_at=float(expires_at) if expires_at is not None else None
        )
    except StoreError as exc:
        return error_response(503, "store_unavailable", f"revocation not stored, try again: {exc}")
    return JSONResponse({"revoked": token_id, "closed_here": closed})


async def audit(request: Request) -> Response:
    """The audit trail; needs admin on ``?document=`` or, without it, on every document."""
    access = access_of(request)
    try:
        principal = principal_of(request)
    except InvalidToken as exc:
        return error_response(401, "unauthorized", str(exc))
    document = request.query_params.get("document")
    granted = principal.role_for(document if document is not None else ALL_DOCUMENTS)
    if granted is None or granted < Role.ADMIN:
        access.record("denied", principal.subject, document, "audit read needs ADMIN")
        return error_response(403, "forbidden", "admin role required")
    try:
        limit = min(1000, int(request.query_params.get("limit", "100")))
    except ValueError:
        return error_response(400, "invalid_request", "'limit' must be an integer")
    try:
        events = await store_of(request).audit(
            document=document, subject=request.query_params.get("subject"), limit=limit
        )
    except StoreError as exc:
        return error_response(503, "store_unavailable", str(exc))
    return JSONResponse(
        {
            "events": [
                {
                    "at": e.at,
                    "action": e.action,
                    "subject": e.subject,
                    "document": e.document,
                    "node": e.node,
                    "detail": e.detail,
                }
                for e in events
            ]
        }
    )
