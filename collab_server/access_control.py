"""Token verification plus the audit trail: the `Authorizer` port the HTTP API checks callers with."""

from __future__ import annotations

from collab_server.audit import AuditLog
from collab_server.auth import Authenticator, Principal


class AccessControl:
    def __init__(self, auth: Authenticator, audit: AuditLog) -> None:
        self._auth = auth
        self._audit = audit

    @property
    def enabled(self) -> bool:
        return self._auth.enabled

    def verify(self, token: str | None) -> Principal:
        return self._auth.verify(token)

    def record(self, action: str, subject: str | None, document: str | None, detail: str = "") -> None:
        self._audit.record(action, subject, document, detail)

    async def settle_audit(self) -> None:
        await self._audit.flush()
