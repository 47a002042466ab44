"""The ASGI application: the one place where adapters are chosen and wired together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Coroutine
from typing import Any, TypedDict

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from collab_server.access_control import AccessControl
from collab_server.agent_presence import AgentPresence
from collab_server.api import admin as admin_api
from collab_server.api import archive as archive_api
from collab_server.api import documents, edits, health, history, presence, suggestions
from collab_server.api import events as events_api
from collab_server.api import lifecycle as lifecycle_api
from collab_server.api import search as search_api
from collab_server.api.access import Access, DocumentFrom, guard
from collab_server.api.errors import (
    ApiError,
    api_error_handler,
    http_exception_handler,
    internal_error_handler,
)
from collab_server.api.failures import domain_error_handlers
from collab_server.api.origin_guard import OriginGuard
from collab_server.archiving import ArchiveService
from collab_server.auth import Role
from collab_server.broker import Broker, LocalBroker
from collab_server.connection import Connection
from collab_server.events.publisher import EventPublisher
from collab_server.events.wiring import running_events
from collab_server.health import HubDurability, HubHealth
from collab_server.hocuspocus_socket import HocuspocusSocket, is_hocuspocus
from collab_server.hub import Hub
from collab_server.lifecycle import DocumentLifecycle
from collab_server.metrics import HubMetrics
from collab_server.origins import OriginPolicy
from collab_server.ports import Authorizer, Documents, Durability, Health, Revocations, Search
from collab_server.redis_broker import RedisBroker
from collab_server.search_service import search_service
from collab_server.settings import Settings
from collab_server.tls import CertificateReloader, redis_tls_options
from collab_server.viewer import viewer_routes
from persistence.archive.archiver import Archiver
from persistence.archive.factory import object_store_from_url
from persistence.archive.tiering import TieringStore
from persistence.base import Store
from persistence.encryption.keys import key_provider
from persistence.encryption.store import EncryptedStore
from persistence.factory import store_from_url

logger = logging.getLogger(__name__)


class AppState(TypedDict):
    """What the lifespan hands to every request: the hub for sockets, narrow ports for HTTP."""

    hub: Hub
    documents: Documents
    access: Authorizer
    durability: Durability
    revocations: Revocations
    health: Health
    store: Store
    search: Search
    agents: AgentPresence
    lifecycle: DocumentLifecycle
    archive: ArchiveService | None
    events: EventPublisher | None


class DocumentSocket:
    """ASGI endpoint for ``ws://HOST:PORT/<document>`` (y-websocket: one Connection per socket)
    and ``ws://HOST:PORT/`` (Hocuspocus: many documents per socket, named in each message)."""

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # A plain function handing back the socket's coroutine: no frame of its own stays
        # suspended for the socket's life (an idle hub holds thousands of them).
        hub: Hub = scope["state"]["hub"]
        if is_hocuspocus(scope):
            return HocuspocusSocket(hub, scope, receive, send).serve()
        return Connection(hub, scope, receive, send).serve()


# Who may call what: every API route is declared with one of these (collab_server/api/access.py).
READ = Access(Role.READ)
WRITE = Access(Role.WRITE)
ADMIN = Access(Role.ADMIN)
ADMIN_EVERYWHERE = Access(Role.ADMIN, DocumentFrom.NONE)
ADMIN_OF_QUERY = Access(Role.ADMIN, DocumentFrom.QUERY)
SIGNED_IN = Access(None, DocumentFrom.NONE)  # the endpoint shows only what the caller may read
SCRAPER = Access(None, DocumentFrom.NONE, token_optional=True)  # aggregates without a token
ADMIN_EVEN_DELETED = Access(Role.ADMIN, deleted_ok=True)  # undelete and erase


class HubApp:
    """The ASGI entry point: document sockets go straight to their endpoint (no per-message
    middleware on the hot path); HTTP and lifespan go through Starlette."""

    def __init__(self, http: Starlette, sockets: DocumentSocket) -> None:
        self.http = http
        self._sockets = sockets

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] == "websocket":
            return self._sockets(scope, receive, send)
        return self.http(scope, receive, send)


@contextlib.asynccontextmanager
async def background(work: Coroutine[Any, Any, None], name: str) -> AsyncIterator[None]:
    """Run ``work`` for the duration of the block: cancelled and awaited when it ends."""
    task = asyncio.create_task(work, name=name)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def configured_store(settings: Settings) -> Store:
    """The store adapter the URL names, wrapped in the data-lifecycle layers the settings ask
    for: tiering (cold documents live in the archive) under encryption at rest."""
    store = store_from_url(settings.store_url)
    objects = object_store_from_url(
        settings.archive, settings.archive_access_key, settings.archive_secret_key
    )
    if objects is not None and settings.tier_after_seconds > 0:
        store = TieringStore(store, Archiver(store, objects))
    keys = key_provider(settings.master_key_file, settings.master_keys)
    return store if keys is None else EncryptedStore(store, keys)


def create_app(
    settings: Settings, store: Store | None = None, certificate: CertificateReloader | None = None
) -> HubApp:
    """Build the app; ``store`` overrides the one named by ``settings.store`` (tests);
    ``certificate`` (the TLS listener's) is watched for renewals while the app runs."""

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[AppState]:
        chosen = store if store is not None else configured_store(settings)
        broker: Broker = (
            RedisBroker(
                settings.redis_url,
                settings.node_id,
                window_seconds=settings.redis_window_ms / 1000.0,
                connect_options=redis_tls_options(settings.redis_url, settings.redis_tls_ca_file),
            )
            if settings.redis_url
            else LocalBroker()
        )
        async with contextlib.AsyncExitStack() as stack:
            hub = await stack.enter_async_context(Hub(settings, chosen, HubMetrics(), broker))
            search = await stack.enter_async_context(
                search_service(
                    settings,
                    hub.store,
                    in_process=store is not None,
                    recent_commits=lambda: ((d, p.at) for d, p in list(hub.writer.last_persisted.items())),
                )
            )
            hub.lifecycle.search = search  # an erased document's chunks leave the index too
            if certificate is not None:
                await stack.enter_async_context(background(certificate.watch(), "tls-certificate-watch"))
            if settings.grpc_port:
                from collab_server.rpc.server import GrpcListener  # grpcio loads only when enabled

                await stack.enter_async_context(GrpcListener(hub, search, certificate))
            events = await stack.enter_async_context(running_events(settings, hub))
            yield {
                "hub": hub,
                "documents": hub.documents,
                "access": AccessControl(hub.auth, hub.audit),
                "revocations": hub.sessions,
                "health": HubHealth(hub, events),
                "durability": HubDurability(hub),
                "store": hub.store,
                "search": search,
                "agents": hub.agent_presence,
                "events": events,
                "lifecycle": hub.lifecycle,
                "archive": hub.archive,
            }

    routes = [
        Route("/healthz", health.healthz),
        Route("/readyz", health.readyz),
        Route("/metrics", guard(SCRAPER, health.metrics)),
        Route("/api/documents", guard(SIGNED_IN, documents.list_documents)),
        Route("/api/documents/{name:path}/text", guard(READ, edits.read_text)),
        Route("/api/documents/{name:path}/edits", guard(WRITE, edits.apply_edits), methods=["POST"]),
        Route("/api/documents/{name:path}/suggestions", guard(WRITE, suggestions.suggest), methods=["POST"]),
        Route(
            "/api/documents/{name:path}/suggestions",
            guard(READ, suggestions.list_suggestions),
            methods=["GET"],
        ),
        Route(
            "/api/documents/{name:path}/suggestions/{suggestion}/accept",
            guard(WRITE, suggestions.accept),
            methods=["POST"],
        ),
        Route(
            "/api/documents/{name:path}/suggestions/{suggestion}/reject",
            guard(WRITE, suggestions.reject),
            methods=["POST"],
        ),
        Route("/api/documents/{name:path}/presence", guard(WRITE, presence.put_presence), methods=["PUT"]),
        Route(
            "/api/documents/{name:path}/presence/{agent}",
            guard(WRITE, presence.delete_presence),
            methods=["DELETE"],
        ),
        Route("/api/documents/{name:path}/state", guard(READ, documents.document_state)),
        Route("/api/documents/{name:path}/status", guard(READ, documents.document_status)),
        Route("/api/documents/{name:path}/history", guard(READ, history.history)),
        Route("/api/documents/{name:path}/versions/{seq}", guard(READ, history.version_text)),
        Route("/api/documents/{name:path}/activity", guard(READ, history.activity)),
        # Before .../restore, which would match with the name "<name>/archive".
        Route(
            "/api/documents/{name:path}/archive/restore",
            guard(ADMIN, archive_api.restore_from_archive),
            methods=["POST"],
        ),
        Route("/api/documents/{name:path}/restore", guard(ADMIN, history.restore), methods=["POST"]),
        Route(
            "/api/documents/{name:path}/undelete",
            guard(ADMIN_EVEN_DELETED, lifecycle_api.undelete_document),
            methods=["POST"],
        ),
        Route(
            "/api/documents/{name:path}/erase",
            guard(ADMIN_EVEN_DELETED, lifecycle_api.erase_document),
            methods=["POST"],
        ),
        Route("/api/search", guard(SIGNED_IN, search_api.search_readable)),
        Route("/api/admin/revoke", guard(ADMIN_EVERYWHERE, admin_api.revoke), methods=["POST"]),
        Route("/api/admin/deleted", guard(ADMIN_EVERYWHERE, lifecycle_api.list_deleted)),
        Route("/api/admin/archive", guard(ADMIN_EVERYWHERE, archive_api.status)),
        Route("/api/admin/archive", guard(ADMIN_EVERYWHERE, archive_api.archive_now), methods=["POST"]),
        Route("/api/audit", guard(ADMIN_OF_QUERY, admin_api.audit)),
        Route("/api/admin/events", guard(ADMIN_EVERYWHERE, events_api.status)),
        Route("/api/admin/webhooks/{endpoint}/deliveries", guard(ADMIN_EVERYWHERE, events_api.deliveries)),
        Route("/api/admin/dead-letters", guard(ADMIN_EVERYWHERE, events_api.dead_letters)),
        Route(
            "/api/admin/dead-letters/{letter}/retry",
            guard(ADMIN_EVERYWHERE, events_api.retry_dead_letter),
            methods=["POST"],
        ),
        Route(
            "/api/admin/dead-letters/{letter}",
            guard(ADMIN_EVERYWHERE, events_api.delete_dead_letter),
            methods=["DELETE"],
        ),
        # After every /api/documents/<name>/... route: `{name:path}` alone would match those too.
        Route("/api/documents/{name:path}", guard(ADMIN, lifecycle_api.delete_document), methods=["DELETE"]),
        *viewer_routes(),
    ]
    middleware = [Middleware(OriginGuard, policy=OriginPolicy.from_setting(settings.allowed_origins))]
    if settings.allowed_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=sorted(OriginPolicy.from_setting(settings.allowed_origins).allowed),
                allow_headers=["authorization", "content-type"],
                allow_methods=["GET", "POST", "PUT", "DELETE"],
            )
        )
    handlers: dict[Any, Any] = {
        HTTPException: http_exception_handler,
        ApiError: api_error_handler,
        **domain_error_handlers(),
        Exception: internal_error_handler,
    }
    http = Starlette(routes=routes, lifespan=lifespan, middleware=middleware, exception_handlers=handlers)
    return HubApp(http, DocumentSocket())
