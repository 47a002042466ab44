"""The hub's WebSocket protocol: uvicorn's sans-I/O implementation with a small idle footprint.

An idle socket's memory is multiplied by every connection a hub holds. uvicorn's
``websockets-sansio`` protocol (RFC 6455 framing, handshake, close handshake, keepalive
pings, flow control: all kept as they are) carries per socket an ``asyncio.Queue`` and an
``asyncio.Event`` (five ~600-byte deques between them), the parsed handshake request and
response, and the scope with every header, for the socket's whole life. This subclass swaps
the queue and the event for single-waiter equivalents that allocate only while someone
waits, and lets go of the handshake objects once the handshake is answered: about 6 KB less
per idle socket (``load_tests/bench_idle_memory.py`` prints where the bytes go).

A large binary message (a big document's state for a joiner) is sent as fragments of
``FRAGMENT_BYTES``, each written straight from the one shared encoding once the socket has
drained the previous one: a crowd joining a 20 MB document holds no copy of it per socket
(uvicorn would frame it into a new 20 MB buffer, then copy what the kernel has not taken),
and a keepalive ping or a close may go between fragments as RFC 6455 allows.

Chosen with ``--ws-implementation lean`` (the default) when ``--ws-per-message-deflate`` is on
(the hub's own protocol, ``native_socket.py``, offers no compression); uvicorn is pinned
(pyproject), and ``tests/test_ws_protocol.py`` drives this class through the real server.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, cast

from uvicorn._types import WebSocketScope
from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State

FRAGMENT_BYTES = 256 * 1024
_BINARY, _CONTINUATION = 0x2, 0x0


def fragment_header(opcode: int, final: bool, length: int) -> bytes:
    """A server frame's header (RFC 6455 5.2; servers do not mask)."""
    first = (0x80 if final else 0) | opcode
    if length < 126:
        return bytes((first, length))
    if length < 1 << 16:
        return bytes((first, 126)) + length.to_bytes(2, "big")
    return bytes((first, 127)) + length.to_bytes(8, "big")


class ReceiveQueue:
    """What uvicorn's protocol needs of its receive queue (``put_nowait``, ``empty``) for its
    one consumer, the ASGI app's ``receive``: items in a list made for the first one, a
    future only while the app waits."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: deque[Any] | None = None
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: Any) -> None:
        if self._items is None:
            self._items = deque()
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items) if self._items else 0

    def pop(self) -> Any:
        """The oldest item; ``NOTHING`` when empty."""
        items = self._items
        if not items:
            return NOTHING
        item = items.popleft()
        if not items:
            self._items = None  # an idle socket keeps no deque
        return item

    def arrival(self) -> asyncio.Future[None]:
        """A future done when an item arrives (awaited directly: no coroutine frame of its own)."""
        if self._waiter is not None and not self._waiter.done():
            raise RuntimeError("ReceiveQueue has one consumer; another is already waiting")
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiter = waiter
        return waiter


NOTHING: Any = object()


class WritableFlag:
    """What uvicorn's protocol needs of its ``writable`` event (``set``, ``clear``, ``wait``,
    ``is_set``): a flag, and futures only while senders wait for the socket to drain."""

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = True
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> None:
        if self._set:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if self._waiters is not None and waiter in self._waiters:
                self._waiters.remove(waiter)


# uvicorn reads the scope after the handshake only to name the client in log lines of
# refused handshakes; a socket past its handshake keeps this shared stand-in instead.
_AFTER_HANDSHAKE_SCOPE = cast(
    WebSocketScope, {"type": "websocket", "client": None, "path": "", "query_string": b""}
)


class LeanWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol, minus what an idle socket need not hold."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Duck-typed stand-ins: uvicorn calls only the methods these classes have.
        self.queue = self._received = ReceiveQueue()  # type: ignore[assignment]
        self.writable = WritableFlag()  # type: ignore[assignment]
        # What is left of a large message being sent in fragments (a view of the caller's bytes).
        self._unsent: memoryview | None = None
        self._unsent_started = False

    async def receive(self) -> Any:
        """uvicorn's ``receive`` (reading resumes once the app has taken every message), in one
        frame: the app's read loop waits on a bare future."""
        received = self._received
        message = received.pop()
        while message is NOTHING:
            await received.arrival()
            message = received.pop()
        if self.read_paused and received.empty():
            self.read_paused = False
            self.transport.resume_reading()
        return message

    async def send(self, message: Any) -> None:
        if self._unsent is not None:
            if message["type"] == "websocket.close":
                self._unsent = None  # a close may go between fragments; the message ends there
            else:
                # A send cancelled between fragments: a message is finished before the next one.
                await self._send_fragments()
        data = message.get("bytes") if message["type"] == "websocket.send" else None
        if data is not None and len(data) > FRAGMENT_BYTES and self._may_fragment():
            self._unsent = memoryview(data)
            self._unsent_started = False
            await self._send_fragments()
            return
        await super().send(message)
        if self.handshake_complete and self.scope is not _AFTER_HANDSHAKE_SCOPE:
            # The handshake is answered (accepted or refused): its request and response
            # (every header, parsed twice) and the scope are not read again.
            self.__dict__.pop("request", None)
            self.__dict__.pop("response", None)
            self.scope = _AFTER_HANDSHAKE_SCOPE

    def keepalive_timeout(self) -> None:
        """No pong in time. uvicorn stops reading while the app has a message it has not taken
        yet (a client's 4 MB update being applied): then the pong may sit unread in the socket,
        and the peer is not dead, the hub is busy. Read on and allow another timeout; a
        message read meanwhile pauses reading again, so at most one more read is queued."""
        timeout = self.ping_timeout
        if timeout and self.read_paused and not self.close_sent and not self.transport.is_closing():
            self.read_paused = False
            self.transport.resume_reading()
            self.pong_timer = self.loop.call_later(timeout, self.keepalive_timeout)
            return
        super().keepalive_timeout()

    @property
    def sending_fragments(self) -> bool:
        """A large message is part sent: no other data frame may be written until it ends."""
        return self._unsent is not None

    def _may_fragment(self) -> bool:
        """Open, past the handshake, and no extension that would rewrite frames (deflate)."""
        conn = self.conn
        return (
            self.handshake_complete
            and not self.close_sent
            and not self.disconnected
            and self.initial_response is None
            and conn.state is State.OPEN
            and not conn.extensions
        )

    async def _send_fragments(self) -> None:
        """Write the unsent message fragment by fragment, each once the socket has drained."""
        transport = self.transport
        while (unsent := self._unsent) is not None:
            await self.writable.wait()
            if self.disconnected:
                self._unsent = None
                raise ClientDisconnected()
            if self.close_sent:  # a close went out between fragments: the message ends there
                self._unsent = None
                return
            final = len(unsent) <= FRAGMENT_BYTES
            chunk = unsent if final else unsent[:FRAGMENT_BYTES]
            opcode = _CONTINUATION if self._unsent_started else _BINARY
            # Header and payload in one loop turn: nothing else is written between them.
            transport.write(fragment_header(opcode, final, len(chunk)))
            transport.write(chunk)  # asyncio copies only what the kernel does not take at once
            self._unsent_started = True
            self._unsent = None if final else unsent[FRAGMENT_BYTES:]
