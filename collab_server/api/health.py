"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from collab_server.hub import Hub


def hub_of(request: Request) -> Hub:
    hub: Hub = request.state.hub
    return hub


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok", "node": hub_of(request).node_id})


async def readyz(request: Request) -> Response:
    hub = hub_of(request)
    body = {
        "ready": hub.ready,
        "accepting": hub.accepting,
        "store_reachable": hub.store_reachable,
        "store_writes_healthy": hub.writer.healthy,
        "unsaved_updates": hub.writer.backlog,
        "last_store_error": hub.writer.last_error,
    }
    # Change events never make the hub unready (it keeps serving; the backlog waits in the store).
    publisher = getattr(request.state, "events", None)
    if publisher is not None:
        body["events"] = publisher.status()
    return JSONResponse(body, status_code=200 if hub.ready else 503)


async def metrics(request: Request) -> Response:
    hub = hub_of(request)
    hub.metrics.persist_backlog.set(hub.writer.backlog)
    return Response(generate_latest(hub.metrics.registry), media_type=CONTENT_TYPE_LATEST)
