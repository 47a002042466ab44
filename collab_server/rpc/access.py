"""Who may make a gRPC call: the hub's tokens (``authorization: Bearer`` metadata) and roles."""

from __future__ import annotations

from typing import Any

import grpc

from collab_server.auth import InvalidToken, Principal, Role
from collab_server.document_access import ALL_DOCUMENTS, MAX_ACTOR_CHARS, RoleMissing, require_role
from collab_server.document_names import InvalidDocumentName, check_document_name
from collab_server.ports import Authorizer
from collab_server.rpc.errors import RpcFailure, invalid


def token_of(context: grpc.aio.ServicerContext[Any, Any]) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization" and isinstance(value, str) and value.lower().startswith("bearer "):
            return value[7:].strip() or None
    return None


def document_name(raw: str) -> str:
    """The hub's one rule set for document names (collab_server/document_names.py)."""
    try:
        return check_document_name(raw)
    except InvalidDocumentName as exc:
        raise invalid(str(exc), "invalid_document_name") from None


class CallGuard:
    def __init__(self, access: Authorizer) -> None:
        self._access = access

    def principal(self, context: grpc.aio.ServicerContext[Any, Any]) -> Principal:
        try:
            return self._access.verify(token_of(context))
        except InvalidToken as exc:
            self._access.record("denied", None, None, f"grpc: {exc}")
            raise RpcFailure(401, "unauthorized", str(exc)) from None

    def require(
        self, context: grpc.aio.ServicerContext[Any, Any], document: str | None, role: Role
    ) -> Principal:
        """The caller, if it holds ``role`` on ``document`` (None: any document); else 401/403."""
        principal = self.principal(context)
        try:
            require_role(self._access, principal, document or ALL_DOCUMENTS, role, "grpc")
        except RoleMissing as exc:
            raise RpcFailure(403, "forbidden", str(exc)) from None
        return principal

    def actor(self, principal: Principal, claimed: str, default: str) -> str:
        """Attribution: the token's subject when auth is on, else what the caller says."""
        if self._access.enabled:
            return principal.subject
        if len(claimed) > MAX_ACTOR_CHARS:
            raise invalid(f"'actor' must be at most {MAX_ACTOR_CHARS} characters")
        return claimed or default
