"""Who may call an HTTP endpoint: the same tokens and roles as the WebSocket."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from collab_server.api.context import access_of
from collab_server.api.errors import error_response
from collab_server.auth import InvalidToken, Principal, Role

Endpoint = Callable[[Request], Awaitable[Response]]
ALL_DOCUMENTS = "*"


def token_of(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return request.query_params.get("token")


def principal_of(request: Request) -> Principal:
    """Raises InvalidToken; the principal is also kept on ``request.state``."""
    principal = access_of(request).verify(token_of(request))
    request.state.principal = principal
    return principal


def actor_of(request: Request, claimed: object, default: str) -> str:
    """Who an edit is attributed to: the token's subject when auth is on, else what the caller says."""
    if access_of(request).enabled:
        principal: Principal = request.state.principal
        return principal.subject
    return claimed if isinstance(claimed, str) and claimed else default


def requires(role: Role, *, document_param: str | None = "name") -> Callable[[Endpoint], Endpoint]:
    """Guard an endpoint: 401 without a valid token, 403 without ``role`` on the document."""

    def decorate(endpoint: Endpoint) -> Endpoint:
        @functools.wraps(endpoint)
        async def guarded(request: Request) -> Response:
            access = access_of(request)
            document = request.path_params.get(document_param) if document_param else None
            try:
                principal = principal_of(request)
            except InvalidToken as exc:
                access.record("denied", None, document, f"http {request.url.path}: {exc}")
                return error_response(401, "unauthorized", str(exc))
            granted = principal.role_for(document if document is not None else ALL_DOCUMENTS)
            if granted is None or granted < role:
                access.record(
                    "denied", principal.subject, document, f"http {request.url.path} needs {role.name}"
                )
                return error_response(403, "forbidden", f"this token lacks the {role.name.lower()} role here")
            return await endpoint(request)

        return guarded

    return decorate
