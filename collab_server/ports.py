"""The narrow interfaces the hub's edges depend on (never the hub itself).

HTTP handlers, gRPC calls and WebSocket sockets get these from the app's lifespan
(`collab_server/app.py`): the HTTP API and gRPC through `AppState`
(`collab_server/api/context.py`), sockets through `SocketPorts`. Fast tests can hand any
object with these methods to a handler or a socket.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from collab_server.auth import Principal
from collab_server.client_address import TrustedProxies
from collab_server.direct_send import WireFrames
from collab_server.documents import DocumentStatus, DocumentSummary
from collab_server.metrics import HubMetrics
from collab_server.room import Peer, Room
from collab_server.send_gate import LargeFrameGate
from collab_server.sessions import Session
from collab_server.settings import Settings
from persistence.index.base import SearchIndex


class Documents(Protocol):
    """Documents by name: live ones in memory, stored ones in the store."""

    def using(self, name: str) -> AbstractAsyncContextManager[Room]:
        """Hold the document loaded while working on it; raises DocumentUnavailable or HubStopping."""

    async def exists(self, name: str) -> bool:
        """Loaded, or stored with at least one update (raises StoreError)."""

    async def encoded_state(self, name: str) -> bytes | None:
        """The whole document as one Yjs v1 update; None if it does not exist (raises StoreError)."""

    async def summaries(self) -> list[DocumentSummary]: ...

    def status(self, name: str) -> DocumentStatus: ...


class Rooms(Protocol):
    """Live membership of a document, for the peers that stay (sockets, gRPC streams)."""

    async def acquire(self, name: str, peer: Peer) -> Room:
        """Join ``name`` (one shared load for concurrent joiners); the peer leaves with ``room.leave``.

        Raises HubStopping, TooManyConnections or DocumentUnavailable."""


class LiveDocuments(Documents, Rooms, Protocol):
    """Documents by name, and membership of the live ones (what gRPC uses)."""


class Admission(Protocol):
    """Quotas of live sessions per subject and address; expiry and revocation close them."""

    def admit(self, session: Session) -> None:
        """Register ``session``; raises QuotaExceeded (nothing registered)."""

    def release(self, session: Session) -> None: ...


class Authorizer(Protocol):
    """Token verification and the audit trail, as the HTTP API needs them."""

    @property
    def enabled(self) -> bool:
        """False when the hub runs open (no secret, no key): everyone is an admin."""

    def verify(self, token: str | None) -> Principal:
        """Raises InvalidToken (missing, malformed, expired, revoked)."""

    def record(self, action: str, subject: str | None, document: str | None, detail: str = "") -> None:
        """Add an event to the audit trail (never blocks)."""

    async def settle_audit(self) -> None:
        """Write the events recorded so far, so a read of the trail that follows sees them."""


class Revocations(Protocol):
    async def revoke(
        self, token_id: str, *, by: str | None, expires_at: float | None = None, why: str = "revoked"
    ) -> int:
        """Revoke on every node (stored, then announced); returns local sessions closed. Raises StoreError."""


class Health(Protocol):
    @property
    def node_id(self) -> str: ...

    @property
    def ready(self) -> bool:
        """Accepting, the store reachable and writable, the broker healthy."""

    def readiness(self) -> dict[str, object]:
        """The /readyz body; its "ready" entry is the verdict."""

    @property
    def metrics_token(self) -> str:
        """The scraper's token for per-document series ("" when none is configured)."""

    def metrics_text(self, *, per_document: bool) -> bytes:
        """Prometheus exposition of this hub's metrics (per-document series only when asked)."""


class Durability(Protocol):
    """Whether and how long an HTTP write waits for its commit (strict durability)."""

    @property
    def strict(self) -> bool: ...

    @property
    def writes_healthy(self) -> bool:
        """The store is reachable and its last write succeeded."""

    @property
    def commit_timeout_seconds(self) -> float: ...

    async def wait_stored(self, document: str) -> None:
        """Until every change of ``document`` made so far is stored (unbounded: callers bound it)."""


class Search(Protocol):
    @property
    def index(self) -> SearchIndex | None:
        """The running index, or None while it opens or when search is off."""


@dataclass(frozen=True, slots=True)
class SocketPorts:
    """What a WebSocket (y-websocket connection or Hocuspocus socket) uses of the hub."""

    settings: Settings
    metrics: HubMetrics
    node_id: str
    access: Authorizer
    sessions: Admission
    rooms: Rooms
    trusted_proxies: TrustedProxies
    large_frames: LargeFrameGate
    wire_frames: WireFrames
