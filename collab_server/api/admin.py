"""Admin endpoints: revoke tokens (on every node) and read the audit log.

Both are guarded in app.py: revoke needs admin on every document, the audit log admin on
``?document=`` (or on every document without it).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from collab_server.api.access import caller, document_of
from collab_server.api.bodies import optional_string, query_int, query_text, read_json_object
from collab_server.api.context import state_of
from collab_server.api.errors import ApiError
from collab_server.document_access import ALL_DOCUMENTS

MAX_TOKEN_ID_CHARS = 256  # a jti is an id (ours are 32 characters), not a document
MAX_AUDIT_LIMIT = 1000  # audit rows one call returns at most, a response-size bound


async def revoke(request: Request) -> Response:
    data = await read_json_object(request)
    token_id = optional_string(data, "jti", MAX_TOKEN_ID_CHARS)
    if token_id is None:
        raise ApiError(400, "invalid_request", "'jti' (the token id to revoke) is required")
    expires_at = data.get("exp")  # the token's expiry: the revocation is kept until then
    if expires_at is not None and (
        not isinstance(expires_at, (int, float)) or isinstance(expires_at, bool) or not 0 < expires_at < 2**53
    ):
        raise ApiError(400, "invalid_request", "'exp' (the token's expiry, unix seconds) must be a number")
    closed = await state_of(request).revocations.revoke(
        token_id, by=caller(request).subject, expires_at=None if expires_at is None else float(expires_at)
    )
    return JSONResponse({"revoked": token_id, "closed_here": closed})


async def audit(request: Request) -> Response:
    """The audit trail of one document (``?document=``) or of all; ``?subject=``, ``?limit=``."""
    document = document_of(request)
    subject = query_text(request, "subject", "*", 256)
    # Events are written in batches; an admin who just acted reads the trail with that act in it.
    await state_of(request).access.settle_audit()
    events = await state_of(request).store.audit(
        document=None if document == ALL_DOCUMENTS else document,
        subject=None if subject == "*" else subject,
        limit=query_int(request, "limit", 100, 1, MAX_AUDIT_LIMIT),
    )
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
