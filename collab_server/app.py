"""The ASGI application: the one place where adapters are chosen and wired together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Coroutine
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.types import Receive, Scope, Send

from collab_server.access_control import AccessControl
from collab_server.api.context import STATE_KEY, AppState
from collab_server.api.errors import (
    ApiError,
    api_error_handler,
    http_exception_handler,
    internal_error_handler,
)
from collab_server.api.failures import domain_error_handlers
from collab_server.api.origin_guard import OriginGuard
from collab_server.api.routes import api_routes
from collab_server.api.session_controls import session_routes
from collab_server.broker import Broker, LocalBroker
from collab_server.connection import Connection
from collab_server.events.publisher import EventPublisher
from collab_server.events.wiring import running_events
from collab_server.health import HubDurability, HubHealth
from collab_server.hocuspocus_socket import HocuspocusSocket, is_hocuspocus
from collab_server.hub import Hub
from collab_server.metrics import HubMetrics
from collab_server.origins import OriginPolicy
from collab_server.ports import Search, SocketPorts
from collab_server.redis_broker import RedisBroker
from collab_server.search_service import search_service
from collab_server.session_lobby import LobbyLimits, SessionLobby
from collab_server.settings import Settings
from collab_server.tls import CertificateReloader, redis_tls_options
from collab_server.viewer import viewer_routes
from persistence.archive.archiver import Archiver
from persistence.archive.factory import object_store_from_url
from persistence.archive.tiering import TieringStore
from persistence.base import Store
from persistence.encryption.keys import key_provider
from persistence.encryption.store import EncryptedStore
from persistence.factory import StoreOptions, store_from_url

logger = logging.getLogger(__name__)


class DocumentSocket:
    """ASGI endpoint for ``ws://HOST:PORT/<document>`` (y-websocket: one Connection per socket)
    and ``ws://HOST:PORT/`` (Hocuspocus: many documents per socket, named in each message)."""

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # A plain function handing back the socket's coroutine: no frame of its own stays
        # suspended for the socket's life (an idle hub holds thousands of them).
        ports = app_state(scope).sockets
        if is_hocuspocus(scope):
            return HocuspocusSocket(ports, scope, receive, send).serve()
        return Connection(ports, scope, receive, send).serve()


def app_state(scope: Scope) -> AppState:
    state: AppState = scope["state"][STATE_KEY]
    return state


def socket_ports(hub: Hub) -> SocketPorts:
    """What sockets may use of the hub (and nothing else of it)."""
    return SocketPorts(
        settings=hub.settings,
        metrics=hub.metrics,
        node_id=hub.node_id,
        access=AccessControl(hub.auth, hub.audit),
        sessions=hub.sessions,
        rooms=hub.documents,
        trusted_proxies=hub.trusted_proxies,
        large_frames=hub.large_frames,
        wire_frames=hub.wire_frames,
    )


def hub_ports(hub: Hub, search: Search, events: EventPublisher | None) -> AppState:
    """The narrow ports HTTP handlers and gRPC calls use, built once from the hub."""
    sockets = socket_ports(hub)
    return AppState(
        settings=hub.settings,
        metrics=hub.metrics,
        documents=hub.documents,
        access=sockets.access,
        durability=HubDurability(hub),
        revocations=hub.sessions,
        health=HubHealth(hub, events),
        store=hub.store,
        search=search,
        agents=hub.agent_presence,
        lifecycle=hub.lifecycle,
        archive=hub.archive,
        events=events,
        sockets=sockets,
        lobby=SessionLobby(
            hub.settings.auth_secret, hub.auth.enabled, hub.sessions, lobby_limits(hub.settings)
        ),
    )


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


def lobby_limits(settings: Settings) -> LobbyLimits:
    return LobbyLimits(
        max_sessions=settings.max_sessions,
        max_pending=settings.max_session_join_requests,
        max_participants=settings.max_session_guests,
        request_seconds=settings.session_request_seconds,
        guest_token_seconds=settings.session_guest_token_seconds,
    )


def store_options(settings: Settings) -> StoreOptions:
    """The ``store_*`` connection settings, for whichever adapter the URL names."""
    return StoreOptions(
        max_connections=settings.store_max_connections,
        connect_timeout_seconds=settings.store_connect_timeout_seconds,
        command_timeout_seconds=settings.store_command_timeout_seconds,
        acquire_timeout_seconds=settings.store_acquire_timeout_seconds,
        busy_timeout_seconds=settings.store_busy_timeout_seconds,
    )


def configured_store(settings: Settings) -> Store:
    """The store adapter the URL names, wrapped in the data-lifecycle layers the settings ask
    for: tiering (cold documents live in the archive) under encryption at rest."""
    store = store_from_url(settings.store_url, options=store_options(settings))
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
    async def lifespan(_app: Starlette) -> AsyncIterator[dict[str, AppState]]:
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
            events = await stack.enter_async_context(running_events(settings, hub))
            state = hub_ports(hub, search, events)
            if settings.grpc_port:
                from collab_server.rpc.server import GrpcListener  # grpcio loads only when enabled

                await stack.enter_async_context(GrpcListener(state, certificate))
            yield {STATE_KEY: state}

    routes = [*api_routes(), *session_routes(), *viewer_routes()]
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
