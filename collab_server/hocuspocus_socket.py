"""One Hocuspocus WebSocket: many documents multiplexed, one reader, one writer.

Selected by the socket's path: ``ws://HOST:PORT/`` (no document in the path) speaks the
Hocuspocus protocol, where every message names its document; ``ws://HOST:PORT/<document>``
stays y-websocket. The reader routes each envelope to its document's channel (created on
the first message for that document, which then waits for the auth message); the writer
drains the channels' bounded outboxes round-robin and adds each frame's envelope.

Bad input is answered where it belongs: a message whose document name cannot even be read,
an oversized message or a text frame closes the socket (1007 / 1009 / 1003); anything wrong
inside one document's messages closes only that document (see ``hocuspocus_channel``).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import itertools
import logging
from collections import deque
from urllib.parse import parse_qs, unquote

from starlette.types import Receive, Scope, Send

from collab_server import hocuspocus_protocol as hp
from collab_server.client_address import client_of
from collab_server.closecodes import CloseCode, reason_for
from collab_server.connection import MAX_ACTOR_CHARS, CloseRequest, frame_bytes
from collab_server.document_names import is_valid_document_name
from collab_server.hocuspocus_channel import DocumentChannel
from collab_server.hub import Hub
from collab_server.origins import OriginPolicy
from crdt_core import ProtocolError

logger = logging.getLogger(__name__)

_CLOSE_SEND_TIMEOUT = 1.0
_ids = itertools.count(1)


def is_hocuspocus(scope: Scope) -> bool:
    """A socket opened on the root path (no document in it) speaks Hocuspocus."""
    raw = scope.get("raw_path")
    path = unquote(raw.decode("latin-1")) if isinstance(raw, bytes) else str(scope.get("path", ""))
    path = path.split("?", 1)[0]
    root = str(scope.get("root_path", ""))
    if root and path.startswith(root):
        path = path[len(root) :]
    return path.strip("/") == ""


class SocketState(enum.Enum):
    CONNECTING = "connecting"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


class HocuspocusSocket:
    def __init__(self, hub: Hub, scope: Scope, receive: Receive, send: Send) -> None:
        self._hub = hub
        self._receive = receive
        self._send = send
        self.socket_id = f"h{next(_ids)}"
        self.state = SocketState.CONNECTING
        self._channels: dict[str, DocumentChannel] = {}
        self._ready: deque[DocumentChannel] = deque()
        self._control: deque[bytes] = deque()
        self._wake = asyncio.Event()
        self._close_request: tuple[CloseCode, str] | None = None
        self._writer_task: asyncio.Task[None] | None = None
        self._tasks: asyncio.TaskGroup | None = None
        self._max_message = hub.settings.max_message_bytes
        self._max_documents = hub.settings.max_documents_per_socket
        query = parse_qs(bytes(scope.get("query_string", b"")).decode("latin-1"))
        actors = query.get("actor")
        # Without auth, an optional ?actor= names who edits (unverified); with auth, each token's subject.
        self.actor: str | None = actors[0][:MAX_ACTOR_CHARS] if actors else None
        tokens = query.get("token")
        # Used for documents whose auth message carries an empty token (a provider without `token`).
        self.default_token: str | None = tokens[0] if tokens else None
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        self._origin = headers.get("origin")
        self._host = headers.get("host")
        address, self._client = client_of(hub.trusted_proxies, scope.get("client"), headers)
        self.client_ip = address.ip
        self.quota_ip: str | None = address.ip if address.attributable else None

    def __repr__(self) -> str:
        return f"HocuspocusSocket({self.socket_id}, documents={len(self._channels)})"

    # -- SocketPort (for the channels) ---------------------------------------------------

    def schedule(self, channel: DocumentChannel) -> None:
        if not channel.scheduled:
            channel.scheduled = True
            self._ready.append(channel)
            self._wake.set()

    def send_control(self, frame: bytes) -> None:
        if self.state is SocketState.OPEN:
            self._control.append(frame)
            self._wake.set()

    def channel_closed(self, channel: DocumentChannel) -> None:
        if self._channels.get(channel.key) is channel:
            del self._channels[channel.key]

    def close_socket(self, code: CloseCode, detail: str | None = None) -> None:
        """Close the whole socket (every document on it) with a named code."""
        if self.state is not SocketState.OPEN:
            return
        self.state = SocketState.CLOSING
        reason = reason_for(code, detail)
        self._close_request = (code, reason)
        self._hub.metrics.closes.labels(code=str(int(code))).inc()
        level = logging.INFO if code in (CloseCode.NORMAL, CloseCode.SERVICE_RESTART) else logging.WARNING
        logger.log(
            level,
            "closing hocuspocus socket %s with %d documents (node %s, client %s): %d %s",
            self.socket_id,
            len(self._channels),
            self._hub.node_id,
            self._client,
            code,
            reason,
        )
        for channel in list(self._channels.values()):
            channel.outbox.abort()
        if self._writer_task is not None:
            self._writer_task.cancel()  # it may be blocked on a full socket

    # -- lifetime ------------------------------------------------------------------------

    async def serve(self) -> None:
        first = await self._receive()
        if first["type"] != "websocket.connect":
            return
        await self._send({"type": "websocket.accept"})
        self.state = SocketState.OPEN
        self._hub.metrics.connections.inc()
        try:
            if not self._origin_allowed():
                self._hub.audit.record("denied", None, "", f"origin {self._origin} not allowed")
                self.close_socket(CloseCode.FORBIDDEN, "origin not allowed")
                await self._send_close(*self._require_close())
                return
            await self._run_until_closed()
        finally:
            self.state = SocketState.CLOSED
            self._hub.metrics.connections.dec()

    def _origin_allowed(self) -> bool:
        return OriginPolicy.from_setting(self._hub.settings.allowed_origins).allows(self._origin, self._host)

    def _require_close(self) -> tuple[CloseCode, str]:
        assert self._close_request is not None
        return self._close_request

    async def _run_until_closed(self) -> None:
        async with asyncio.TaskGroup() as tasks:
            self._tasks = tasks
            reader = tasks.create_task(self._read_loop(), name=f"read:{self.socket_id}")
            self._writer_task = tasks.create_task(self._write_loop(), name=f"write:{self.socket_id}")
            await asyncio.wait((reader, self._writer_task), return_when=asyncio.FIRST_COMPLETED)
            self._writer_task.cancel()
            request = self._close_request
            if request is not None and not reader.done():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(_CLOSE_SEND_TIMEOUT):
                        await self._send_close(*request)
            reader.cancel()
            # Each channel leaves its room (presence removed for everyone at once) as it ends.
            for channel in list(self._channels.values()):
                if channel.task is not None:
                    channel.task.cancel()

    async def _read_loop(self) -> None:
        while True:
            message = await self._receive()
            if message["type"] == "websocket.disconnect":
                return
            if self.state is not SocketState.OPEN:
                continue  # closing: drain until the disconnect arrives
            data = frame_bytes(message, self._max_message, self._hub.metrics)
            if isinstance(data, CloseRequest):
                self.close_socket(*data)
                continue
            self._route(data)

    def _route(self, data: bytes) -> None:
        if data == hp.PONG:
            return
        if data == hp.PING:
            self.send_control(hp.PONG)
            return
        try:
            envelope = hp.parse_envelope(data)
        except ProtocolError as exc:
            try:
                name, _ = hp.parse_document_name(data)
            except ProtocolError:
                self.close_socket(CloseCode.INVALID_PAYLOAD, f"unreadable envelope: {exc}")
                return
            self._close_document(name, CloseCode.INVALID_PAYLOAD, str(exc))
            return
        name = envelope.document  # the routing key: the document, and a session with provider 4.x
        document, _session = hp.split_routing_key(name)
        if not is_valid_document_name(document):
            self._close_document(
                name, CloseCode.INVALID_DOCUMENT_NAME, "empty, too long or control characters"
            )
            return
        channel = self._channels.get(name)
        if channel is None:
            if envelope.type == hp.MessageType.CLOSE:
                return  # nothing open for it
            if len(self._channels) >= self._max_documents:
                detail = f"more than {self._max_documents} documents on one socket"
                self._close_document(name, CloseCode.RATE_LIMITED, detail)
                return
            channel = DocumentChannel(self._hub, self, name, document, f"{self.socket_id}/{next(_ids)}")
            self._channels[name] = channel
            assert self._tasks is not None
            channel.task = self._tasks.create_task(channel.run(), name=f"hocuspocus:{self.socket_id}:{name}")
        channel.receive(envelope)

    def _close_document(self, name: str, code: CloseCode, detail: str) -> None:
        channel = self._channels.get(name)
        if channel is not None:
            channel.request_close(code, detail)
            return
        reason = reason_for(code, detail)
        self._hub.metrics.closes.labels(code=str(int(code))).inc()
        logger.warning(
            "refusing document %r on hocuspocus socket %s: %d %s", name, self.socket_id, code, reason
        )
        self.send_control(hp.close(name, int(code), reason))

    async def _write_loop(self) -> None:
        send = self._send
        try:
            while True:
                if self._control:
                    frame = self._control.popleft()
                elif self._ready:
                    channel = self._ready.popleft()
                    body = channel.outbox.take_nowait()
                    if body is None:
                        channel.scheduled = False
                        continue
                    frame = channel.prefix + body
                    if len(channel.outbox):
                        self._ready.append(channel)  # round-robin: one frame per document per turn
                    else:
                        channel.scheduled = False
                else:
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                await send({"type": "websocket.send", "bytes": frame})
        except (OSError, RuntimeError) as exc:  # the peer is gone, or uvicorn already closed it
            logger.debug("%s send failed: %s", self.socket_id, exc)

    async def _send_close(self, code: CloseCode, reason: str) -> None:
        try:
            await self._send({"type": "websocket.close", "code": int(code), "reason": reason})
        except (OSError, RuntimeError) as exc:
            logger.debug("%s close failed: %s", self.socket_id, exc)
