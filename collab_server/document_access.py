"""What a verified token allows one participant on one document.

The one rule for every live participant (a y-websocket connection, a Hocuspocus document
channel, a gRPC ``Sync`` stream): a token that does not verify or grants no role on the
document is refused (and audited); a role below write makes the participant read-only; with
auth on, its edits are attributed to the token's subject and its presence shows the token's
identity, never what the client claims.
"""

from __future__ import annotations

from dataclasses import dataclass

from awareness.identity import Identity
from collab_server.auth import ANONYMOUS, InvalidToken, Principal, Role
from collab_server.closecodes import CloseCode
from collab_server.ports import Authorizer


@dataclass(frozen=True, slots=True)
class DocumentAccess:
    principal: Principal
    read_only: bool
    actor: str | None  # who its edits are attributed to
    identity: Identity | None  # what its presence shows (None: what the client sends)


def unverified(claimed_actor: str | None) -> DocumentAccess:
    """Before the token is checked: nobody in particular, nothing to show for it."""
    return DocumentAccess(ANONYMOUS, read_only=True, actor=claimed_actor, identity=None)


class AccessRefused(Exception):
    """The participant may not join the document; ``code`` is the close code to tell it."""

    def __init__(self, code: CloseCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def access_for_token(
    access: Authorizer, token: str | None, document: str, *, claimed_actor: str | None, client_ip: str
) -> DocumentAccess:
    """Verify ``token`` and map it onto ``document``; raises AccessRefused (audited)."""
    try:
        principal = access.verify(token)
    except InvalidToken as exc:
        access.record("denied", None, document, f"{exc} from={client_ip}")
        lapsed = "expired" in str(exc) or "revoked" in str(exc)
        raise AccessRefused(CloseCode.TOKEN_EXPIRED if lapsed else CloseCode.UNAUTHORIZED, str(exc)) from None
    return access_for(access, principal, document, claimed_actor=claimed_actor)


def access_for(
    access: Authorizer, principal: Principal, document: str, *, claimed_actor: str | None
) -> DocumentAccess:
    """What a verified ``principal`` may do on ``document``; raises AccessRefused (audited)."""
    role = principal.role_for(document)
    if role is None:
        access.record("denied", principal.subject, document, "no grant for this document")
        raise AccessRefused(CloseCode.FORBIDDEN, "no access to this document")
    read_only = role < Role.WRITE
    if not access.enabled:
        return DocumentAccess(principal, read_only, claimed_actor, None)
    identity = Identity.of_subject(principal.subject, principal.kind)
    return DocumentAccess(principal, read_only, principal.subject, identity)
