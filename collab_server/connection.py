"""One WebSocket × one document: a sequential reader and one writer draining a bounded outbox.

The connection speaks raw ASGI (no per-message wrapper objects on the hot path). It is a
small state machine: CONNECTING → OPEN → CLOSING → CLOSED. Every close the hub initiates
carries a named code and reason and is logged with the document and connection ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import itertools
import logging
import time
from typing import NamedTuple
from urllib.parse import parse_qs, unquote

from starlette.types import Message, Receive, Scope, Send

import crdt_core
from awareness.identity import Identity
from awareness.registry import Refusal
from collab_server.auth import ANONYMOUS, InvalidToken, Principal, Role
from collab_server.client_address import client_of
from collab_server.closecodes import CloseCode, reason_for
from collab_server.direct_send import DirectSocket, websocket_frame
from collab_server.document_names import InvalidDocumentName, check_document_name
from collab_server.documents import DocumentUnavailable, HubStopping, TooManyConnections
from collab_server.hub import Hub
from collab_server.metrics import HubMetrics
from collab_server.origins import OriginPolicy
from collab_server.outbox import Outbox, OutboxClosed, OutboxLimits, OutboxOverflow
from collab_server.pending import PendingLimitExceeded
from collab_server.room import DocumentTooLarge, JoinWaitExpired, Room
from collab_server.sessions import QuotaExceeded
from crdt_core import MessageKind, ProtocolError
from persistence.group_commit import BacklogFull, DocumentSetAside

logger = logging.getLogger(__name__)

_CLOSE_SEND_TIMEOUT = 1.0
MAX_ACTOR_CHARS = 128
AUTH_TOKEN_PREFIX = b"\x02\x01"  # Nova's auth sub-type 1: a token (y-protocols defines only 0)


def _bearer(header: str | None) -> str | None:
    if header and header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return None


_ids = itertools.count(1)


class ClosedByHub(Exception):
    """The hub has sent its close frame (or could not in time): the socket stops reading."""


class CloseRequest(NamedTuple):
    code: CloseCode
    detail: str | None = None


def frame_bytes(message: Message, max_bytes: int, metrics: HubMetrics) -> bytes | CloseRequest:
    """A received WebSocket message's bytes, or why the socket must close: the one rule for
    every socket kind (a text frame: 1003; over `max_message_bytes`: 1009)."""
    data: bytes | None = message.get("bytes")
    if data is None:
        return CloseRequest(CloseCode.UNSUPPORTED_DATA)
    metrics.bytes_in.inc(len(data))
    if len(data) > max_bytes:
        return CloseRequest(CloseCode.MESSAGE_TOO_BIG, f"{len(data)} > {max_bytes} bytes")
    return data


class State(enum.Enum):
    CONNECTING = "connecting"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


class IllegalTransition(RuntimeError):
    """A connection was moved to a state it cannot reach from its current one (a hub bug)."""


# The only moves a connection makes; anything else raises IllegalTransition.
TRANSITIONS: dict[State, frozenset[State]] = {
    State.CONNECTING: frozenset({State.OPEN, State.CLOSED}),
    State.OPEN: frozenset({State.CLOSING, State.CLOSED}),
    State.CLOSING: frozenset({State.CLOSED}),
    State.CLOSED: frozenset(),
}


class RateLimiter:
    """Token bucket: ``rate`` messages per second sustained, bursts up to ``burst``."""

    __slots__ = ("_burst", "_rate", "_stamp", "_tokens")

    def __init__(self, rate: float, burst: int) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._stamp = time.monotonic()

    def allow(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


def document_name(scope: Scope) -> str | InvalidDocumentName:
    """The document a socket joins: its URL path without the leading slash, percent-decoded,
    or why it breaks the rules of collab_server/document_names.py."""
    raw = scope.get("raw_path")
    path = unquote(raw.decode("latin-1")) if isinstance(raw, bytes) else str(scope.get("path", ""))
    path = path.split("?", 1)[0]
    root = str(scope.get("root_path", ""))
    if root and path.startswith(root):
        path = path[len(root) :]
    try:
        return check_document_name(path.lstrip("/"))
    except InvalidDocumentName as exc:
        return exc


class Connection:
    def __init__(self, hub: Hub, scope: Scope, receive: Receive, send: Send) -> None:
        self._hub = hub
        self._receive = receive
        self._send = send
        # The scope is not kept (it holds every header): only what is used later is.
        self._path_name = document_name(scope)
        settings = hub.settings
        self.peer_id = f"c{next(_ids)}"
        self.actor: str | None = None
        self.document = ""
        self._state = State.CONNECTING
        self._outbox = Outbox(OutboxLimits(settings.outbox_max_messages, settings.outbox_max_bytes))
        self._limiter = RateLimiter(settings.max_messages_per_second, settings.message_burst)
        self._max_message = settings.max_message_bytes
        self._close_request: tuple[CloseCode, str] | None = None
        self._room: Room | None = None
        self._writer_task: asyncio.Task[None] | None = None
        self._tasks: asyncio.TaskGroup | None = None  # while the socket runs (see _run_until_closed)
        # Frames go straight into uvicorn's socket when nothing waits before them (see direct_send).
        self._direct = DirectSocket.of(send)
        self._writing = False  # the writer holds a frame it has not written yet
        query = parse_qs(bytes(scope.get("query_string", b"")).decode("latin-1"))
        # Without auth, an optional ?actor= names who edits (unverified); with auth, the token's subject.
        actors = query.get("actor")
        if actors:
            self.actor = actors[0][:MAX_ACTOR_CHARS]
        tokens = query.get("token")
        self._query_token = tokens[0] if tokens else None
        # Only the headers used later are kept (an idle connection's memory is multiplied by thousands).
        headers = {
            key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope.get("headers", [])
        }
        self._origin = headers.get("origin")
        self._host = headers.get("host")
        self._authorization = headers.get("authorization")
        self.principal: Principal = ANONYMOUS
        self.read_only = False
        self.refused_writes = 0
        self._identity: Identity | None = None
        self._presence_refusals_told: set[str] | None = None  # made on the first refusal
        address, self._client = client_of(hub.trusted_proxies, scope.get("client"), headers)
        self.client_ip = address.ip
        # Per-address quotas apply only to an address that names one client (not a local proxy).
        self.quota_ip: str | None = address.ip if address.attributable else None

    def __repr__(self) -> str:
        return f"Connection({self.peer_id}, document={self.document!r})"

    @property
    def state(self) -> State:
        return self._state

    def _move(self, to: State) -> None:
        if to not in TRANSITIONS[self._state]:
            raise IllegalTransition(f"{self.peer_id}: {self._state.value} -> {to.value}")
        self._state = to

    # -- Peer -------------------------------------------------------------------------

    def deliver(self, frame: bytes, update: bytes | None) -> None:
        if self._state is not State.OPEN:
            return
        if self._can_send_directly(frame):
            self._direct_write(frame)
            return
        merges = self._outbox.merges
        try:
            self._outbox.put_document(frame, update)
        except OutboxOverflow as exc:
            self.request_close(CloseCode.SLOW_CONSUMER, str(exc))
        self._start_writer()
        if self._outbox.merges != merges:
            self._hub.metrics.outbox_merges.inc(self._outbox.merges - merges)

    def deliver_presence(self, frame: bytes) -> None:
        if self._state is not State.OPEN:
            return
        if self._can_send_directly(frame) and self._outbox.spend_presence(len(frame)):
            self._direct_write(frame)
            return
        try:
            self._outbox.put_presence(frame)
        except OutboxOverflow as exc:
            self.request_close(CloseCode.SLOW_CONSUMER, str(exc))
        self._start_writer()

    def _start_writer(self) -> None:
        """A writer task runs only while the outbox has frames (most frames go as direct
        sends): an idle socket keeps no writer task, coroutine or future."""
        if self._writer_task is None and self._tasks is not None and self._state is State.OPEN:
            self._writer_task = self._tasks.create_task(self._write_loop(), name=f"write:{self.peer_id}")

    def _can_send_directly(self, frame: bytes) -> bool:
        """Whether ``frame`` may go into the socket now: nothing queued or held goes before
        it, the socket takes it at once, and it is not large (those go through the gate)."""
        direct = self._direct
        return (
            direct is not None
            and not self._writing
            and not self._outbox
            and len(frame) < self._hub.wire_frames.max_bytes
            and direct.ready()
        )

    def _direct_write(self, frame: bytes) -> None:
        """The relay's one WebSocket framing of ``frame``, shared with every socket it goes to."""
        assert self._direct is not None
        self._direct.write(self._hub.wire_frames.of(frame))

    def _presence_rate(self) -> float:
        """This connection's share of its document's presence bytes per second."""
        room = self._room
        rate = self._hub.settings.awareness_bytes_per_second
        return rate / max(1, len(room.peers)) if room is not None and rate > 0 else 0.0

    # -- lifetime ---------------------------------------------------------------------

    async def serve(self) -> None:
        first = await self._receive()
        if first["type"] != "websocket.connect":
            return
        name = self._path_name
        await self._send({"type": "websocket.accept"})
        self._move(State.OPEN)
        self._hub.metrics.connections.inc()
        try:
            if isinstance(name, InvalidDocumentName):
                await self._close_now(CloseCode.INVALID_DOCUMENT_NAME, str(name))
                return
            self.document = name
            if not await self._authenticate(name):
                return
            sessions = self._hub.sessions
            try:
                sessions.admit(self)
            except QuotaExceeded as exc:
                self._hub.audit.record("denied", self.principal.subject, name, f"quota: {exc}")
                await self._close_now(CloseCode.RATE_LIMITED, str(exc))
                return
            try:
                room = await self._hub.documents.acquire(name, self)
            except HubStopping:
                sessions.release(self)
                await self._close_now(CloseCode.SERVICE_RESTART)
                return
            except TooManyConnections:
                sessions.release(self)
                await self._close_now(CloseCode.TOO_MANY_CONNECTIONS)
                return
            except DocumentUnavailable as exc:
                sessions.release(self)
                await self._close_now(exc.close_code, str(exc))  # 4410 when deleted
                return
            role = "read" if self.read_only else "write"
            self._hub.audit.record(
                "connect", self.principal.subject, name, f"role={role} from={self.client_ip}"
            )
            self._room = room
            self._outbox.pace_presence(room.presence_catch_up.frame, self._presence_rate)
            logger.debug("%s joined %r from %s", self.peer_id, name, self._client)
            try:
                self.deliver(crdt_core.frame_sync_step1(room.state_vector()), None)
                presence = room.presence_snapshot_frame()
                if presence is not None:
                    self.deliver_presence(presence)
                await self._run_until_closed()
            finally:
                room.leave(self)
                sessions.release(self)
                self._hub.audit.record("disconnect", self.principal.subject, name, self._close_detail())
        finally:
            self._move(State.CLOSED)
            self._outbox.close()
            self._hub.metrics.connections.dec()

    async def _authenticate(self, name: str) -> bool:
        """Resolve the token (URL, header, or a first auth message) into a principal and role."""
        hub = self._hub
        origin = self._origin
        if not OriginPolicy.from_setting(hub.settings.allowed_origins).allows(origin, self._host):
            hub.audit.record("denied", None, name, f"origin {origin} not allowed")
            await self._close_now(CloseCode.FORBIDDEN, "origin not allowed")
            return False
        token = self._query_token or _bearer(self._authorization)
        if token is None and hub.auth.enabled:
            token = await self._token_from_auth_message()
        try:
            self.principal = hub.auth.verify(token)
        except InvalidToken as exc:
            hub.audit.record("denied", None, name, f"{exc} from={self.client_ip}")
            code = (
                CloseCode.TOKEN_EXPIRED
                if "expired" in str(exc) or "revoked" in str(exc)
                else CloseCode.UNAUTHORIZED
            )
            await self._close_now(code, str(exc))
            return False
        role = self.principal.role_for(name)
        if role is None:
            hub.audit.record("denied", self.principal.subject, name, "no grant for this document")
            await self._close_now(CloseCode.FORBIDDEN, "no access to this document")
            return False
        self.read_only = role < Role.WRITE
        if hub.auth.enabled:
            self.actor = self.principal.subject
            # What this connection shows in presence comes from its token, not from the client.
            self._identity = Identity.of_subject(self.principal.subject, self.principal.kind)
        return True

    async def _token_from_auth_message(self) -> str | None:
        """Clients that cannot put a token in the URL send it first: message 2, sub-type 1, varString."""
        try:
            async with asyncio.timeout(self._hub.settings.auth_timeout_seconds):
                message: Message = await self._receive()
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

    def _close_detail(self) -> str:
        return f"close={int(self._close_request[0])}" if self._close_request else "closed by client"

    async def _read_loop(self) -> None:
        while True:
            message: Message = await self._receive()
            kind = message["type"]
            if kind == "websocket.disconnect":
                return
            if self.state is not State.OPEN:
                continue  # closing: drain until the disconnect arrives
            data = frame_bytes(message, self._max_message, self._hub.metrics)
            if isinstance(data, CloseRequest):
                self.request_close(*data)
                continue
            if not self._limiter.allow():
                self.request_close(CloseCode.RATE_LIMITED)
                continue
            try:
                await self._handle(crdt_core.parse_message(data))
            except ProtocolError as exc:
                self.request_close(CloseCode.INVALID_PAYLOAD, str(exc))
            except DocumentSetAside as exc:
                self.request_close(CloseCode.DOCUMENT_SET_ASIDE, str(exc))
            except (BacklogFull, JoinWaitExpired) as exc:
                self.request_close(CloseCode.TRY_AGAIN_LATER, str(exc))
            except DocumentTooLarge as exc:
                self.request_close(CloseCode.DOCUMENT_TOO_LARGE, str(exc))
            except PendingLimitExceeded as exc:
                self.request_close(CloseCode.DEPENDENCIES_MISSING, str(exc))
            except Exception:  # a hub bug: close this connection only, keep the hub serving
                logger.exception("%s on %r: unexpected error handling a message", self.peer_id, self.document)
                self.request_close(CloseCode.INTERNAL_ERROR)

    async def _handle(self, message: crdt_core.Message) -> None:
        room = self._room
        assert room is not None
        kind = message.kind
        if kind is MessageKind.SYNC_UPDATE or kind is MessageKind.SYNC_STEP2:
            if self.read_only:
                self._refuse_write()
                return
            room.apply_update(message.payload, self, self.actor)
        elif kind is MessageKind.AWARENESS:
            refused = room.apply_presence(message.payload, self, self._identity)
            if refused:
                self._refuse_presence(refused)
        elif kind is MessageKind.SYNC_STEP1:
            frame = await room.sync_step2_for(message.payload)
            self.deliver(frame, None)
        elif kind is MessageKind.QUERY_AWARENESS:
            presence = room.presence_snapshot_frame()
            if presence is not None:
                self.deliver_presence(presence)
        else:  # AUTH: only the hub sends these; a client's is ignored.
            logger.debug("%s on %r sent an auth message; ignored", self.peer_id, self.document)

    def _refuse_presence(self, refused: list[Refusal]) -> None:
        """Refused presence entries are not stored or sent; the client is told once per reason."""
        if self._presence_refusals_told is None:
            self._presence_refusals_told = set()
        told = self._presence_refusals_told
        for refusal in refused:
            if refusal.reason in told or len(told) >= 8:
                continue
            told.add(refusal.reason)
            logger.info(
                "%s on %r: presence of client %d refused: %s",
                self.peer_id,
                self.document,
                refusal.client_id,
                refusal.reason,
            )
            self.deliver(crdt_core.frame_auth_denied(f"presence refused: {refusal.reason}"), None)

    def _refuse_write(self) -> None:
        """A viewer's write is dropped; it is told once (y-protocols permission denied), not closed."""
        self.refused_writes += 1
        if self.refused_writes == 1:
            self.deliver(crdt_core.frame_auth_denied("read-only: this token may not edit the document"), None)
            self._hub.audit.record(
                "denied", self.principal.subject, self.document, "write with a read-only role"
            )

    async def _run_until_closed(self) -> None:
        """Read until either side ends the socket; frames leave through one writer task.

        The reader runs in the socket's own task (no task of its own), and the writer only
        while frames wait (see _start_writer): an idle socket costs that one task. When the
        hub asks for a close, a closer task stops the writer, sends the close frame (a bounded
        wait: a stuck peer never drains its socket) and ends the reading by raising
        ClosedByHub, which cancels the read loop.
        """
        try:
            async with asyncio.TaskGroup() as tasks:
                self._tasks = tasks
                self._start_writer()  # the joiner's first frames are queued already
                try:
                    await self._read_loop()
                finally:
                    self._tasks = None
                    if self._writer_task is not None:
                        self._writer_task.cancel()
        except* ClosedByHub:
            pass

    async def _send_requested_close(self, code: CloseCode, reason: str) -> None:
        writer = self._writer_task
        if writer is not None and not writer.done():
            writer.cancel()  # it may be blocked on a full socket; the close must not wait behind it
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_CLOSE_SEND_TIMEOUT):
                await self._send_close(code, reason)
        raise ClosedByHub

    async def _send_bytes(self, frame: bytes) -> None:
        await self._send({"type": "websocket.send", "bytes": frame})

    async def _write_loop(self) -> None:
        send = self._send
        outbox = self._outbox
        gate = self._hub.large_frames
        direct = self._direct
        try:
            # Until nothing is queued or owed (paced presence waiting for its turn counts).
            while outbox:
                frame = await outbox.take()
                if len(frame) < gate.threshold_bytes and direct is not None and direct.ready():
                    direct.write(websocket_frame(frame))
                    continue
                self._writing = True
                try:
                    if len(frame) >= gate.threshold_bytes:
                        await gate.send(frame, self._send_bytes)
                    else:
                        await send({"type": "websocket.send", "bytes": frame})
                finally:
                    self._writing = False
        except OutboxClosed:
            pass
        except (OSError, RuntimeError) as exc:  # the peer is gone, or uvicorn already closed it
            logger.debug("%s send failed: %s", self.peer_id, exc)
        finally:
            if self._writer_task is asyncio.current_task():
                self._writer_task = None  # the next queued frame starts a new writer

    def request_close(self, code: CloseCode, detail: str | None = None) -> None:
        """Close this connection (and only it) with a named code; queued frames are dropped."""
        if self.state is not State.OPEN:
            return
        self._move(State.CLOSING)
        reason = reason_for(code, detail)
        self._close_request = (code, reason)
        self._hub.metrics.closes.labels(code=str(int(code))).inc()
        level = logging.INFO if code in (CloseCode.NORMAL, CloseCode.SERVICE_RESTART) else logging.WARNING
        logger.log(
            level,
            "closing %s on document %r (node %s, client %s): %d %s",
            self.peer_id,
            self.document,
            self._hub.node_id,
            self._client,
            code,
            reason,
        )
        self._outbox.abort()
        if self._tasks is not None:
            # Running: a closer task sends the close (after the writer); else _close_now does.
            self._tasks.create_task(self._send_requested_close(code, reason), name=f"close:{self.peer_id}")

    async def _close_now(self, code: CloseCode, detail: str | None = None) -> None:
        self.request_close(code, detail)
        if self._close_request is not None:
            await self._send_close(*self._close_request)

    async def _send_close(self, code: CloseCode, reason: str) -> None:
        try:
            await self._send({"type": "websocket.close", "code": int(code), "reason": reason})
        except (OSError, RuntimeError) as exc:
            logger.debug("%s close failed: %s", self.peer_id, exc)
