"""One JSON error shape for every HTTP answer that is not a success.

``{"error": {"code": "...", "message": "..."}}`` with a 4xx/5xx status: endpoints raise
ApiError (or return ``error_response``); the handlers below turn Starlette's own 404/405
and any unexpected exception into the same shape, so no route ever answers plain text.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

logger = logging.getLogger(__name__)

_CODES_BY_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
}


class ApiError(Exception):
    """Raised by endpoints and their helpers; answered as the JSON error shape."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message, **extra}}, status_code=status, headers=headers
    )


async def api_error_handler(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, **exc.extra)


async def http_exception_handler(request: Request, exc: Exception) -> Response:
    """Starlette's own errors (no route matched, method not allowed) in the JSON shape."""
    assert isinstance(exc, HTTPException)
    code = _CODES_BY_STATUS.get(exc.status_code, "http_error")
    if exc.status_code == 404:
        message = f"no endpoint at {request.url.path[:200]!r}"
    elif exc.status_code == 405:
        message = f"{request.method} is not allowed here"
    else:
        message = str(exc.detail)
    return error_response(exc.status_code, code, message, headers=dict(exc.headers or {}))


async def internal_error_handler(request: Request, exc: Exception) -> Response:
    """A bug, not bad input: logged with the route, answered without internals."""
    logger.error("internal error on %s %s", request.method, request.url.path[:200], exc_info=exc)
    return error_response(500, "internal_error", "the hub failed to answer this request; it is logged")
