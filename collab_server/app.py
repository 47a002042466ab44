"""The ASGI application: the one place where adapters are chosen and wired together."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TypedDict

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from collab_server.access_control import AccessControl
from collab_server.agent_presence import AgentPresence
from collab_server.api import admin as admin_api
from collab_server.api import documents, edits, health, history, presence
from collab_server.api import search as search_api
from collab_server.api.access import requires
from collab_server.auth import Role
from collab_server.broker import Broker, LocalBroker
from collab_server.connection import Connection
from collab_server.health import HubHealth
from collab_server.hub import Hub
from collab_server.metrics import HubMetrics
from collab_server.ports import Access, Documents, Health, Revocations, Search
from collab_server.redis_broker import RedisBroker
from collab_server.search_service import search_service
from collab_server.settings import Settings
from collab_server.viewer import viewer_routes
from persistence.base import Store
from persistence.factory import store_from_url

logger = logging.getLogger(__name__)


class AppState(TypedDict):
    """What the lifespan hands to every request: the hub for sockets, narrow ports for HTTP."""

    hub: Hub
    documents: Documents
    access: Access
    revocations: Revocations
    health: Health
    store: Store
    search: Search
    agents: AgentPresence


class DocumentSocket:
    """ASGI endpoint for ``ws://HOST:PORT/<document>``: one Connection per socket."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hub: Hub = scope["state"]["hub"]
        await Connection(hub, scope, receive, send).serve()


read = requires(Role.READ)
write = requires(Role.WRITE)
admin = requires(Role.ADMIN)


class HubApp:
    """The ASGI entry point: document sockets go straight to their endpoint (no per-message
    middleware on the hot path); HTTP and lifespan go through Starlette."""

    def __init__(self, http: Starlette, sockets: DocumentSocket) -> None:
        self.http = http
        self._sockets = sockets

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._sockets(scope, receive, send)
        else:
            await self.http(scope, receive, send)


def create_app(settings: Settings, store: Store | None = None) -> HubApp:
    """Build the app; ``store`` overrides the one named by ``settings.store`` (tests)."""

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[AppState]:
        chosen = store if store is not None else store_from_url(settings.store)
        broker: Broker = (
            RedisBroker(settings.redis_url, settings.node_id) if settings.redis_url else LocalBroker()
        )
        async with contextlib.AsyncExitStack() as stack:
            hub = await stack.enter_async_context(Hub(settings, chosen, HubMetrics(), broker))
            search = await stack.enter_async_context(search_service(settings, hub.store))
            yield {
                "hub": hub,
                "documents": hub.documents,
                "access": AccessControl(hub.auth, hub.audit),
                "revocations": hub.sessions,
                "health": HubHealth(hub),
                "store": hub.store,
                "search": search,
                "agents": hub.agent_presence,
            }

    routes = [
        Route("/healthz", health.healthz),
        Route("/readyz", health.readyz),
        Route("/metrics", health.metrics),
        Route("/api/documents", documents.list_documents),
        Route("/api/documents/{name:path}/text", read(edits.read_text)),
        Route("/api/documents/{name:path}/edits", write(edits.apply_edits), methods=["POST"]),
        Route("/api/documents/{name:path}/suggestions", write(edits.suggest), methods=["POST"]),
        Route("/api/documents/{name:path}/suggestions", read(edits.list_suggestions), methods=["GET"]),
        Route(
            "/api/documents/{name:path}/suggestions/{suggestion}/accept",
            write(edits.accept),
            methods=["POST"],
        ),
        Route(
            "/api/documents/{name:path}/suggestions/{suggestion}/reject",
            write(edits.reject),
            methods=["POST"],
        ),
        Route("/api/documents/{name:path}/presence", write(presence.put_presence), methods=["PUT"]),
        Route(
            "/api/documents/{name:path}/presence/{agent}", write(presence.delete_presence), methods=["DELETE"]
        ),
        Route("/api/documents/{name:path}/state", read(documents.document_state)),
        Route("/api/documents/{name:path}/status", read(documents.document_status)),
        Route("/api/documents/{name:path}/history", read(history.history)),
        Route("/api/documents/{name:path}/versions/{seq:int}", read(history.version_text)),
        Route("/api/documents/{name:path}/activity", read(history.activity)),
        Route("/api/documents/{name:path}/restore", admin(history.restore), methods=["POST"]),
        Route("/api/search", search_api.search_readable),
        Route("/api/admin/revoke", admin_api.revoke, methods=["POST"]),
        Route("/api/audit", admin_api.audit),
        *viewer_routes(),
    ]
    middleware = []
    if settings.allowed_origins:
        origins = [origin.strip() for origin in settings.allowed_origins.split(",") if origin.strip()]
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=origins,
                allow_headers=["authorization", "content-type"],
                allow_methods=["GET", "POST", "PUT", "DELETE"],
            )
        )
    http = Starlette(routes=routes, lifespan=lifespan, middleware=middleware)
    return HubApp(http, DocumentSocket())
