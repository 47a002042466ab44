"""One document on a Hocuspocus socket: its own auth, room membership, limits and close.

A channel is to a Hocuspocus socket what a Connection is to a y-websocket socket: a Peer
of one room and a Session of the hub (quotas, expiry, revocation). Its messages are handled
in order by its own task, fed through a bounded inbox, so a document that is still loading
never holds up the other documents of the socket. A channel that gets bad input, loses its
grant or hits a per-document limit is closed alone: the client receives a CLOSE message
for that document whose reason starts with the close code.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from typing import Protocol

import crdt_core
from collab_server import hocuspocus_protocol as hp
from collab_server.auth import Principal
from collab_server.closecodes import CloseCode
from collab_server.document_access import (
    AccessRefused,
    access_for_token,
    unverified,
)
from collab_server.documents import DocumentUnavailable, HubStopping, TooManyConnections
from collab_server.outbox import Outbox, OutboxLimits, OutboxOverflow
from collab_server.ports import SocketPorts
from collab_server.rate_limit import RateLimiter
from collab_server.room import Room
from collab_server.sessions import QuotaExceeded
from collab_server.websocket import announce_close, checked_move
from collab_server.ysync import Dialect, SyncSteps, close_code_for, join_refusal
from crdt_core import ProtocolError

logger = logging.getLogger(__name__)

# Close codes that no single document can fix: the whole socket closes, the provider reconnects
# and re-syncs every document on it.
SOCKET_WIDE = frozenset({CloseCode.SLOW_CONSUMER, CloseCode.TRY_AGAIN_LATER, CloseCode.SERVICE_RESTART})


def _denied(reason: str) -> bytes:
    return bytes((hp.MessageType.AUTH, hp.AuthType.PERMISSION_DENIED)) + hp.var_string(reason)


def _sync_status(applied: bool) -> bytes:
    return bytes((hp.MessageType.SYNC_STATUS, 1 if applied else 0))


# Hocuspocus words refusals its own way, acknowledges every write, and answers a client's
# step 1 with step 2 and then its own step 1. (Frames without their envelope: the writer adds it.)
HOCUSPOCUS = Dialect(_denied, write_status=_sync_status, ask_back=True, label="hocuspocus")


class SocketPort(Protocol):
    """What a channel needs from the socket it lives on."""

    client_ip: str
    quota_ip: str | None  # None: a trusted proxy that named no client (no per-address quota)
    actor: str | None
    default_token: str | None  # the socket URL's ?token=, for auth messages with an empty token

    def schedule(self, channel: DocumentChannel) -> None:
        """The channel has frames queued: let the writer take them."""

    def send_control(self, frame: bytes) -> None:
        """Queue a frame that bypasses every channel outbox (close messages)."""

    def channel_closed(self, channel: DocumentChannel) -> None: ...

    def close_socket(self, code: CloseCode, detail: str | None = None) -> None: ...


class ChannelState(enum.Enum):
    AUTHENTICATING = "authenticating"
    OPEN = "open"
    CLOSED = "closed"


# The only moves a channel makes; anything else raises IllegalTransition.
CHANNEL_TRANSITIONS: dict[ChannelState, frozenset[ChannelState]] = {
    ChannelState.AUTHENTICATING: frozenset({ChannelState.OPEN, ChannelState.CLOSED}),
    ChannelState.OPEN: frozenset({ChannelState.CLOSED}),
    ChannelState.CLOSED: frozenset(),
}


class DocumentChannel:
    def __init__(self, hub: SocketPorts, socket: SocketPort, key: str, document: str, peer_id: str) -> None:
        settings = hub.settings
        self._hub = hub
        self._socket = socket
        self.key = key  # the envelope name: the document, or "document\0session" (provider 4.x)
        self.document = document
        self.peer_id = peer_id
        self.client_ip = socket.client_ip
        self.quota_ip = socket.quota_ip
        self._sync = SyncSteps(self, unverified(socket.actor), hub.access, HOCUSPOCUS)
        self._state = ChannelState.AUTHENTICATING
        self.prefix = hp.prefix(key)
        self.outbox = Outbox(OutboxLimits.of(settings), merges=hub.metrics.outbox_merges)
        self.scheduled = False  # in the socket's ready queue
        self._limiter = RateLimiter(settings.max_messages_per_second, settings.message_burst)
        self._inbox: asyncio.Queue[hp.Envelope] = asyncio.Queue(settings.hocuspocus_inbox_messages)
        self._pending = 0  # messages received and not yet handled (queued or in hand)
        self._room: Room | None = None
        self._admitted = False
        self.task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"DocumentChannel({self.peer_id}, document={self.document!r})"

    @property
    def state(self) -> ChannelState:
        return self._state

    @property
    def principal(self) -> Principal:
        return self._sync.access.principal

    def _move(self, to: ChannelState) -> None:
        self._state = checked_move(self.peer_id, self._state, to, CHANNEL_TRANSITIONS)

    # -- Peer (room → client) ----------------------------------------------------------

    def deliver(self, frame: bytes, update: bytes | None) -> None:
        if self._state is not ChannelState.OPEN:
            return
        try:
            self.outbox.put_document(frame, update)
        except OutboxOverflow as exc:
            self.request_close(CloseCode.SLOW_CONSUMER, str(exc))
            return
        self._socket.schedule(self)

    def deliver_presence(self, frame: bytes) -> None:
        if self._state is not ChannelState.OPEN:
            return
        try:
            self.outbox.put_presence(frame)
        except OutboxOverflow as exc:
            self.request_close(CloseCode.SLOW_CONSUMER, str(exc))
            return
        self._socket.schedule(self)

    def deliver_stateless(self, payload: str) -> None:
        """Another client's stateless message for this document (sent as a whole envelope)."""
        # The outbox holds frames without their envelope (the writer adds it).
        self.deliver(hp.stateless(self.key, payload)[len(self.prefix) :], None)

    # -- inbox (client → channel) ------------------------------------------------------

    def receive(self, envelope: hp.Envelope) -> None:
        """Called by the socket's reader: handle the message now, or queue it for the channel's task.

        Updates and awareness of an open channel with nothing queued are handled right here
        (no task switch on the hot path); anything that must wait (auth, loading, a sync
        step 1, messages behind those) goes through the inbox, so order is kept.
        """
        if self._state is ChannelState.CLOSED:
            return
        if not self._limiter.allow():
            self.request_close(CloseCode.RATE_LIMITED)
            return
        if self._state is ChannelState.OPEN and self._pending == 0:
            try:
                if self._dispatch(envelope) is None:
                    return
            except Exception as exc:
                self._close_for_error(exc)
                return
        try:
            self._inbox.put_nowait(envelope)
        except asyncio.QueueFull:
            self.request_close(CloseCode.RATE_LIMITED, f"{self._inbox.maxsize} messages waiting")
            return
        self._pending += 1

    async def run(self) -> None:
        """Authenticate, join the room, then handle messages in order until closed."""
        try:
            early = await self._authenticate()
            if early is None:
                return
            for envelope in early:
                await self._handle_checked(envelope)
                self._pending -= 1
            while self._state is ChannelState.OPEN:
                await self._handle_checked(await self._inbox.get())
                self._pending -= 1
        finally:
            self._leave()

    async def _authenticate(self) -> list[hp.Envelope] | None:
        """Wait for the auth message (buffering what comes before it), then join the room."""
        hub = self._hub
        early: list[hp.Envelope] = []
        token: str | None = None
        try:
            async with asyncio.timeout(hub.settings.auth_timeout_seconds):
                while True:
                    envelope = await self._inbox.get()
                    if envelope.type == hp.MessageType.AUTH:
                        self._pending -= 1
                        token = hp.token_of(envelope)
                        if token is not None:
                            break
                    elif envelope.type == hp.MessageType.CLOSE:
                        self.request_close(CloseCode.NORMAL, "closed by the client")
                        return None
                    else:
                        early.append(envelope)
        except TimeoutError:
            self.request_close(CloseCode.UNAUTHORIZED, "no auth message in time")
            return None
        except ProtocolError as exc:
            self.request_close(CloseCode.INVALID_PAYLOAD, str(exc))
            return None
        if not self._check_token(token or self._socket.default_token):
            return None
        try:
            hub.sessions.admit(self)
        except QuotaExceeded as exc:
            hub.access.record("denied", self.principal.subject, self.document, f"quota: {exc}")
            self.request_close(CloseCode.RATE_LIMITED, str(exc))
            return None
        self._admitted = True
        try:
            self._room = await hub.rooms.acquire(self.document, self)
        except (HubStopping, TooManyConnections, DocumentUnavailable) as exc:
            self.request_close(*join_refusal(exc))
            return None
        if self._state is not ChannelState.AUTHENTICATING:  # closed while loading
            return None
        self._move(ChannelState.OPEN)
        read_only = self._sync.access.read_only
        hub.access.record(
            "connect",
            self.principal.subject,
            self.document,
            f"role={'read' if read_only else 'write'} from={self.client_ip} hocuspocus",
        )
        self.deliver(hp.authenticated(self.key, read_only=read_only)[len(self.prefix) :], None)
        self.outbox.catch_up = self._room.presence_catch_up.frame
        self._sync.send_presence(self._room)
        return early

    def _check_token(self, token: str | None) -> bool:
        """Map the token onto the hub's roles. A refusal is Hocuspocus's permission-denied."""
        try:
            access = access_for_token(
                self._hub.access,
                token,
                self.document,
                claimed_actor=self._socket.actor,
                client_ip=self.client_ip,
            )
        except AccessRefused as exc:
            self._deny(exc.reason)
            return False
        self._sync.access = access
        return True

    def _deny(self, reason: str) -> None:
        # The provider reports authenticationFailed; the channel ends without a CLOSE message,
        # as Hocuspocus does, so a later auth message for the document starts afresh.
        self._socket.send_control(hp.permission_denied(self.key, reason))
        if self._state is not ChannelState.CLOSED:
            self._move(ChannelState.CLOSED)
        self.outbox.abort()

    async def _handle_checked(self, envelope: hp.Envelope) -> None:
        try:
            step1 = self._dispatch(envelope)
            if step1 is not None and self._room is not None:
                await self._sync.answer(self._room, step1)
        except Exception as exc:
            self._close_for_error(exc)

    def _close_for_error(self, exc: Exception) -> None:
        code = close_code_for(exc)
        if code is None:  # a hub bug: close this document only, keep the socket and hub serving
            logger.error(
                "%s on %r: unexpected error handling a message", self.peer_id, self.document, exc_info=exc
            )
            self.request_close(CloseCode.INTERNAL_ERROR)
        else:
            self.request_close(code, str(exc))

    def _dispatch(self, envelope: hp.Envelope) -> crdt_core.Message | None:
        """Handle a message at once; a sync step 1 (it awaits the store) is returned instead."""
        room = self._room
        assert room is not None
        kind = envelope.type
        if kind in (hp.MessageType.SYNC, hp.MessageType.SYNC_REPLY, hp.MessageType.AWARENESS):
            return self._sync.handle_now(room, crdt_core.parse_message(_as_y_protocols(envelope)))
        if kind == hp.MessageType.QUERY_AWARENESS:
            self._sync.send_presence(room)
        elif kind in (hp.MessageType.STATELESS, hp.MessageType.BROADCAST_STATELESS):
            payload = hp.stateless_payload(envelope)
            for peer in list(room.peers):
                if isinstance(peer, DocumentChannel) and peer is not self:
                    peer.deliver_stateless(payload)
        elif kind == hp.MessageType.AUTH:
            token = hp.token_of(envelope)
            if token is not None:  # a refreshed token: it must still be valid and grant the document
                self._check_token(token or None)
        elif kind == hp.MessageType.CLOSE:
            self.request_close(CloseCode.NORMAL, "closed by the client")
        else:
            raise ProtocolError(f"unknown Hocuspocus message type {kind}")
        return None

    # -- closing -----------------------------------------------------------------------

    def request_close(self, code: CloseCode, detail: str | None = None) -> None:
        """Close this document (or, for codes only a reconnect fixes, the whole socket)."""
        if self._state is ChannelState.CLOSED:
            return
        self._move(ChannelState.CLOSED)
        self.outbox.abort()
        if code in SOCKET_WIDE:
            self._socket.close_socket(code, detail)
        else:
            what = f"document {self.document!r} on hocuspocus socket {self.peer_id}"
            reason = announce_close(
                self._hub.metrics, code, detail, what, node_id=self._hub.node_id, client=self.client_ip
            )
            if code is not CloseCode.NORMAL:
                self._socket.send_control(hp.close(self.key, int(code), reason))
        task = self.task
        if task is not None and task is not asyncio.current_task() and not task.done():
            task.cancel()

    def _leave(self) -> None:
        if self._state is not ChannelState.CLOSED:
            self._move(ChannelState.CLOSED)
        self.outbox.abort()
        if self._room is not None:
            self._room.leave(self)
            self._room = None
            self._hub.access.record("disconnect", self.principal.subject, self.document, "hocuspocus")
        if self._admitted:
            self._hub.sessions.release(self)
            self._admitted = False
        self._socket.channel_closed(self)


def _as_y_protocols(envelope: hp.Envelope) -> bytes:
    """The envelope's y-protocols frame; a SyncReply (type 4) is read as a sync message."""
    if envelope.type != hp.MessageType.SYNC_REPLY:
        return envelope.frame
    return bytes((hp.MessageType.SYNC,)) + envelope.frame[envelope.body_offset :]
