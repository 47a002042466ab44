"""Host controls of a shared editor session: join requests, guest tokens, removal, the end.

A shared session (the VS Code extension's "Start Session") is a set of hub documents:
``nova-session/<id>`` (the manifest), ``nova-session/<id>/<path>`` (the files),
``nova-session/<id>-asks`` (file requests of read-only guests) and
``nova-session/<id>-terminal`` / ``-terminal-input`` (the shared terminal). Its host is whoever
holds the admin role on the manifest. A guest without a token asks to join; the host approves
(read or write) or refuses; an approved guest's token is minted here, scoped to the session's
documents and carrying the session claim. Removing a guest revokes its tokens (stored, on every
node, connections closed); ending the session revokes the session claim, so every guest token
of it is refused from then on, even after a restart.

The lobby itself (pending requests, who was approved) lives in this node's memory, bounded:
a restart forgets pending requests (guests ask again) but never un-revokes anything.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Literal

from collab_server.auth import Principal, Role, mint, session_revocation_id
from collab_server.ports import Revocations

SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
SESSION_PREFIX = "nova-session"
MAX_NAME_CHARS = 64  # a guest's display name is cut here: a label, never an identity

GuestRole = Literal["read", "write"]
Status = Literal["pending", "approved", "refused"]


class LobbyError(Exception):
    """Refused: ``status`` and ``code`` are the HTTP answer."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def manifest_document(session: str) -> str:
    return f"{SESSION_PREFIX}/{session}"


def terminal_input_document(session: str) -> str:
    return f"{SESSION_PREFIX}/{session}-terminal-input"


def guest_grants(session: str, role: GuestRole) -> list[tuple[str, str]]:
    """What an approved guest may open: the files with its role, the terminal to watch, and the
    asks document (a read-only guest cannot write the manifest, so it asks for files there)."""
    root = manifest_document(session)
    return [
        (root, role),
        (f"{root}/*", role),
        (f"{root}-asks", "write"),
        (f"{root}-terminal", "read"),
    ]


@dataclass
class JoinRequest:
    id: str
    name: str
    key: str  # only the asking guest knows it: it reads the answer (and its token) with it
    at: float
    status: Status = "pending"
    token: str | None = None
    participant: str | None = None


@dataclass
class Participant:
    id: str  # the guest token's id (jti)
    name: str
    role: GuestRole
    expires_at: float
    terminal_token_id: str | None = None
    terminal_token: str | None = None


@dataclass
class SharedSession:
    id: str
    host: str
    requests: dict[str, JoinRequest] = field(default_factory=dict)
    participants: dict[str, Participant] = field(default_factory=dict)
    terminal_writer: str | None = None  # a participant id
    ended: bool = False


@dataclass(frozen=True, slots=True)
class LobbyLimits:
    """The bounds of one node's lobbies (the `max_session*` / `session_*` settings)."""

    max_sessions: int  # sessions this node keeps a lobby for
    max_pending: int  # unanswered join requests per session
    max_participants: int  # approved guests per session
    request_seconds: float  # an unanswered request is dropped after this
    guest_token_seconds: float  # a guest token's lifetime; the session's end outlives them all


class SessionLobby:
    """One node's lobbies; tokens are signed with the hub's HS256 secret (``signing_key``)."""

    def __init__(
        self, signing_key: str, auth_enabled: bool, revocations: Revocations, limits: LobbyLimits
    ) -> None:
        self._key = signing_key
        self._auth_enabled = auth_enabled
        self._revocations = revocations
        self._limits = limits
        self._sessions: dict[str, SharedSession] = {}

    @staticmethod
    def check_id(session: str) -> str:
        if not SESSION_ID.match(session):
            raise LobbyError(400, "invalid_session", "a session id is 1-64 letters, digits, '-' or '_'")
        return session

    @staticmethod
    def is_host(principal: Principal, session: str) -> bool:
        role = principal.role_for(manifest_document(session))
        return role is not None and role >= Role.ADMIN

    def require_host(self, principal: Principal, session: str) -> SharedSession:
        if not self.is_host(principal, session):
            raise LobbyError(403, "forbidden", "only the session's host (admin on its manifest) may do this")
        shared = self._sessions.get(session)
        if shared is None:
            raise LobbyError(404, "unknown_session", f"session {session!r} is not open on this hub")
        return shared

    # -- the host --------------------------------------------------------------------------

    def open(self, principal: Principal, session: str) -> SharedSession:
        """The host announces its session (again after a hub restart): guests may ask to join."""
        if not self.is_host(principal, session):
            raise LobbyError(403, "forbidden", "only an admin of the session's manifest may open it")
        shared = self._sessions.get(session)
        if shared is not None and shared.ended:
            raise LobbyError(410, "session_ended", f"session {session!r} has ended")
        if shared is None:
            most = self._limits.max_sessions
            if len(self._sessions) >= most:
                self._forget_ended()
            if len(self._sessions) >= most:
                raise LobbyError(503, "too_many_sessions", f"{most} sessions are open on this node")
            shared = SharedSession(session, principal.subject)
            self._sessions[session] = shared
        return shared

    def pending(self, principal: Principal, session: str) -> list[JoinRequest]:
        shared = self.require_host(principal, session)
        self._expire(shared)
        return [r for r in shared.requests.values() if r.status == "pending"]

    def participants(self, principal: Principal, session: str) -> SharedSession:
        return self.require_host(principal, session)

    def approve(self, principal: Principal, session: str, request_id: str, role: GuestRole) -> Participant:
        shared = self.require_host(principal, session)
        request = self._pending(shared, request_id)
        most = self._limits.max_participants
        if len(shared.participants) >= most:
            raise LobbyError(409, "too_many_participants", f"{most} guests already joined")
        participant = Participant(
            secrets.token_hex(16), request.name, role, time.time() + self._limits.guest_token_seconds
        )
        request.token = self._mint(session, participant, guest_grants(session, role), participant.id)
        request.status = "approved"
        request.participant = participant.id
        shared.participants[participant.id] = participant
        return participant

    def refuse(self, principal: Principal, session: str, request_id: str) -> None:
        shared = self.require_host(principal, session)
        self._pending(shared, request_id).status = "refused"

    async def remove(self, principal: Principal, session: str, participant_id: str) -> int:
        """Revokes the guest's tokens (its connections close at once); returns connections closed."""
        shared = self.require_host(principal, session)
        participant = shared.participants.pop(participant_id, None)
        if participant is None:
            raise LobbyError(404, "unknown_participant", f"no guest {participant_id!r} in this session")
        if shared.terminal_writer == participant_id:
            shared.terminal_writer = None
        closed = 0
        for token_id in (participant.id, participant.terminal_token_id):
            if token_id is not None:
                closed += await self._revocations.revoke(
                    token_id,
                    by=principal.subject,
                    expires_at=participant.expires_at,
                    why="removed by the host",
                )
        return closed

    async def set_terminal_writer(
        self, principal: Principal, session: str, participant_id: str | None
    ) -> None:
        """Who may type in the shared terminal (one guest, or nobody); the previous writer's
        terminal token is revoked, so its input connection closes."""
        shared = self.require_host(principal, session)
        if participant_id is not None and participant_id not in shared.participants:
            raise LobbyError(404, "unknown_participant", f"no guest {participant_id!r} in this session")
        previous = shared.participants.get(shared.terminal_writer or "")
        shared.terminal_writer = participant_id
        if previous is not None and previous.id != participant_id and previous.terminal_token_id is not None:
            token_id, previous.terminal_token_id, previous.terminal_token = (
                previous.terminal_token_id,
                None,
                None,
            )
            await self._revocations.revoke(
                token_id,
                by=principal.subject,
                expires_at=previous.expires_at,
                why="terminal write access revoked",
            )

    async def end(self, principal: Principal, session: str) -> int:
        """Every guest token of the session is refused from now on (stored: survives restarts)."""
        if not self.is_host(principal, session):
            raise LobbyError(403, "forbidden", "only the session's host (admin on its manifest) may do this")
        shared = self._sessions.get(session)
        if shared is None:
            shared = self._sessions[session] = SharedSession(session, principal.subject)
        shared.ended = True
        for request in shared.requests.values():
            if request.status == "pending":
                request.status = "refused"
        return await self._revocations.revoke(
            session_revocation_id(session),
            by=principal.subject,
            expires_at=time.time() + self._limits.guest_token_seconds,
            why="the host ended the session",
        )

    # -- the guest -------------------------------------------------------------------------

    def ask(self, session: str, name: str) -> JoinRequest | None:
        """A join request; None when the hub runs without auth (everyone may join)."""
        if not self._auth_enabled:
            return None
        shared = self._sessions.get(session)
        if shared is None:
            raise LobbyError(404, "unknown_session", f"session {session!r} is not open on this hub")
        if shared.ended:
            raise LobbyError(410, "session_ended", f"session {session!r} has ended")
        self._expire(shared)
        most = self._limits.max_pending
        if sum(r.status == "pending" for r in shared.requests.values()) >= most:
            raise LobbyError(429, "too_many_requests", f"{most} join requests are waiting already")
        request = JoinRequest(
            secrets.token_hex(8), name[:MAX_NAME_CHARS], secrets.token_urlsafe(24), time.time()
        )
        shared.requests[request.id] = request
        return request

    def answer(self, session: str, request_id: str, key: str) -> JoinRequest:
        shared = self._sessions.get(session)
        request = None if shared is None else shared.requests.get(request_id)
        if request is None or not secrets.compare_digest(request.key, key):
            raise LobbyError(404, "unknown_request", "no such join request (or a wrong key)")
        if shared is not None and shared.ended:
            raise LobbyError(410, "session_ended", f"session {session!r} has ended")
        return request

    def terminal_token(self, principal: Principal, session: str) -> str:
        """The write token of the shared terminal's input, for the guest the host chose."""
        shared = self._sessions.get(session)
        writer = None if shared is None else shared.participants.get(shared.terminal_writer or "")
        if shared is None or writer is None or writer.id != principal.token_id or shared.ended:
            raise LobbyError(403, "forbidden", "the host has not given you write access to the terminal")
        if writer.terminal_token is None:  # one terminal token per grant: asking again returns it
            writer.terminal_token_id = secrets.token_hex(16)
            grants = [(terminal_input_document(session), "write")]
            writer.terminal_token = self._mint(session, writer, grants, writer.terminal_token_id)
        return writer.terminal_token

    # -- internals -------------------------------------------------------------------------

    def _mint(
        self, session: str, participant: Participant, grants: list[tuple[str, str]], token_id: str
    ) -> str:
        if not self._key:
            raise LobbyError(
                501, "not_supported", "this hub verifies tokens with a public key: it cannot mint"
            )
        return mint(
            self._key,
            f"guest:{participant.name}:{participant.id[:8]}",
            grants,
            ttl_seconds=max(1.0, participant.expires_at - time.time()),
            token_id=token_id,
            shared_session=session,
        )

    @staticmethod
    def _pending(shared: SharedSession, request_id: str) -> JoinRequest:
        request = shared.requests.get(request_id)
        if request is None:
            raise LobbyError(404, "unknown_request", f"no join request {request_id!r}")
        if request.status != "pending":
            raise LobbyError(409, "already_answered", f"request {request_id!r} was {request.status}")
        return request

    def _expire(self, shared: SharedSession) -> None:
        cutoff = time.time() - self._limits.request_seconds
        for request_id in [r.id for r in shared.requests.values() if r.at < cutoff]:
            del shared.requests[request_id]

    def _forget_ended(self) -> None:
        for session in [s.id for s in self._sessions.values() if s.ended]:
            del self._sessions[session]
