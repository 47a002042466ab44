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
from typing import Any, Protocol

import pycrdt

import crdt_core
from awareness.identity import Identity
from collab_server import hocuspocus_protocol as hp
from collab_server.auth import ANONYMOUS, InvalidToken, Principal, Role
from collab_server.closecodes import CloseCode, reason_for
from collab_server.connection import RateLimiter
from collab_server.documents import DocumentUnavailable, HubStopping, TooManyConnections
from collab_server.hub import Hub
from collab_server.outbox import Outbox, OutboxLimits, OutboxOverflow
from collab_server.pending import PendingLimitExceeded
from collab_server.room import DocumentTooLarge, Room
from collab_server.sessions import QuotaExceeded
from crdt_core import MessageKind, ProtocolError
from persistence.group_commit import BacklogFull

logger = logging.getLogger(__name__)

# Messages that may wait for a channel's task (auth and loading included) before it is closed.
INBOX_MAX_MESSAGES = 1_024
# Close codes that no single document can fix: the whole socket closes, the provider reconnects
# and re-syncs every document on it.
SOCKET_WIDE = frozenset({CloseCode.SLOW_CONSUMER, CloseCode.TRY_AGAIN_LATER, CloseCode.SERVICE_RESTART})
_EMPTY_UPDATE = b"\x00\x00"


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


class DocumentChannel:
    def __init__(self, hub: Hub, socket: SocketPort, key: str, document: str, peer_id: str) -> None:
        settings = hub.settings
        self._hub = hub
        self._socket = socket
        self.key = key  # the envelope name: the document, or "document\0session" (provider 4.x)
        self.document = document
        self.peer_id = peer_id
        self.client_ip = socket.client_ip
        self.quota_ip = socket.quota_ip
        self.principal: Principal = ANONYMOUS
        self.read_only = False
        self.actor: str | None = socket.actor
        self.refused_writes = 0
        self._identity: Identity | None = None
        self._presence_refusals_told: set[str] = set()
        self.state = ChannelState.AUTHENTICATING
        self.prefix = hp.prefix(key)
        self.outbox = Outbox(OutboxLimits(settings.outbox_max_messages, settings.outbox_max_bytes))
        self.scheduled = False  # in the socket's ready queue
        self._limiter = RateLimiter(settings.max_messages_per_second, settings.message_burst)
        self._inbox: asyncio.Queue[hp.Envelope] = asyncio.Queue(INBOX_MAX_MESSAGES)
        self._pending = 0  # messages received and not yet handled (queued or in hand)
        self._room: Room | None = None
        self._admitted = False
        self.task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"DocumentChannel({self.peer_id}, document={self.document!r})"

    # -- Peer (room → client) ----------------------------------------------------------

    def deliver(self, frame: bytes, update: bytes | None) -> None:
        if self.state is not ChannelState.OPEN:
            return
        try:
            self.outbox.put_document(frame, update)
        except OutboxOverflow as exc:
            self.request_close(CloseCode.SLOW_CONSUMER, str(exc))
            return
        self._socket.schedule(self)

    def deliver_presence(self, frame: bytes) -> None:
        if self.state is not ChannelState.OPEN:
            return
        try:
            self.outbox.put_presence(frame)
        except OutboxOverflow as exc:
            self.request_close(CloseCode.SLOW_CONSUMER, str(exc))
            return
        self._socket.schedule(self)

    def deliver_stateless(self, payload: str) -> None:
        """Another client's stateless message for this document (sent as a whole envelope)."""
        self._send_enveloped(hp.stateless(self.key, payload))

    def _send_enveloped(self, message: bytes) -> None:
        # The outbox holds y-protocols frames and the writer adds the envelope; a message that
        # already has its envelope is queued without it (the writer puts it back).
        self._queue(message[len(self.prefix) :])

    def _queue(self, frame: bytes) -> None:
        if self.state is ChannelState.CLOSED:
            return
        try:
            self.outbox.put_document(frame)
        except OutboxOverflow as exc:
            self.request_close(CloseCode.SLOW_CONSUMER, str(exc))
            return
        self._socket.schedule(self)

    # -- inbox (client → channel) ------------------------------------------------------

    def receive(self, envelope: hp.Envelope) -> None:
        """Called by the socket's reader: handle the message now, or queue it for the channel's task.

        Updates and awareness of an open channel with nothing queued are handled right here
        (no task switch on the hot path); anything that must wait (auth, loading, a sync
        step 1, messages behind those) goes through the inbox, so order is kept.
        """
        if self.state is ChannelState.CLOSED:
            return
        if not self._limiter.allow():
            self.request_close(CloseCode.RATE_LIMITED)
            return
        if self.state is ChannelState.OPEN and self._pending == 0:
            try:
                if self._dispatch(envelope) is None:
                    return
            except Exception as exc:
                self._close_for_error(exc)
                return
        try:
            self._inbox.put_nowait(envelope)
        except asyncio.QueueFull:
            self.request_close(CloseCode.RATE_LIMITED, f"{INBOX_MAX_MESSAGES} messages waiting")
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
            while self.state is ChannelState.OPEN:
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
            hub.audit.record("denied", self.principal.subject, self.document, f"quota: {exc}")
            self.request_close(CloseCode.RATE_LIMITED, str(exc))
            return None
        self._admitted = True
        try:
            self._room = await hub.documents.acquire(self.document, self)
        except HubStopping:
            self.request_close(CloseCode.SERVICE_RESTART)
            return None
        except TooManyConnections:
            self.request_close(CloseCode.TOO_MANY_CONNECTIONS)
            return None
        except DocumentUnavailable as exc:
            self.request_close(exc.close_code, str(exc))  # 4410 when deleted
            return None
        if self.state is not ChannelState.AUTHENTICATING:  # closed while loading
            return None
        self.state = ChannelState.OPEN
        role = "read" if self.read_only else "write"
        hub.audit.record(
            "connect", self.principal.subject, self.document, f"role={role} from={self.client_ip} hocuspocus"
        )
        self._send_enveloped(hp.authenticated(self.key, read_only=self.read_only))
        self.outbox.catch_up = self._room.presence_catch_up.frame
        presence = self._room.presence_snapshot_frame()
        if presence is not None:
            self.deliver_presence(presence)
        return early

    def _check_token(self, token: str | None) -> bool:
        """Map the token onto the hub's roles. A refusal is Hocuspocus's permission-denied."""
        hub = self._hub
        try:
            principal = hub.auth.verify(token)
        except InvalidToken as exc:
            hub.audit.record("denied", None, self.document, f"{exc} from={self.client_ip}")
            self._deny(str(exc))
            return False
        role = principal.role_for(self.document)
        if role is None:
            hub.audit.record("denied", principal.subject, self.document, "no grant for this document")
            self._deny("no access to this document")
            return False
        self.principal = principal
        self.read_only = role < Role.WRITE
        if hub.auth.enabled:
            self.actor = principal.subject
            # What this channel shows in presence comes from its token, not from the client.
            self._identity = Identity.of_subject(principal.subject, principal.kind)
        return True

    def _deny(self, reason: str) -> None:
        # The provider reports authenticationFailed; the channel ends without a CLOSE message,
        # as Hocuspocus does, so a later auth message for the document starts afresh.
        self._socket.send_control(hp.permission_denied(self.key, reason))
        self.state = ChannelState.CLOSED
        self.outbox.abort()

    async def _handle_checked(self, envelope: hp.Envelope) -> None:
        try:
            await self._handle(envelope)
        except Exception as exc:
            self._close_for_error(exc)

    def _close_for_error(self, exc: Exception) -> None:
        if isinstance(exc, ProtocolError):
            self.request_close(CloseCode.INVALID_PAYLOAD, str(exc))
        elif isinstance(exc, BacklogFull):
            self.request_close(CloseCode.TRY_AGAIN_LATER, str(exc))
        elif isinstance(exc, DocumentTooLarge):
            self.request_close(CloseCode.DOCUMENT_TOO_LARGE, str(exc))
        elif isinstance(exc, PendingLimitExceeded):
            self.request_close(CloseCode.DEPENDENCIES_MISSING, str(exc))
        else:  # a hub bug: close this document only, keep the socket and hub serving
            logger.error(
                "%s on %r: unexpected error handling a message", self.peer_id, self.document, exc_info=exc
            )
            self.request_close(CloseCode.INTERNAL_ERROR)

    async def _handle(self, envelope: hp.Envelope) -> None:
        step1 = self._dispatch(envelope)
        if step1 is not None and self._room is not None:
            # As Hocuspocus: answer with step 2, then ask for what the client has (step 1).
            reply = await self._room.sync_step2_for(step1.payload)
            self._queue(reply)
            self._queue(crdt_core.frame_sync_step1(self._room.state_vector()))

    def _dispatch(self, envelope: hp.Envelope) -> crdt_core.Message | None:
        """Handle a message at once; a sync step 1 (it awaits the store) is returned instead."""
        room = self._room
        assert room is not None
        kind = envelope.type
        if kind in (hp.MessageType.SYNC, hp.MessageType.SYNC_REPLY):
            message = crdt_core.parse_message(_as_sync(envelope))
            if message.kind is MessageKind.SYNC_STEP1:
                return message
            self._apply_sync(room, message)
        elif kind == hp.MessageType.AWARENESS:
            awareness = crdt_core.parse_message(envelope.frame).payload
            for refusal in room.apply_presence(awareness, self, self._identity):
                self._refuse_presence(refusal.reason)
        elif kind == hp.MessageType.QUERY_AWARENESS:
            presence = room.presence_snapshot_frame()
            if presence is not None:
                self.deliver_presence(presence)
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

    def _apply_sync(self, room: Room, message: crdt_core.Message) -> None:
        kind = message.kind
        if kind not in (MessageKind.SYNC_STEP2, MessageKind.SYNC_UPDATE):
            raise ProtocolError("unexpected sync message")
        if self.read_only:
            adds = _adds_anything(room, message.payload)
            self._send_enveloped(hp.sync_status(self.key, applied=not adds))
            if adds:
                self._refuse_write()
            return
        room.apply_update(message.payload, self, self.actor)
        self._send_enveloped(hp.sync_status(self.key, applied=True))

    def _refuse_presence(self, reason: str) -> None:
        """Refused presence entries are not stored or sent; the client is told once per reason."""
        if reason in self._presence_refusals_told or len(self._presence_refusals_told) >= 8:
            return
        self._presence_refusals_told.add(reason)
        logger.info("%s on %r: presence refused: %s", self.peer_id, self.document, reason)
        self._send_enveloped(hp.permission_denied(self.key, f"presence refused: {reason}"))

    def _refuse_write(self) -> None:
        """As on y-websocket: a viewer's write is dropped and it is told once, not closed."""
        self.refused_writes += 1
        if self.refused_writes == 1:
            self._send_enveloped(
                hp.permission_denied(self.key, "read-only: this token may not edit the document")
            )
            self._hub.audit.record(
                "denied", self.principal.subject, self.document, "write with a read-only role"
            )

    # -- closing -----------------------------------------------------------------------

    def request_close(self, code: CloseCode, detail: str | None = None) -> None:
        """Close this document (or, for codes only a reconnect fixes, the whole socket)."""
        if self.state is ChannelState.CLOSED:
            return
        self.state = ChannelState.CLOSED
        self.outbox.abort()
        if code in SOCKET_WIDE:
            self._socket.close_socket(code, detail)
        else:
            reason = reason_for(code, detail)
            self._hub.metrics.closes.labels(code=str(int(code))).inc()
            level = logging.INFO if code is CloseCode.NORMAL else logging.WARNING
            logger.log(
                level,
                "closing document %r on hocuspocus socket %s (node %s, client %s): %d %s",
                self.document,
                self.peer_id,
                self._hub.node_id,
                self.client_ip,
                code,
                reason,
            )
            if code is not CloseCode.NORMAL:
                self._socket.send_control(hp.close(self.key, int(code), reason))
        task = self.task
        if task is not None and task is not asyncio.current_task() and not task.done():
            task.cancel()

    def _leave(self) -> None:
        self.state = ChannelState.CLOSED
        self.outbox.abort()
        if self._room is not None:
            self._room.leave(self)
            self._room = None
            self._hub.audit.record("disconnect", self.principal.subject, self.document, "hocuspocus")
        if self._admitted:
            self._hub.sessions.release(self)
            self._admitted = False
        self._socket.channel_closed(self)


def _as_sync(envelope: hp.Envelope) -> bytes:
    """A SyncReply (type 4) is a sync message the hub need not answer with its own step 1."""
    if envelope.type == hp.MessageType.SYNC:
        return envelope.frame
    return bytes((hp.MessageType.SYNC,)) + envelope.frame[envelope.body_offset :]


def _adds_anything(room: Room, update: bytes) -> bool:
    """Whether ``update`` would change the room's document (for a read-only client's sync)."""
    missing = crdt_core.diff_update(update, room.state_vector())
    if missing == _EMPTY_UPDATE:
        return False
    if missing[:1] != b"\x00":
        return True  # structs the document does not have
    # Only deletes: try them on a copy (rare: a viewer's step 2 carries the deletes it saw).
    probe: pycrdt.Doc[Any] = pycrdt.Doc()
    probe.apply_update(room.doc.get_update())
    changes: list[bytes] = []
    subscription = probe.observe(lambda event: changes.append(event.update))
    try:
        probe.apply_update(update)
    except ValueError as exc:
        raise ProtocolError(f"invalid update: {exc}") from exc
    finally:
        probe.unobserve(subscription)
    return any(change != _EMPTY_UPDATE for change in changes)
