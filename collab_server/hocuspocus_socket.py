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
import itertools
import logging
from collections import deque

from starlette.types import Receive, Scope, Send

from collab_server import hocuspocus_protocol as hp
from collab_server.closecodes import CloseCode
from collab_server.document_names import is_valid_document_name
from collab_server.hocuspocus_channel import DocumentChannel
from collab_server.origins import OriginPolicy
from collab_server.ports import SocketPorts
from collab_server.websocket import (
    SOCKET_TRANSITIONS,
    Handshake,
    SocketRun,
    SocketState,
    announce_close,
    checked_move,
    socket_path,
)
from crdt_core import ProtocolError

logger = logging.getLogger(__name__)

_ids = itertools.count(1)


def is_hocuspocus(scope: Scope) -> bool:
    """A socket opened on the root path (no document in it) speaks Hocuspocus."""
    return socket_path(scope).strip("/") == ""


class HocuspocusSocket:
    def __init__(self, hub: SocketPorts, scope: Scope, receive: Receive, send: Send) -> None:
        self._hub = hub
        self.socket_id = f"h{next(_ids)}"
        self._state = SocketState.CONNECTING
        self._channels: dict[str, DocumentChannel] = {}
        self._ready: deque[DocumentChannel] = deque()
        self._control: deque[bytes] = deque()
        self._wake = asyncio.Event()
        self._tasks: asyncio.TaskGroup | None = None
        self._max_message = hub.settings.max_message_bytes
        self._max_documents = hub.settings.max_documents_per_socket
        self._handshake = handshake = Handshake.of(scope, hub.trusted_proxies)
        self._io = SocketRun(self.socket_id, receive, send, hub, handshake.client)
        # Without auth, an optional ?actor= names who edits (unverified); with auth, each token's subject.
        self.actor = handshake.actor
        # Used for documents whose auth message carries an empty token (a provider without `token`).
        self.default_token = handshake.token
        self.client_ip = handshake.client_ip
        self.quota_ip = handshake.quota_ip

    def __repr__(self) -> str:
        return f"HocuspocusSocket({self.socket_id}, documents={len(self._channels)})"

    @property
    def state(self) -> SocketState:
        return self._state

    def _move(self, to: SocketState) -> None:
        self._state = checked_move(self.socket_id, self._state, to, SOCKET_TRANSITIONS)

    # -- SocketPort (for the channels) ---------------------------------------------------

    def schedule(self, channel: DocumentChannel) -> None:
        if not channel.scheduled:
            channel.scheduled = True
            self._ready.append(channel)
            self._wake.set()

    def send_control(self, frame: bytes) -> None:
        if self._state is SocketState.OPEN:
            self._control.append(frame)
            self._wake.set()

    def channel_closed(self, channel: DocumentChannel) -> None:
        if self._channels.get(channel.key) is channel:
            del self._channels[channel.key]

    def close_socket(self, code: CloseCode, detail: str | None = None) -> None:
        """Close the whole socket (every document on it) with a named code."""
        if self._state is not SocketState.OPEN:
            return
        self._move(SocketState.CLOSING)
        for channel in list(self._channels.values()):
            channel.outbox.abort()
        self._io.close_later(
            code, detail, f"hocuspocus socket {self.socket_id} with {len(self._channels)} documents"
        )

    # -- lifetime ------------------------------------------------------------------------

    async def serve(self) -> None:
        if not await self._io.accept():
            return
        self._move(SocketState.OPEN)
        self._hub.metrics.connections.inc()
        try:
            handshake = self._handshake
            if not OriginPolicy.from_setting(self._hub.settings.allowed_origins).allows(
                handshake.origin, handshake.host
            ):
                self._hub.access.record("denied", None, "", f"origin {handshake.origin} not allowed")
                self.close_socket(CloseCode.FORBIDDEN, "origin not allowed")
                assert self._io.close_request is not None
                await self._io.send_close(*self._io.close_request)
                return
            await self._io.run(
                self._read_loop(), self._write_loop(), started=self._started, ending=self._ending
            )
        finally:
            self._move(SocketState.CLOSED)
            self._hub.metrics.connections.dec()

    def _started(self, tasks: asyncio.TaskGroup) -> None:
        self._tasks = tasks

    def _ending(self) -> None:
        # Each channel leaves its room (presence removed for everyone at once) as it ends.
        for channel in list(self._channels.values()):
            if channel.task is not None:
                channel.task.cancel()

    def _is_open(self) -> bool:
        return self._state is SocketState.OPEN

    async def _read_loop(self) -> None:
        await self._io.read(self._max_message, self._is_open, self.close_socket, self._route)

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
        what = f"document {name!r} before opening it on hocuspocus socket {self.socket_id}"
        reason = announce_close(
            self._hub.metrics, code, detail, what, node_id=self._hub.node_id, client=self._handshake.client
        )
        self.send_control(hp.close(name, int(code), reason))

    async def _write_loop(self) -> None:
        send = self._io.send
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
