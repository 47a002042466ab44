"""What a verified token allows on a document: the one role check of every API.

`require_role` is the check itself, for HTTP routes (`api/access.py`), gRPC calls
(`rpc/access.py`) and live participants alike: a principal without the role it needs is
audited and refused. The rest is the rule for every live participant (a y-websocket connection, a Hocuspocus document
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


ALL_DOCUMENTS = "*"  # the document a hub-wide call is checked against
MAX_ACTOR_CHARS = 128  # a claimed actor (attribution without auth), on every API


def may_read(principal: Principal | None, document: str) -> bool:
    """Whether a listing (documents, search hits) shows ``document`` to ``principal``."""
    return principal is not None and principal.role_for(document) is not None


class RoleMissing(Exception):
    """The caller lacks the role a call needs on the document (HTTP 403, gRPC PERMISSION_DENIED)."""

    def __init__(self, needed: Role) -> None:
        super().__init__(f"this token lacks the {needed.name.lower()} role here")
        self.needed = needed


def require_role(
    access: Authorizer, principal: Principal | None, document: str, needed: Role, where: str
) -> Role:
    """``principal``'s role on ``document`` (ALL_DOCUMENTS: hub-wide), if it is at least
    ``needed``; else the refusal is audited (``where``: which API) and RoleMissing raised."""
    granted = principal.role_for(document) if principal is not None else None
    if granted is None or granted < needed:
        subject = principal.subject if principal is not None else None
        shown = None if document == ALL_DOCUMENTS else document
        access.record("denied", subject, shown, f"{where} needs {needed.name}")
        raise RoleMissing(needed)
    return granted


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
    try:
        role = require_role(access, principal, document, Role.READ, "a live connection")
    except RoleMissing:
        raise AccessRefused(CloseCode.FORBIDDEN, "no access to this document") from None
    read_only = role < Role.WRITE
    if not access.enabled:
        return DocumentAccess(principal, read_only, claimed_actor, None)
    identity = Identity.of_subject(principal.subject, principal.kind)
    return DocumentAccess(principal, read_only, principal.subject, identity)
