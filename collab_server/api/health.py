"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import hmac

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from collab_server.api.access import ALL_DOCUMENTS, optional_caller, token_of
from collab_server.api.context import hub_of
from collab_server.auth import Role
from collab_server.hub import Hub


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


def scraper_is_authorised(hub: Hub, token: str | None, admin_everywhere: bool) -> bool:
    """Per-document series are for the operator's scraper: the metrics token, or an admin token
    on every document (with auth on). Anyone else sees aggregates only."""
    metrics_token = hub.settings.metrics_token
    if metrics_token and token is not None and hmac.compare_digest(token.encode(), metrics_token.encode()):
        return True
    return hub.auth.enabled and admin_everywhere


async def metrics(request: Request) -> Response:
    """Aggregates for everyone; per-document series only for an authorised scraper."""
    hub = hub_of(request)
    principal = optional_caller(request)
    admin_everywhere = principal is not None and principal.role_for(ALL_DOCUMENTS) == Role.ADMIN
    authorised = scraper_is_authorised(hub, token_of(request), admin_everywhere)
    hub.metrics.persist_backlog.set(hub.writer.backlog)
    return Response(hub.metrics.exposition(per_document=authorised), media_type=CONTENT_TYPE_LATEST)
