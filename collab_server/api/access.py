"""Who may call an HTTP endpoint: checked in one place, declared per route in app.py.

Every API route is wrapped by ``guard(Access(...), endpoint)``; endpoints never read
tokens themselves. The guard, in this order: verifies the token (401), checks the
document name against the one rule set (400 ``invalid_document_name``), checks the role
on that document (403), refuses a soft-deleted document (404 ``document_deleted``) unless
the route serves those, then stores the principal and the document on ``request.state``.
The same tokens and roles as the WebSocket (collab_server/auth.py).
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from collab_server.api.context import state_of
from collab_server.api.errors import ApiError
from collab_server.auth import InvalidToken, Principal, Role
from collab_server.document_access import ALL_DOCUMENTS, RoleMissing, require_role
from collab_server.document_names import InvalidDocumentName, check_document_name

Endpoint = Callable[[Request], Awaitable[Response]]


class DocumentFrom(enum.Enum):
    PATH = "path"  # /api/documents/<name>/...
    QUERY = "query"  # ?document=<name>, every document when absent
    NONE = "none"  # the whole hub


@dataclass(frozen=True, slots=True)
class Access:
    """What a route needs: ``role`` on its document, or only a valid token when None (the
    endpoint then shows only what the caller may read)."""

    role: Role | None
    document: DocumentFrom = DocumentFrom.PATH
    # The route also answers callers without a (valid) token, with less (/metrics aggregates).
    token_optional: bool = False
    # The route also serves soft-deleted documents (undelete, erase); others answer 404
    # ``document_deleted`` for them.
    deleted_ok: bool = False


def token_of(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return request.query_params.get("token")


def principal_of(request: Request) -> Principal:
    """The verified caller; raises InvalidToken."""
    return state_of(request).access.verify(token_of(request))


def caller(request: Request) -> Principal:
    """The principal the guard verified for this request."""
    principal: Principal | None = request.state.principal
    if principal is None:
        raise ApiError(401, "unauthorized", "a token is required")
    return principal


def optional_caller(request: Request) -> Principal | None:
    """The verified principal of a ``token_optional`` route, None for a caller without one."""
    principal: Principal | None = request.state.principal
    return principal


def document_of(request: Request) -> str:
    """The document name the guard checked for this request."""
    document: str = request.state.document
    return document


def actor_of(request: Request, claimed: str | None, default: str) -> str:
    """Who a change is attributed to: the token's subject when auth is on, else what the caller says."""
    if state_of(request).access.enabled:
        return caller(request).subject
    return claimed or default


def _document(request: Request, source: DocumentFrom) -> str:
    if source is DocumentFrom.PATH:
        raw = request.path_params["name"]
    elif source is DocumentFrom.QUERY:
        raw = request.query_params.get("document", ALL_DOCUMENTS)
        if raw == ALL_DOCUMENTS:
            return raw
    else:
        return ALL_DOCUMENTS
    try:
        return check_document_name(raw)
    except InvalidDocumentName as exc:
        raise ApiError(400, "invalid_document_name", str(exc)) from exc


def guard(access: Access, endpoint: Endpoint) -> Endpoint:
    @functools.wraps(endpoint)
    async def guarded(request: Request) -> Response:
        audit = state_of(request).access
        path = request.url.path[:200]
        principal: Principal | None
        try:
            principal = principal_of(request)
        except InvalidToken as exc:
            if not access.token_optional:
                audit.record("denied", None, None, f"http {path}: {exc}")
                raise ApiError(401, "unauthorized", str(exc)) from exc
            principal = None
        document = _document(request, access.document)
        if access.role is not None:
            try:
                require_role(audit, principal, document, access.role, f"http {path}")
            except RoleMissing as exc:
                raise ApiError(403, "forbidden", str(exc)) from exc
        in_path = access.document is DocumentFrom.PATH  # a query (the audit log) may name deleted ones
        if in_path and not access.deleted_ok and state_of(request).lifecycle.is_deleted(document):
            raise ApiError(404, "document_deleted", f"{document!r} is deleted")
        request.state.principal = principal
        request.state.document = document
        return await endpoint(request)

    return guarded
