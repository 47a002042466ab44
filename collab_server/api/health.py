"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from collab_server.api.context import health_of


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok", "node": health_of(request).node_id})


async def readyz(request: Request) -> Response:
    body = health_of(request).readiness()
    return JSONResponse(body, status_code=200 if body["ready"] else 503)


async def metrics(request: Request) -> Response:
    return Response(health_of(request).metrics_text(), media_type=CONTENT_TYPE_LATEST)
