"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import hmac

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from collab_server.api.access import optional_caller, token_of
from collab_server.api.context import state_of
from collab_server.auth import Role
from collab_server.document_access import ALL_DOCUMENTS
from collab_server.ports import Authorizer, Health


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok", "node": state_of(request).health.node_id})


async def readyz(request: Request) -> Response:
    body = state_of(request).health.readiness()
    return JSONResponse(body, status_code=200 if body["ready"] else 503)


def scraper_is_authorised(
    health: Health, access: Authorizer, token: str | None, admin_everywhere: bool
) -> bool:
    """Per-document series are for the operator's scraper: the metrics token, or an admin token
    on every document (with auth on). Anyone else sees aggregates only."""
    metrics_token = health.metrics_token
    if metrics_token and token is not None and hmac.compare_digest(token.encode(), metrics_token.encode()):
        return True
    return access.enabled and admin_everywhere


async def metrics(request: Request) -> Response:
    """Aggregates for everyone; per-document series only for an authorised scraper."""
    health = state_of(request).health
    principal = optional_caller(request)
    admin_everywhere = principal is not None and principal.role_for(ALL_DOCUMENTS) == Role.ADMIN
    authorised = scraper_is_authorised(health, state_of(request).access, token_of(request), admin_everywhere)
    return Response(health.metrics_text(per_document=authorised), media_type=CONTENT_TYPE_LATEST)
