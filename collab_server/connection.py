"""One WebSocket × one document: a sequential reader and one writer draining a bounded outbox.

The connection speaks raw ASGI (no per-message wrapper objects on the hot path). It is a
small state machine: CONNECTING → OPEN → CLOSING → CLOSED, and an illegal move raises.
Every close the hub initiates carries a named code and reason and is logged with the
document and connection ids. What its messages mean is decided in `ysync.py`; how a socket
is read and closed in `websocket.py`; it reaches the hub only through `SocketPorts`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Awaitable

from starlette.types import Message, Receive, Scope, Send

import crdt_core
from collab_server.auth import ANONYMOUS, Principal
from collab_server.closecodes import CloseCode
from collab_server.direct_send import websocket_frame
from collab_server.document_access import AccessRefused, access_for_token
from collab_server.document_names import InvalidDocumentName, check_document_name
from collab_server.documents import DocumentUnavailable, HubStopping, TooManyConnections
from collab_server.native_socket import direct_writer
from collab_server.origins import OriginPolicy
from collab_server.outbox import Outbox, OutboxLimits, OutboxOverflow
from collab_server.ports import SocketPorts
from collab_server.rate_limit import RateLimiter
from collab_server.room import Room
from collab_server.sessions import QuotaExceeded
from collab_server.websocket import (
    SOCKET_TRANSITIONS,
    Handshake,
    IllegalTransition,
    SocketRun,
    SocketState,
    checked_move,
)
from collab_server.ysync import Y_WEBSOCKET, SyncSteps, close_code_for, join_refusal
from crdt_core import ProtocolError

logger = logging.getLogger(__name__)

__all__ = ["TRANSITIONS", "Connection", "IllegalTransition", "State", "document_name"]

# A presence message sent with a drain barrier holds the next one until the client has read
# it, or this long (a client that never answers pings is dropped by the keepalive anyway).
_PRESENCE_DRAIN_SECONDS = 5.0
_AWARENESS_MESSAGE = 1  # the first byte of a y-protocols awareness frame
AUTH_TOKEN_PREFIX = b"\x02\x01"  # Nova's auth sub-type 1: a token (y-protocols defines only 0)

_ids = itertools.count(1)


State = SocketState  # CONNECTING → OPEN → CLOSING → CLOSED
TRANSITIONS = SOCKET_TRANSITIONS


def document_name(path: str) -> str | InvalidDocumentName:
    """The document a socket joins: its URL path without the leading slash, percent-decoded,
    or why it breaks the rules of collab_server/document_names.py."""
    try:
        return check_document_name(path.lstrip("/"))
    except InvalidDocumentName as exc:
        return exc


class Connection:
    # An idle hub holds thousands: no attribute dict.
    __slots__ = (
        "_direct",
        "_handshake",
        "_hub",
        "_io",
        "_limiter",
        "_max_message",
        "_outbox",
        "_room",
        "_state",
        "_sync",
        "_writing",
        "client_ip",
        "document",
        "peer_id",
        "quota_ip",
    )

    def __init__(self, hub: SocketPorts, scope: Scope, receive: Receive, send: Send) -> None:
        self._hub = hub
        settings = hub.settings
        self.peer_id = f"c{next(_ids)}"
        self.document = ""
        self._state = State.CONNECTING
        self._outbox = Outbox(OutboxLimits.of(settings), merges=hub.metrics.outbox_merges)
        self._limiter = RateLimiter(settings.max_messages_per_second, settings.message_burst)
        self._max_message = settings.max_message_bytes
        self._room: Room | None = None
        self._sync: SyncSteps | None = None  # once authenticated
        # Frames go straight into uvicorn's socket when nothing waits before them (see direct_send).
        self._direct = direct_writer(send)
        self._writing = False  # the writer holds a frame it has not written yet
        self._handshake = Handshake.of(scope, hub.trusted_proxies)
        self._io = SocketRun(self.peer_id, receive, send, hub, self._handshake.client)
        self.client_ip = self._handshake.client_ip
        # Per-address quotas apply only to an address that names one client (not a local proxy).
        self.quota_ip = self._handshake.quota_ip

    def __repr__(self) -> str:
        return f"Connection({self.peer_id}, document={self.document!r})"

    @property
    def state(self) -> State:
        return self._state

    @property
    def principal(self) -> Principal:
        return self._sync.access.principal if self._sync is not None else ANONYMOUS

    def _move(self, to: State) -> None:
        self._state = checked_move(self.peer_id, self._state, to, TRANSITIONS)

    # -- Peer -------------------------------------------------------------------------

    def deliver(self, frame: bytes, update: bytes | None) -> None:
        if self._state is not State.OPEN:
            return
        if self._can_send_directly(frame, ahead_of_presence=True):
            self._direct_write(frame)
            return
        try:
            self._outbox.put_document(frame, update)
        except OutboxOverflow as exc:
            self.request_close(CloseCode.SLOW_CONSUMER, str(exc))
            return
        self._io.start_writer(self._write_loop)

    def deliver_presence(self, frame: bytes) -> None:
        if self._state is not State.OPEN:
            return
        if self._can_send_directly(frame) and self._outbox.spend_presence(len(frame)):
            self._send_presence_directly(self._hub.wire_frames.of(frame))
            return
        try:
            self._outbox.put_presence(frame)
        except OutboxOverflow as exc:
            self.request_close(CloseCode.SLOW_CONSUMER, str(exc))
            return
        self._io.start_writer(self._write_loop)

    def _can_send_directly(self, frame: bytes, *, ahead_of_presence: bool = False) -> bool:
        """Whether ``frame`` may go into the socket now: nothing queued or held goes before
        it (a document frame goes before queued presence anyway), the socket takes it at
        once, and it is not large (those go through the writer's gate)."""
        direct = self._direct
        outbox = self._outbox
        return (
            direct is not None
            and not self._writing
            and not (outbox.has_documents if ahead_of_presence else outbox)
            and len(frame) < self._hub.wire_frames.max_bytes
            and direct.ready()
        )

    def _direct_write(self, frame: bytes) -> None:
        """The relay's one WebSocket framing of ``frame``, shared with every socket it goes to."""
        assert self._direct is not None
        self._direct.write(self._hub.wire_frames.of(frame))

    def _send_presence_directly(self, wire: bytes) -> None:
        """Presence goes with a drain barrier: the next waits until the client has read it."""
        assert self._direct is not None
        self._outbox.hold_presence(_PRESENCE_DRAIN_SECONDS)
        self._direct.write_with_barrier(wire, self._presence_drained)

    def _presence_drained(self) -> None:
        """The client has read the last presence message: the next may go."""
        self._outbox.release_presence()
        if len(self._outbox):
            self._io.start_writer(self._write_loop)

    def _presence_rate(self) -> float:
        """This connection's share of its document's presence bytes per second."""
        room = self._room
        rate = self._hub.settings.awareness_bytes_per_second
        return rate / max(1, len(room.peers)) if room is not None and rate > 0 else 0.0

    # -- lifetime ---------------------------------------------------------------------

    async def serve(self) -> None:
        if not await self._io.accept():
            return
        name = document_name(self._handshake.path)
        self._move(State.OPEN)
        self._hub.metrics.connections.inc()
        try:
            if isinstance(name, InvalidDocumentName):
                await self._close_now(CloseCode.INVALID_DOCUMENT_NAME, str(name))
                return
            self.document = name
            if not await self._authenticate(name):
                return
            await self._join(name)
        finally:
            self._move(State.CLOSED)
            self._outbox.close()
            self._hub.metrics.connections.dec()

    async def _join(self, name: str) -> None:
        hub = self._hub
        try:
            hub.sessions.admit(self)
        except QuotaExceeded as exc:
            hub.access.record("denied", self.principal.subject, name, f"quota: {exc}")
            await self._close_now(CloseCode.RATE_LIMITED, str(exc))
            return
        try:
            room = await hub.rooms.acquire(name, self)
        except (HubStopping, TooManyConnections, DocumentUnavailable) as exc:
            hub.sessions.release(self)
            await self._close_now(*join_refusal(exc))
            return
        role = "read" if self._sync is not None and self._sync.access.read_only else "write"
        hub.access.record("connect", self.principal.subject, name, f"role={role} from={self.client_ip}")
        self._room = room
        self._outbox.pace_presence(room.presence_catch_up.frame, self._presence_rate)
        logger.debug("%s joined %r from %s", self.peer_id, name, self._handshake.client)
        try:
            self.deliver(crdt_core.frame_sync_step1(room.state_vector()), None)
            presence = room.presence_snapshot_frame()
            if presence is not None:
                self.deliver_presence(presence)
            reading = self._io.read(self._max_message, self._is_open, self.request_close, self._handle_frame)
            await self._io.run(reading, started=self._started)
        finally:
            room.leave(self)
            hub.sessions.release(self)
            hub.access.record("disconnect", self.principal.subject, name, self._close_detail())

    async def _authenticate(self, name: str) -> bool:
        """Resolve the token (URL, header, or a first auth message) into this document's access."""
        hub = self._hub
        handshake = self._handshake
        if not OriginPolicy.from_setting(hub.settings.allowed_origins).allows(
            handshake.origin, handshake.host
        ):
            hub.access.record("denied", None, name, f"origin {handshake.origin} not allowed")
            await self._close_now(CloseCode.FORBIDDEN, "origin not allowed")
            return False
        token = handshake.token
        if token is None and hub.access.enabled:
            token = await self._token_from_auth_message()
        try:
            access = access_for_token(
                hub.access, token, name, claimed_actor=handshake.actor, client_ip=self.client_ip
            )
        except AccessRefused as exc:
            await self._close_now(exc.code, exc.reason)
            return False
        self._sync = SyncSteps(self, access, hub.access, Y_WEBSOCKET)
        return True

    async def _token_from_auth_message(self) -> str | None:
        """Clients that cannot put a token in the URL send it first: message 2, sub-type 1, varString."""
        try:
            async with asyncio.timeout(self._hub.settings.auth_timeout_seconds):
                message: Message = await self._io.receive()
        except TimeoutError:
            return None
        data = message.get("bytes")
        if message["type"] != "websocket.receive" or not data or not data.startswith(AUTH_TOKEN_PREFIX):
            return None
        try:
            size, offset = crdt_core.decode_var_uint(data, len(AUTH_TOKEN_PREFIX))
        except ProtocolError:
            return None
        raw = data[offset : offset + size]
        return raw.decode("utf-8", errors="replace") if len(raw) == size else None

    def _started(self, _tasks: asyncio.TaskGroup) -> None:
        if len(self._outbox):  # queued before the socket ran (its first frames)
            self._io.start_writer(self._write_loop)

    def _close_detail(self) -> str:
        request = self._io.close_request
        return f"close={int(request[0])}" if request else "closed by client"

    def _is_open(self) -> bool:
        return self._state is State.OPEN

    def _handle_frame(self, data: bytes) -> Awaitable[None] | None:
        """Handle a received message at once; only answering a sync step 1 (it may await the
        store) hands back something to await."""
        room = self._room
        sync = self._sync
        assert room is not None and sync is not None
        if not self._limiter.allow():
            self.request_close(CloseCode.RATE_LIMITED)
            return None
        try:
            step1 = sync.handle_now(room, crdt_core.parse_message(data))
        except Exception as exc:
            self._handling_failed(exc)
            return None
        return None if step1 is None else self._answer(room, sync, step1)

    async def _answer(self, room: Room, sync: SyncSteps, step1: crdt_core.Message) -> None:
        try:
            await sync.answer(room, step1)
        except Exception as exc:
            self._handling_failed(exc)

    def _handling_failed(self, exc: Exception) -> None:
        code = close_code_for(exc)
        if code is None:  # a hub bug: close this connection only, keep the hub serving
            logger.error(
                "%s on %r: unexpected error handling a message", self.peer_id, self.document, exc_info=exc
            )
            self.request_close(CloseCode.INTERNAL_ERROR)
        else:
            self.request_close(code, str(exc))

    async def _write_loop(self) -> None:
        """Send what the outbox holds; end once it holds nothing (or nothing that may go
        before a paced presence message's turn comes: that is waited for)."""
        send = self._io.send
        outbox = self._outbox
        gate = self._hub.large_frames
        direct = self._direct
        try:
            while True:
                frame = outbox.take_nowait()
                if frame is None:
                    wait = outbox.presence_wait()
                    if wait is None or outbox.closed:
                        return  # idle: the next frame queued starts a new writer
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(wait):
                            await outbox.arrival()
                    continue
                if len(frame) < gate.threshold_bytes and direct is not None and direct.ready():
                    if frame[0] == _AWARENESS_MESSAGE:
                        self._send_presence_directly(websocket_frame(frame))
                    else:
                        direct.write(websocket_frame(frame))
                    continue
                self._writing = True
                try:
                    if len(frame) >= gate.threshold_bytes:
                        await gate.send(frame, self._io.send_bytes)
                    else:
                        await send({"type": "websocket.send", "bytes": frame})
                finally:
                    self._writing = False
        except (OSError, RuntimeError) as exc:  # the peer is gone, or uvicorn already closed it
            logger.debug("%s send failed: %s", self.peer_id, exc)

    def request_close(self, code: CloseCode, detail: str | None = None) -> None:
        """Close this connection (and only it) with a named code; queued frames are dropped."""
        if self.state is not State.OPEN:
            return
        self._move(State.CLOSING)
        self._outbox.abort()
        self._io.close_later(code, detail, f"{self.peer_id} on document {self.document!r}")

    async def _close_now(self, code: CloseCode, detail: str | None = None) -> None:
        self.request_close(code, detail)
        if self._io.close_request is not None:
            await self._io.send_close(*self._io.close_request)
