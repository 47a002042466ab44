"""The ASGI application: the one place where adapters are chosen and wired together."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any, TypedDict

from starlette.applications import Starlette
from starlette.routing import Route, WebSocketRoute

from collab_server.api import documents, edits, health, history, presence
from collab_server.broker import Broker, LocalBroker
from collab_server.connection import Connection
from collab_server.hub import Hub
from collab_server.metrics import HubMetrics
from collab_server.redis_broker import RedisBroker
from collab_server.settings import Settings
from persistence.base import Store
from persistence.factory import store_from_url

logger = logging.getLogger(__name__)


class AppState(TypedDict):
    hub: Hub


class DocumentSocket:
    """ASGI endpoint for ``ws://HOST:PORT/<document>``: one Connection per socket."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        hub: Hub = scope["state"]["hub"]
        await Connection(hub, scope, receive, send).serve()


def create_app(settings: Settings, store: Store | None = None) -> Starlette:
    """Build the app; ``store`` overrides the one named by ``settings.store`` (tests)."""

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[AppState]:
        chosen = store if store is not None else store_from_url(settings.store)
        broker: Broker = (
            RedisBroker(settings.redis_url, settings.node_id) if settings.redis_url else LocalBroker()
        )
        async with Hub(settings, chosen, HubMetrics(), broker) as hub:
            yield {"hub": hub}

    routes = [
        Route("/healthz", health.healthz),
        Route("/readyz", health.readyz),
        Route("/metrics", health.metrics),
        Route("/api/documents", documents.list_documents),
        Route("/api/documents/{name:path}/text", edits.read_text),
        Route("/api/documents/{name:path}/edits", edits.apply_edits, methods=["POST"]),
        Route("/api/documents/{name:path}/suggestions", edits.suggest, methods=["POST"]),
        Route("/api/documents/{name:path}/suggestions", edits.list_suggestions, methods=["GET"]),
        Route("/api/documents/{name:path}/suggestions/{suggestion}/accept", edits.accept, methods=["POST"]),
        Route("/api/documents/{name:path}/suggestions/{suggestion}/reject", edits.reject, methods=["POST"]),
        Route("/api/documents/{name:path}/presence", presence.put_presence, methods=["PUT"]),
        Route("/api/documents/{name:path}/presence/{agent}", presence.delete_presence, methods=["DELETE"]),
        Route("/api/documents/{name:path}/state", documents.document_state),
        Route("/api/documents/{name:path}/status", documents.document_status),
        Route("/api/documents/{name:path}/history", history.history),
        Route("/api/documents/{name:path}/versions/{seq:int}", history.version_text),
        Route("/api/documents/{name:path}/activity", history.activity),
        Route("/api/documents/{name:path}/restore", history.restore, methods=["POST"]),
        WebSocketRoute("/{document:path}", DocumentSocket()),
    ]
    return Starlette(routes=routes, lifespan=lifespan)
