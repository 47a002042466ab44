"""Sessions: who is connected, per-subject and per-address quotas, token expiry and revocation.

Revocations are kept in the store (so they survive restarts and are shared by every node on
the same database), announced to the other nodes through the broker at once, and re-read
from the store every `revocation_refresh_seconds` (a node that missed the announcement,
say while Redis was down, still learns of it). A revocation lasts until the token's own
expiry: taken from the request, else from a live session of that token, else kept for good.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import Protocol

from collab_server.audit import AuditLog
from collab_server.auth import Authenticator, Principal
from collab_server.broker import Broker
from collab_server.closecodes import CloseCode
from collab_server.settings import Settings
from persistence.base import Revocation, Store

logger = logging.getLogger(__name__)


class Session(Protocol):
    """An authenticated connection, as seen for quotas and revocation."""

    @property
    def principal(self) -> Principal: ...

    @property
    def client_ip(self) -> str: ...

    @property
    def quota_ip(self) -> str | None:
        """None: from a trusted proxy that named no client (no per-address quota)."""

    @property
    def document(self) -> str: ...

    def request_close(self, code: CloseCode, detail: str | None = None) -> None: ...


class QuotaExceeded(Exception):
    pass


class SessionRegistry:
    def __init__(
        self, settings: Settings, auth: Authenticator, audit: AuditLog, store: Store, broker: Broker
    ):
        self._settings = settings
        self._auth = auth
        self._audit = audit
        self._store = store
        self._broker = broker
        self.sessions: set[Session] = set()
        self._by_subject: Counter[str] = Counter()
        self._by_ip: Counter[str] = Counter()
        self._documents_by_subject: dict[str, Counter[str]] = {}
        self._last_refresh = 0.0

    # -- quotas ------------------------------------------------------------------------

    def admit(self, session: Session) -> None:
        """Register a session; raise QuotaExceeded (nothing registered) when a quota is hit.

        Quotas count real identities only: a subject when auth is on (without auth every
        socket is "anonymous", and counting that would cap the hub), an address when it
        names one client (see client_address.py).
        """
        subject = session.principal.subject if self._auth.enabled else None
        address = session.quota_ip
        settings = self._settings
        if subject is not None and self._by_subject[subject] >= settings.max_connections_per_subject:
            raise QuotaExceeded(f"{settings.max_connections_per_subject} connections for {subject!r}")
        if address is not None and self._by_ip[address] >= settings.max_connections_per_ip:
            raise QuotaExceeded(f"{settings.max_connections_per_ip} connections from one address")
        if subject is not None:
            documents = self._documents_by_subject.get(subject, Counter())
            if session.document not in documents and len(documents) >= settings.max_documents_per_subject:
                raise QuotaExceeded(f"{settings.max_documents_per_subject} documents open for {subject!r}")
            self._documents_by_subject[subject] = documents
            documents[session.document] += 1
            self._by_subject[subject] += 1
        if address is not None:
            self._by_ip[address] += 1
        self.sessions.add(session)

    def release(self, session: Session) -> None:
        if session not in self.sessions:
            return
        self.sessions.discard(session)
        subject = session.principal.subject if self._auth.enabled else None
        if subject is not None:
            _decrement(self._by_subject, subject)
            documents = self._documents_by_subject.get(subject)
            if documents is not None:
                _decrement(documents, session.document)
                if not documents:
                    del self._documents_by_subject[subject]
        if session.quota_ip is not None:
            _decrement(self._by_ip, session.quota_ip)

    # -- expiry and revocation -----------------------------------------------------------

    async def load_revocations(self) -> None:
        """Replace the known revocations with the store's (at start, then periodically)."""
        now = time.time()
        records = await self._store.revocations(now)
        self._auth.replace_revocations({r.token_id: r.expires_at for r in records})
        self._last_refresh = time.monotonic()
        for record in records:
            self._close_sessions_of(record.token_id, "revoked")

    def refresh_due(self) -> bool:
        return time.monotonic() - self._last_refresh >= self._settings.revocation_refresh_seconds

    async def revoke(self, token_id: str, *, by: str | None, expires_at: float | None = None) -> int:
        """Revoke a token on every node: stored first (raises StoreError), then announced.

        Returns how many sessions of this node were closed.
        """
        if expires_at is None:
            expires_at = self._expiry_of(token_id)
        await self._store.add_revocation(Revocation(token_id, expires_at, time.time(), by))
        self._broker.publish_revocation(token_id)
        self._audit.record("revoke", by, None, f"token {token_id}")
        self._auth.revoke(token_id, expires_at)
        return self._close_sessions_of(token_id, "revoked")

    def on_revoked(self, token_id: str) -> None:
        """Another node revoked a token (announced through the broker)."""
        self._auth.revoke(token_id, self._expiry_of(token_id))
        self._close_sessions_of(token_id, "revoked")

    def close_expired(self) -> None:
        now = time.time()
        for session in list(self.sessions):
            expires_at = session.principal.expires_at
            if expires_at is not None and expires_at <= now:
                session.request_close(CloseCode.TOKEN_EXPIRED, "expired")

    def _expiry_of(self, token_id: str) -> float | None:
        for session in self.sessions:
            if session.principal.token_id == token_id:
                return session.principal.expires_at
        return None

    def _close_sessions_of(self, token_id: str, why: str) -> int:
        closed = 0
        for session in list(self.sessions):
            if session.principal.token_id == token_id:
                session.request_close(CloseCode.TOKEN_EXPIRED, why)
                closed += 1
        return closed


def _decrement(counter: Counter[str], key: str) -> None:
    counter[key] -= 1
    if counter[key] <= 0:
        del counter[key]
