"""The gRPC listener inside the hub process: the Collab service, health checking and
reflection on their own port, sharing the hub's rooms, store and auth.

Started and stopped by the app's lifespan (after the hub is up, before it closes). With the
hub's TLS certificate configured it serves TLS too, and picks up a renewed certificate for
new connections like the HTTP listener.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from types import TracebackType
from typing import Self

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from collab_server.api.context import AppState
from collab_server.rpc import collab_pb2, collab_pb2_grpc
from collab_server.rpc.metrics import GrpcMetrics
from collab_server.rpc.service import CollabService
from collab_server.tls import CertificateReloader

logger = logging.getLogger(__name__)

SERVICE_NAME = collab_pb2.DESCRIPTOR.services_by_name["Collab"].full_name
HEALTH_CHECK_SECONDS = 1.0  # how often the gRPC health service copies /readyz's answer (cheap)


def _credentials(certificate: CertificateReloader) -> grpc.ServerCredentials:
    """TLS credentials that ask the reloader for the current pair at each new connection."""
    served = {"reloads": certificate.reloads}

    def current() -> grpc.ServerCertificateConfiguration:
        return grpc.ssl_server_certificate_configuration([certificate.pem_pair()])

    def fetch() -> grpc.ServerCertificateConfiguration | None:
        if certificate.reloads == served["reloads"]:
            return None  # unchanged: gRPC keeps the configuration it has
        served["reloads"] = certificate.reloads
        return current()

    return grpc.dynamic_ssl_server_credentials(current(), fetch)  # type: ignore[arg-type]  # None: unchanged


class GrpcListener:
    def __init__(self, state: AppState, certificate: CertificateReloader | None = None) -> None:
        settings = self._settings = state.settings
        self._health_port = state.health
        self._certificate = certificate
        self._server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", settings.grpc_max_message_bytes),
                ("grpc.max_send_message_length", settings.grpc_max_message_bytes),
                ("grpc.max_concurrent_streams", settings.grpc_max_streams_per_connection),
                ("grpc.so_reuseport", 0),
            ],
            maximum_concurrent_rpcs=settings.grpc_max_concurrent_calls,
        )
        self.metrics = GrpcMetrics(state.metrics.registry)
        collab_pb2_grpc.add_CollabServicer_to_server(  # type: ignore[no-untyped-call]
            CollabService(state, self.metrics), self._server
        )
        self._health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        reflection.enable_server_reflection(
            (
                SERVICE_NAME,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ),
            self._server,
        )
        address = f"{settings.grpc_host or settings.host}:{settings.grpc_port}"
        if certificate is not None:
            self.port = self._server.add_secure_port(address, _credentials(certificate))
        else:
            self.port = self._server.add_insecure_port(address)
        self._watch: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        await self._server.start()
        await self._set_health()
        self._watch = asyncio.create_task(self._follow_readiness(), name="grpc-health")
        logger.info(
            "gRPC %s on %s:%d (%s)",
            SERVICE_NAME,
            self._settings.grpc_host or self._settings.host,
            self.port,
            "TLS" if self._certificate else "plaintext",
        )
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        await self._health.enter_graceful_shutdown()
        # Streams (Subscribe, Sync) end here: their clients reconnect to another node.
        await self._server.stop(grace=min(5.0, self._settings.shutdown_timeout_seconds / 2))

    async def _set_health(self) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if self._health_port.ready
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", SERVICE_NAME):
            await self._health.set(name, status)

    async def _follow_readiness(self) -> None:
        """Health mirrors /readyz: NOT_SERVING while the store or the broker is failing."""
        while True:
            await asyncio.sleep(HEALTH_CHECK_SECONDS)
            await self._set_health()
