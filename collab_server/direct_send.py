"""Direct sends: one WebSocket framing per relayed message, written straight into each socket.

A relayed update goes to every peer of a room as the same bytes: server frames are not
masked, so the whole WebSocket frame (header and payload) is identical for every socket.
Through ASGI each socket would frame it again (uvicorn builds a frame object, serializes
and joins it: the largest per-socket cost of a fan-out). ``WireFrames`` frames a message
once for all its receivers, and ``DirectSocket`` writes those bytes into the socket's
transport, in order with everything uvicorn writes itself, whenever uvicorn could have
sent at once: the socket open, no close sent, its buffer below the high-water mark and
no compression negotiated. Anything else goes through the ASGI send as before.

A message may also be written with a drain barrier: a ping right behind it, whose pong
comes back once the client has read everything before it (WebSocket peers answer pings in
order, browsers and ws alike). A connection uses it to keep at most one presence message
on its way to a client: presence then never piles up in socket buffers ahead of the
document updates that follow it.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Callable
from typing import Any, Protocol

from starlette.types import Send
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State

_BINARY_FIN = 0x82  # FIN bit and the binary opcode; server frames carry no mask
_PING_FIN = 0x89
_barrier_ids = itertools.count(1)


def websocket_frame(payload: bytes) -> bytes:
    """The unmasked, unfragmented binary WebSocket frame (RFC 6455 5.2) of ``payload``."""
    size = len(payload)
    if size < 126:
        return bytes((_BINARY_FIN, size)) + payload
    if size < 1 << 16:
        return struct.pack("!BBH", _BINARY_FIN, 126, size) + payload
    return struct.pack("!BBQ", _BINARY_FIN, 127, size) + payload


class WireFrames:
    """The WebSocket frame of the message being fanned out, made once for all its receivers.

    A room delivers one message to every peer in one loop, so remembering the last message
    (by identity) serves all of them; it holds at most one frame of at most ``max_bytes``.
    """

    __slots__ = ("_message", "_wire", "max_bytes")

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._message: bytes | None = None
        self._wire = b""

    def of(self, message: bytes) -> bytes:
        if message is not self._message:
            self._wire = websocket_frame(message)
            self._message = message
        return self._wire


class DirectWriter(Protocol):
    """What a connection writes ready-made frames through (``DirectSocket``, or the hub's own
    WebSocket protocol, native_socket.py, which is its own direct writer)."""

    def ready(self) -> bool: ...

    def write(self, wire: bytes) -> None: ...

    def write_with_barrier(self, wire: bytes, on_drained: Callable[[], None]) -> None: ...


class DirectSocket:
    """Writes ready-made WebSocket frames into a uvicorn sans-I/O socket's transport."""

    __slots__ = ("_barrier", "_on_drained", "_protocol")

    def __init__(self, protocol: Any) -> None:
        self._protocol = protocol
        self._barrier: bytes | None = None  # the payload of the ping whose pong is awaited
        self._on_drained: Callable[[], None] | None = None

    @classmethod
    def of(cls, send: Send) -> DirectSocket | None:
        """The direct writer behind an ASGI ``send``, if it is uvicorn's sans-I/O socket."""
        protocol = getattr(send, "__self__", None)
        if isinstance(protocol, WebSocketsSansIOProtocol):
            return cls(protocol)
        return None

    def ready(self) -> bool:
        """True when uvicorn's own send would write at once, uncompressed."""
        protocol = self._protocol
        return bool(
            protocol.writable.is_set()
            and not protocol.close_sent
            and protocol.conn.state is State.OPEN
            and not protocol.conn.extensions
            and not protocol.transport.is_closing()
            # ws_protocol.py sends a large message in fragments: nothing may go between them.
            and not getattr(protocol, "sending_fragments", False)
        )

    def write(self, wire: bytes) -> None:
        self._protocol.transport.write(wire)

    def write_with_barrier(self, wire: bytes, on_drained: Callable[[], None]) -> None:
        """Write ``wire`` and a ping behind it; ``on_drained`` runs when its pong arrives."""
        if self._on_drained is None:
            self._intercept_pongs()
        self._on_drained = on_drained
        self._barrier = b"nova" + struct.pack("!I", next(_barrier_ids) & 0xFFFFFFFF)
        self._protocol.transport.write(wire + bytes((_PING_FIN, len(self._barrier))) + self._barrier)

    def _intercept_pongs(self) -> None:
        """Answer our barrier pongs here; every other pong goes to uvicorn's keepalive."""
        protocol = self._protocol
        keepalive_pong = protocol.handle_pong

        def handle_pong(event: Any) -> None:
            if self._barrier is not None and bytes(event.data) == self._barrier:
                self._barrier = None
                if self._on_drained is not None:
                    self._on_drained()
            else:
                keepalive_pong(event)

        protocol.handle_pong = handle_pong
