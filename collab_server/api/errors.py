"""One JSON error shape for every HTTP endpoint: a machine-readable code and a message."""

from __future__ import annotations

from starlette.responses import JSONResponse


def error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)
