"""The hub's own WebSocket protocol for uvicorn: RFC 6455 on the transport, a few slots per socket.

An idle socket's memory is multiplied by every connection a hub holds. uvicorn's WebSocket
protocols keep, per socket, a protocol object with ~40 attributes in a dict, a sans-I/O
connection from the websockets library (its own ~25 attributes, a stream buffer, a parser
generator suspended in its frame, the parsed handshake request and response with every
header), a queue and an event: about 7 KB before the app holds anything. This protocol
takes uvicorn's place after the HTTP upgrade (uvicorn hands over the transport and replays
the request) and keeps only what a socket needs between messages: the transport, a few
flags, the keepalive timer and, only while they exist, received messages, partial frames,
waiters and a large message being sent (``load_tests/bench_idle_memory.py`` prints where
the bytes go).

What it does, as uvicorn's protocols do: the opening handshake (version 13, a valid key;
400/426 otherwise), the ASGI WebSocket interface (accept with subprotocol and headers,
close before accept as 403, the denial-response extension), masked client frames with
fragmentation, control frames answered in order (ping → pong), the close handshake (a
close frame echoed; ours waits ``CLOSE_TIMEOUT_SECONDS`` for the echo), protocol errors
closed with 1002/1007, messages over ``ws_max_size`` closed with 1009, keepalive pings
(``ws_ping_interval``/``ws_ping_timeout``, a missed pong closes with 1011), reading paused
while the app has not taken a message, sends that wait while the transport is over its
high-water mark, and the server's shutdown (1012). TLS is the transport's (uvicorn's
listener); permessage-deflate is not offered here (with ``ws_per_message_deflate`` on, the
hub uses uvicorn's sans-I/O protocol, ``ws_protocol.py``).

Large binary messages leave in fragments of ``FRAGMENT_BYTES`` written from the caller's
bytes once the socket has drained the previous one (a crowd joining a 20 MB document holds
no copy per socket). The protocol is also the socket's direct writer (``direct_send.py``):
a relayed frame, framed once for all receivers, is written straight into the transport.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import hashlib
import itertools
import logging
import random
import struct
import weakref
from collections import deque
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any, Final
from urllib.parse import unquote

from uvicorn.config import Config
from uvicorn.protocols.utils import ClientDisconnected, get_local_addr, get_remote_addr, is_ssl
from uvicorn.server import ServerState
from websockets.speedups import apply_mask

from collab_server.direct_send import DirectSocket, DirectWriter, websocket_frame
from collab_server.ws_protocol import FRAGMENT_BYTES, fragment_header

logger = logging.getLogger(__name__)

CLOSE_TIMEOUT_SECONDS = 10.0  # how long our close frame waits for the peer's echo
MAX_HANDSHAKE_BYTES = 64 * 1024  # the opening request, headers included
_ACCEPT_GUID: Final = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 1.3

# Opcodes (RFC 6455 5.2).
_CONT, _TEXT, _BINARY, _CLOSE, _PING, _PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
# Close codes this module sends itself.
_PROTOCOL_ERROR, _INVALID_DATA, _TOO_BIG, _INTERNAL, _RESTART = 1002, 1007, 1009, 1011, 1012
# Codes a peer may send in a close frame (RFC 6455 7.4; 1004-1006 and 1015 are never sent).
_VALID_CLOSE_CODES = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014})

# Socket states: reading the opening request, the app deciding on it, open, our close sent
# (waiting for the echo), closed.
_REQUEST, _HANDSHAKE, _OPEN, _CLOSING, _CLOSED = 0, 1, 2, 3, 4


class _Server:
    """What every socket of one uvicorn server shares (kept once, not per socket)."""

    __slots__ = (
        "app",
        "app_state",
        "barrier_ids",
        "connections",
        "default_headers",
        "keepalive",
        "loop",
        "max_size",
        "root_path",
        "tasks",
    )

    def __init__(self, config: Config, server_state: ServerState, app_state: dict[str, Any]) -> None:
        if not config.loaded:
            config.load()
        self.app = config.loaded_app
        self.app_state = app_state
        self.barrier_ids = itertools.count(1)  # drain-barrier ping payloads (distinct per socket in flight)
        self.connections = server_state.connections
        self.tasks = server_state.tasks
        self.default_headers = server_state.default_headers  # read at each accept (its date moves)
        self.loop = asyncio.get_running_loop()
        self.max_size: int | None = config.ws_max_size
        interval, timeout = config.ws_ping_interval, config.ws_ping_timeout
        self.keepalive = (
            Keepalive(self.loop, interval, timeout if timeout is not None and timeout > 0 else None)
            if interval is not None and interval > 0
            else None
        )
        self.root_path = config.root_path


class Keepalive:
    """One timer for every socket of a server (a timer per socket costs ~600 bytes): each
    tick pings the sockets whose turn has come and times out those whose pong is overdue.
    A tick is at most a second (and a fifth of the interval and timeout), so a deadline is
    kept to within a tick."""

    __slots__ = ("_loop", "_sockets", "_timer", "interval", "tick", "timeout")

    def __init__(self, loop: asyncio.AbstractEventLoop, interval: float, timeout: float | None) -> None:
        self._loop = loop
        self.interval = interval
        self.timeout = timeout
        self.tick = max(0.02, min(1.0, interval / 5, (timeout or interval) / 5))
        self._sockets: set[NativeWebSocketProtocol] = set()
        self._timer: asyncio.TimerHandle | None = None

    def add(self, socket: NativeWebSocketProtocol) -> None:
        self._sockets.add(socket)
        if self._timer is None:
            self._timer = self._loop.call_later(self.tick, self._run)

    def discard(self, socket: NativeWebSocketProtocol) -> None:
        self._sockets.discard(socket)

    def _run(self) -> None:
        self._timer = None
        now = self._loop.time()
        for socket in [socket for socket in self._sockets if socket.keepalive_due <= now]:
            socket.keepalive_turn(now)
        if self._sockets:
            self._timer = self._loop.call_later(self.tick, self._run)


# One _Server per uvicorn server state (a server's sockets share it; it goes with the server).
_servers: weakref.WeakKeyDictionary[ServerState, _Server] = weakref.WeakKeyDictionary()


def accept_key(key: str) -> str:
    """Sec-WebSocket-Accept for a client's Sec-WebSocket-Key (RFC 6455 4.2.2)."""
    return base64.b64encode(hashlib.sha1(key.encode("ascii") + _ACCEPT_GUID).digest()).decode("ascii")


def close_payload(code: int, reason: str) -> bytes:
    return struct.pack("!H", code) + reason.encode("utf-8") if code != 1005 else b""


def control_frame(opcode: int, payload: bytes) -> bytes:
    return bytes((0x80 | opcode, len(payload))) + payload


def http_response(status: int, headers: list[tuple[bytes, bytes]], body: bytes = b"") -> bytes:
    """An HTTP/1.1 response that ends the connection (a refused handshake)."""
    lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}".encode("ascii")]
    names = {name.lower() for name, _ in headers}
    lines += [name + b": " + value for name, value in headers]
    if b"date" not in names:
        lines.append(b"Date: " + email.utils.formatdate(usegmt=True).encode("ascii"))
    if b"content-length" not in names:
        lines.append(b"Content-Length: " + str(len(body)).encode("ascii"))
    if b"content-type" not in names and body:
        lines.append(b"Content-Type: text/plain; charset=utf-8")
    if b"connection" not in names:
        lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


class HandshakeRefused(Exception):
    def __init__(self, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or []


def parse_request(head: bytes) -> tuple[str, list[tuple[bytes, bytes]]]:
    """The target and headers (names lower-cased) of an opening request, checked as RFC 6455
    4.2.1 asks; HandshakeRefused says why not."""
    request_line, *header_lines = head.split(b"\r\n")
    parts = request_line.split(b" ")
    if len(parts) != 3 or parts[0] != b"GET" or not parts[2].startswith(b"HTTP/1.1"):
        raise HandshakeRefused(400, "not a GET request over HTTP/1.1")
    headers: list[tuple[bytes, bytes]] = []
    for line in header_lines:
        name, sep, value = line.partition(b":")
        if not sep or not name or name != name.strip():
            raise HandshakeRefused(400, "malformed header line")
        headers.append((name.lower(), value.strip()))

    def values(name: bytes) -> list[str]:
        found = [value.decode("latin-1") for key, value in headers if key == name]
        return [token.strip().lower() for value in found for token in value.split(",")]

    if "upgrade" not in values(b"connection") or "websocket" not in values(b"upgrade"):
        raise HandshakeRefused(400, "missing Connection: Upgrade / Upgrade: websocket")
    if values(b"sec-websocket-version") != ["13"]:
        raise HandshakeRefused(426, "unsupported Sec-WebSocket-Version", [(b"Sec-WebSocket-Version", b"13")])
    keys = [value for key, value in headers if key == b"sec-websocket-key"]
    try:
        valid_key = len(keys) == 1 and len(base64.b64decode(keys[0], validate=True)) == 16
    except ValueError:
        valid_key = False
    if not valid_key:
        raise HandshakeRefused(400, "missing or invalid Sec-WebSocket-Key")
    return parts[1].decode("ascii", errors="replace"), headers


class ProtocolViolation(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class NativeWebSocketProtocol(asyncio.Protocol):
    """One WebSocket on a uvicorn listener (uvicorn's ``ws`` protocol class)."""

    __slots__ = (
        "_accept",
        "_barrier",
        "_buffer",
        "_close_timer",
        "_denial",
        "_disconnected",
        "_drain_waiters",
        "_fragments",
        "_inbox",
        "_inbox_waiter",
        "_on_drained",
        "_ping_payload",
        "_read_paused",
        "_scope",
        "_server",
        "_state",
        "_unsent",
        "_unsent_started",
        "_writable",
        "keepalive_due",
        "transport",
    )

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        server = _servers.get(server_state)
        if server is None:
            server = _servers[server_state] = _Server(config, server_state, app_state)
        self._server = server
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self._state = _REQUEST
        self._accept: bytes | None = None  # Sec-WebSocket-Accept, until the app accepts
        self._disconnected = False
        self._buffer: bytearray | None = None  # received bytes not parsed yet
        # A fragmented message being received: (opcode, payload parts).
        self._fragments: tuple[int, list[bytes]] | None = None
        self._inbox: deque[dict[str, Any]] | None = None  # messages the app has not taken yet
        self._inbox_waiter: asyncio.Future[dict[str, Any]] | None = None  # the app's receive
        self._read_paused = False
        self._writable = True
        self._drain_waiters: list[asyncio.Future[None]] | None = None
        self._ping_payload: bytes | None = None  # the keepalive ping awaiting its pong
        self.keepalive_due = 0.0  # loop time of the next ping, or the pong's deadline
        self._close_timer: asyncio.TimerHandle | None = None
        self._scope: dict[str, Any] | None = None  # only until the app has it
        self._denial: tuple[int, list[tuple[bytes, bytes]], list[bytes]] | None = None
        self._unsent: memoryview | None = None  # what is left of a large message being sent
        self._unsent_started = False
        self._barrier: bytes | None = None  # the payload of the drain-barrier ping in flight
        self._on_drained: Callable[[], None] | None = None

    # -- asyncio.Protocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._server.connections.add(self)  # type: ignore[arg-type]

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_keepalive()
        self._put({"type": "websocket.disconnect", "code": 1006 if self._state <= _HANDSHAKE else 1005})
        self._server.connections.discard(self)
        self._state = _CLOSED
        self._disconnected = True
        self._buffer = None
        self._fragments = None
        self._set_writable()  # a sender waiting for a drain that will never come
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None
        if exc is None:
            self.transport.close()

    def eof_received(self) -> bool | None:
        return None  # the transport closes itself

    def pause_writing(self) -> None:
        self._writable = False

    def resume_writing(self) -> None:
        self._set_writable()

    def data_received(self, data: bytes) -> None:
        if self._state == _CLOSED:
            return
        buffer = self._buffer
        if buffer is None:
            buffer = self._buffer = bytearray(data)
        else:
            buffer += data
        if self._state == _REQUEST:
            if not self._read_handshake(buffer):
                return
            buffer = self._buffer
            if buffer is None:
                return
        try:
            self._read_frames(buffer)
        except ProtocolViolation as violation:
            self._fail(violation.code, violation.reason)

    def shutdown(self) -> None:
        """uvicorn's server is stopping: close with 1012 (service restart)."""
        self._stop_keepalive()
        if self._state == _CLOSING:
            if self._close_timer is not None:
                self._close_timer.cancel()
                self._close_timer = None
        elif self._state == _OPEN:
            self._put({"type": "websocket.disconnect", "code": _RESTART})
            self._write(control_frame(_CLOSE, close_payload(_RESTART, "")))
            self._state = _CLOSING
        elif self._state <= _HANDSHAKE:
            self._refuse(500, "Internal Server Error")
        self.transport.close()

    # -- the opening handshake --------------------------------------------------------

    def _read_handshake(self, buffer: bytearray) -> bool:
        """Parse the opening request once whole; start the app. False: wait for more bytes."""
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(buffer) > MAX_HANDSHAKE_BYTES:
                self._refuse(400, "opening request too large")
            return False
        head = bytes(buffer[:end])
        rest = buffer[end + 4 :]
        self._buffer = rest if rest else None
        try:
            target, headers = parse_request(head)
        except HandshakeRefused as refused:
            logger.info("refused a WebSocket handshake: %s", refused)
            self._refuse(refused.status, str(refused), refused.headers)
            return False
        server = self._server
        self._state = _HANDSHAKE
        key = next(value for name, value in headers if name == b"sec-websocket-key")
        self._accept = accept_key(key.decode("ascii")).encode("ascii")
        raw_path, _, query = target.partition("?")
        subprotocols = [
            token.strip()
            for key, value in headers
            if key == b"sec-websocket-protocol"
            for token in value.decode("latin-1").split(",")
        ]
        transport = self.transport
        self._scope = {
            "type": "websocket",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1",
            "scheme": "wss" if is_ssl(transport) else "ws",
            "server": get_local_addr(transport),
            "client": get_remote_addr(transport),
            "root_path": server.root_path,
            "path": server.root_path + unquote(raw_path),
            "raw_path": server.root_path.encode("ascii") + raw_path.encode("ascii", errors="replace"),
            "query_string": query.encode("ascii", errors="replace"),
            "headers": headers,
            "subprotocols": subprotocols,
            "state": server.app_state.copy(),
            "extensions": {"websocket.http.response": {}},
        }
        self._put({"type": "websocket.connect"})
        # Until the app accepts (auth may take a database round trip), a client's frames stay
        # in the kernel's buffers, not in ours: the hub holds back nothing it did not bound.
        self._read_paused = True
        transport.pause_reading()
        self._start_app()
        return True

    def _start_app(self) -> None:
        """The app runs in its own task, created straight on its coroutine (no wrapper frame
        stays suspended for the socket's life); its end is seen by ``_app_done``."""
        server = self._server
        scope, self._scope = self._scope, None
        assert scope is not None
        call = server.app(scope, self.receive, self.send)
        if not asyncio.iscoroutine(call):
            call = _awaited(call)
        task = server.loop.create_task(call)
        server.tasks.add(task)
        task.add_done_callback(self._app_done)

    def _app_done(self, task: asyncio.Task[Any]) -> None:
        self._server.tasks.discard(task)
        if task.cancelled():
            error: BaseException | None = None
        else:
            error = task.exception()
        if error is not None and not isinstance(error, ClientDisconnected):
            logger.error("Exception in ASGI application", exc_info=error)
            self._refuse(500, "Internal Server Error")
        elif error is None and self._state <= _HANDSHAKE and self._denial is None:
            logger.error("ASGI callable returned without completing handshake.")
            self._refuse(500, "Internal Server Error")
        if self._close_timer is None:
            self.transport.close()

    def _refuse(self, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        """Answer the opening request with an HTTP error and end the connection."""
        if self._state > _HANDSHAKE or self.transport.is_closing():
            return
        self._state = _CLOSED
        self.transport.write(http_response(status, headers or [], message.encode("utf-8")))
        self.transport.close()

    # -- frames -----------------------------------------------------------------------

    def _read_frames(self, buffer: bytearray) -> None:
        """Parse every whole frame in ``buffer``; keep the rest for the next read."""
        size = len(buffer)
        pos = 0
        max_size = self._server.max_size
        while size - pos >= 2 and self._state in (_OPEN, _CLOSING):
            first, second = buffer[pos], buffer[pos + 1]
            if first & 0x70:
                raise ProtocolViolation(_PROTOCOL_ERROR, "reserved bits must be 0")
            if not second & 0x80:
                raise ProtocolViolation(_PROTOCOL_ERROR, "incorrect masking")
            length = second & 0x7F
            header = 6
            if length == 126:
                header = 8
                if size - pos < header:
                    break
                (length,) = struct.unpack_from("!H", buffer, pos + 2)
            elif length == 127:
                header = 14
                if size - pos < header:
                    break
                (length,) = struct.unpack_from("!Q", buffer, pos + 2)
            opcode, fin = first & 0x0F, bool(first & 0x80)
            if opcode >= _CLOSE and (length > 125 or not fin):
                raise ProtocolViolation(_PROTOCOL_ERROR, "invalid control frame")
            if max_size is not None and length + self._fragment_bytes() > max_size:
                raise ProtocolViolation(_TOO_BIG, f"over size limit ({length} > {max_size} bytes)")
            if size - pos < header + length:
                break
            mask = bytes(buffer[pos + header - 4 : pos + header])
            payload = apply_mask(memoryview(buffer)[pos + header : pos + header + length], mask)
            pos += header + length
            self._frame(opcode, fin, payload)
        if self._buffer is not buffer:  # the socket failed or closed meanwhile
            return
        if pos >= size:
            self._buffer = None
        elif pos:
            del buffer[:pos]

    def _fragment_bytes(self) -> int:
        fragments = self._fragments
        return sum(len(part) for part in fragments[1]) if fragments is not None else 0

    def _frame(self, opcode: int, fin: bool, payload: bytes) -> None:
        if opcode in (_BINARY, _TEXT):
            if self._fragments is not None:
                raise ProtocolViolation(_PROTOCOL_ERROR, "expected a continuation frame")
            if fin:
                self._message(opcode, payload)
            else:
                self._fragments = (opcode, [payload])
        elif opcode == _CONT:
            fragments = self._fragments
            if fragments is None:
                raise ProtocolViolation(_PROTOCOL_ERROR, "unexpected continuation frame")
            fragments[1].append(payload)
            if fin:
                self._fragments = None
                self._message(fragments[0], b"".join(fragments[1]))
        elif opcode == _PING:
            if self._state == _OPEN and not self.transport.is_closing():
                self.transport.write(control_frame(_PONG, payload))
        elif opcode == _PONG:
            self._pong(payload)
        elif opcode == _CLOSE:
            self._peer_closed(payload)
        else:
            raise ProtocolViolation(_PROTOCOL_ERROR, f"invalid opcode {opcode:#x}")

    def _message(self, opcode: int, payload: bytes) -> None:
        if self._state != _OPEN:
            return  # past our close: read on (for the echo), hand nothing over
        if opcode == _TEXT:
            try:
                taken = self._put({"type": "websocket.receive", "text": payload.decode("utf-8")})
            except UnicodeDecodeError:
                raise ProtocolViolation(_INVALID_DATA, "invalid UTF-8 in a text message") from None
        else:
            taken = self._put({"type": "websocket.receive", "bytes": payload})
        if not taken and not self._read_paused:
            self._read_paused = True  # until the app has taken it: a client cannot flood memory
            self.transport.pause_reading()

    def _peer_closed(self, payload: bytes) -> None:
        if self._state == _CLOSING:  # the echo of our close: the closing handshake is done
            if self._close_timer is not None:
                self._close_timer.cancel()
                self._close_timer = None
            self._state = _CLOSED
            self.transport.close()
            return
        if len(payload) == 1:
            raise ProtocolViolation(_PROTOCOL_ERROR, "close frame too short")
        code, reason = 1005, ""
        if payload:
            (code,) = struct.unpack("!H", payload[:2])
            if code not in _VALID_CLOSE_CODES and not 3000 <= code <= 4999:
                raise ProtocolViolation(_PROTOCOL_ERROR, f"invalid close code {code}")
            try:
                reason = payload[2:].decode("utf-8")
            except UnicodeDecodeError:
                raise ProtocolViolation(_INVALID_DATA, "invalid UTF-8 in the close reason") from None
        self._put({"type": "websocket.disconnect", "code": code, "reason": reason})
        self._state = _CLOSED
        if not self.transport.is_closing():
            self.transport.write(control_frame(_CLOSE, close_payload(code, "")))  # the echo
            self.transport.close()

    def _fail(self, code: int, reason: str) -> None:
        """The peer broke the protocol: close with ``code`` and drop the connection."""
        logger.info("closing a WebSocket: %d %s", code, reason)
        self._stop_keepalive()
        self._buffer = None
        self._fragments = None
        if self._state == _OPEN:
            self._put({"type": "websocket.disconnect", "code": code, "reason": reason})
        self._state = _CLOSED
        if not self.transport.is_closing():
            self.transport.write(control_frame(_CLOSE, close_payload(code, reason)))
            self.transport.close()

    def _put(self, message: dict[str, Any]) -> bool:
        """Hand ``message`` to the app: to its waiting receive (True), else into the inbox."""
        waiter = self._inbox_waiter
        if waiter is not None:
            self._inbox_waiter = None
            if not waiter.done():  # not cancelled (a receive under a timeout)
                waiter.set_result(message)
                return True
        inbox = self._inbox
        if inbox is None:
            inbox = self._inbox = deque()
        inbox.append(message)
        return False

    # -- keepalive (driven by the server's one Keepalive ticker) -----------------------

    def _start_keepalive(self) -> None:
        keepalive = self._server.keepalive
        if keepalive is not None:
            self.keepalive_due = self._server.loop.time() + keepalive.interval
            keepalive.add(self)

    def _stop_keepalive(self) -> None:
        keepalive = self._server.keepalive
        if keepalive is not None:
            keepalive.discard(self)
        self._ping_payload = None

    def keepalive_turn(self, now: float) -> None:
        """The ticker found this socket due: ping it, or (a ping unanswered) time it out."""
        keepalive = self._server.keepalive
        assert keepalive is not None
        if self._state != _OPEN or self.transport.is_closing():
            keepalive.discard(self)
        elif self._ping_payload is None:
            self._ping_payload = payload = struct.pack("!I", random.getrandbits(32))
            self.transport.write(control_frame(_PING, payload))
            self.keepalive_due = now + (
                keepalive.timeout if keepalive.timeout is not None else keepalive.interval
            )
            if keepalive.timeout is None:
                self._ping_payload = None  # no deadline: the next ping comes after the interval
        elif self._read_paused and keepalive.timeout is not None:
            # No pong in time, but reading is paused while the app has not taken a message (a
            # client's 4 MB update being applied): the pong may sit unread, the hub is busy,
            # the peer is not dead. Read on and allow another timeout.
            self._read_paused = False
            self.transport.resume_reading()
            self.keepalive_due = now + keepalive.timeout
        else:
            self._ping_payload = None
            self._fail(_INTERNAL, "keepalive ping timeout")

    def _pong(self, payload: bytes) -> None:
        if self._barrier is not None and payload == self._barrier:
            self._barrier = None
            if self._on_drained is not None:
                self._on_drained()
            return
        if self._ping_payload is None or payload != self._ping_payload:
            return  # unsolicited or stale
        self._ping_payload = None
        keepalive = self._server.keepalive
        if keepalive is not None:
            self.keepalive_due = self._server.loop.time() + keepalive.interval

    # -- ASGI -------------------------------------------------------------------------

    def receive(self) -> asyncio.Future[dict[str, Any]]:
        """The next message for the app, as a future (the app awaits it directly: no frame of
        a coroutine stays suspended per idle socket). Reading, paused while the app has not
        taken a message, resumes once it has taken every one."""
        future: asyncio.Future[dict[str, Any]] = self._server.loop.create_future()
        inbox = self._inbox
        if inbox is None:
            if self._inbox_waiter is not None and not self._inbox_waiter.done():
                raise RuntimeError("a WebSocket has one reader; another is already waiting")
            self._inbox_waiter = future
            return future
        future.set_result(inbox.popleft())
        if not inbox:
            self._inbox = None  # an idle socket keeps no deque
            # Before the accept reading stays paused (the accept resumes it).
            if self._read_paused and self._state in (_OPEN, _CLOSING) and not self.transport.is_closing():
                self._read_paused = False
                self.transport.resume_reading()
        return future

    async def send(self, message: dict[str, Any]) -> None:
        if not self._writable:
            await self._wait_writable()
        if self._disconnected:
            raise ClientDisconnected()
        kind = message["type"]
        if self._denial is not None:
            self._send_denial(message)
        elif self._state == _HANDSHAKE:
            self._answer_handshake(message)
        elif self._state == _OPEN:
            if kind == "websocket.send":
                await self._send_data(message)
            elif kind == "websocket.close":
                self._close(int(message.get("code") or 1000), message.get("reason") or "")
            else:
                raise RuntimeError(
                    f"Expected ASGI message 'websocket.send' or 'websocket.close', but got '{kind}'."
                )
        elif self._state == _CLOSED and self._denial is None:
            if kind != "websocket.close":  # the peer closed first (or broke the protocol)
                raise ClientDisconnected()
        else:
            raise RuntimeError(f"Unexpected ASGI message '{kind}', after sending 'websocket.close'.")

    def _answer_handshake(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        transport = self.transport
        if kind == "websocket.accept":
            if transport.is_closing():
                return
            assert self._accept is not None
            lines = [
                b"HTTP/1.1 101 Switching Protocols",
                b"Upgrade: websocket",
                b"Connection: Upgrade",
                b"Sec-WebSocket-Accept: " + self._accept,
            ]
            lines += [name + b": " + value for name, value in self._server.default_headers]
            lines += [name + b": " + value for name, value in message.get("headers") or ()]
            subprotocol = message.get("subprotocol")
            if subprotocol:
                lines.append(b"Sec-WebSocket-Protocol: " + subprotocol.encode("latin-1"))
            self._state = _OPEN
            self._accept = None
            transport.write(b"\r\n".join(lines) + b"\r\n\r\n")
            self._start_keepalive()
            if self._buffer is not None:  # frames sent right behind the request
                try:
                    self._read_frames(self._buffer)
                except ProtocolViolation as violation:
                    self._fail(violation.code, violation.reason)
                    return
            if self._read_paused and self._inbox is None and not transport.is_closing():
                self._read_paused = False  # reading resumes here, or once the app takes the rest
                transport.resume_reading()
        elif kind == "websocket.close":
            self._put({"type": "websocket.disconnect", "code": 1006})
            self._refuse(403, "")
        elif kind == "websocket.http.response.start":
            status = int(message["status"])
            if not 100 <= status < 600:
                raise RuntimeError(f"Invalid HTTP status code '{status}' in response.")
            self._denial = (status, list(message.get("headers") or []), [])
        else:
            raise RuntimeError(
                "Expected ASGI message 'websocket.accept', 'websocket.close' "
                f"or 'websocket.http.response.start' but got '{kind}'."
            )

    def _send_denial(self, message: dict[str, Any]) -> None:
        if message["type"] != "websocket.http.response.body":
            raise RuntimeError(
                f"Expected ASGI message 'websocket.http.response.body' but got '{message['type']}'."
            )
        assert self._denial is not None
        status, headers, body = self._denial
        body.append(bytes(message.get("body", b"")))
        if not message.get("more_body", False):
            self._put({"type": "websocket.disconnect", "code": 1006})
            if self._state <= _HANDSHAKE and not self.transport.is_closing():
                self._state = _CLOSED
                self.transport.write(http_response(status, headers, b"".join(body)))
                self.transport.close()

    async def _send_data(self, message: dict[str, Any]) -> None:
        if self._unsent is not None:
            await self._send_fragments()  # a send cancelled between fragments: finish that message first
            if self._state != _OPEN:
                return
        data = message.get("bytes")
        if data is None:
            text = message.get("text")
            if text is None:
                return
            frame = websocket_frame(text.encode("utf-8"))
            self.transport.write(bytes((0x80 | _TEXT,)) + frame[1:])
            return
        if len(data) > FRAGMENT_BYTES:
            self._unsent = memoryview(data)
            self._unsent_started = False
            await self._send_fragments()
            return
        self.transport.write(websocket_frame(data))

    async def _send_fragments(self) -> None:
        """Write the unsent message fragment by fragment, each once the socket has drained."""
        while (unsent := self._unsent) is not None:
            if not self._writable:
                await self._wait_writable()
            if self._disconnected:
                self._unsent = None
                raise ClientDisconnected()
            if self._state != _OPEN:  # a close went out between fragments: the message ends there
                self._unsent = None
                return
            final = len(unsent) <= FRAGMENT_BYTES
            chunk = unsent if final else unsent[:FRAGMENT_BYTES]
            opcode = _CONT if self._unsent_started else _BINARY
            # Header and payload in one loop turn: nothing else is written between them.
            self.transport.write(fragment_header(opcode, final, len(chunk)))
            self.transport.write(chunk)  # asyncio copies only what the kernel does not take at once
            self._unsent_started = True
            self._unsent = None if final else unsent[FRAGMENT_BYTES:]

    def _close(self, code: int, reason: str) -> None:
        """Our close frame; the peer's echo (or ``CLOSE_TIMEOUT_SECONDS``) ends the connection."""
        self._unsent = None  # a close may go between fragments; the message ends there
        if self.transport.is_closing():
            return
        self._put({"type": "websocket.disconnect", "code": code, "reason": reason})
        self._state = _CLOSING
        self._stop_keepalive()
        self.transport.write(control_frame(_CLOSE, close_payload(code, reason)))
        if self._read_paused:
            self._read_paused = False
            self.transport.resume_reading()
        self._close_timer = self._server.loop.call_later(CLOSE_TIMEOUT_SECONDS, self.transport.close)

    async def _wait_writable(self) -> None:
        waiter = self._server.loop.create_future()
        if self._drain_waiters is None:
            self._drain_waiters = []
        self._drain_waiters.append(waiter)
        try:
            await waiter
        finally:
            waiters = self._drain_waiters
            if waiters is not None and waiter in waiters:
                waiters.remove(waiter)

    def _set_writable(self) -> None:
        self._writable = True
        waiters, self._drain_waiters = self._drain_waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def _write(self, data: bytes) -> None:
        if not self.transport.is_closing():
            self.transport.write(data)

    # -- the direct writer (direct_send.DirectWriter) ----------------------------------

    def ready(self) -> bool:
        """True when a whole frame may be written now: open, no close sent, below the
        high-water mark, and no large message part sent."""
        return (
            self._writable
            and self._state == _OPEN
            and self._unsent is None
            and not self.transport.is_closing()
        )

    def write(self, wire: bytes) -> None:
        self.transport.write(wire)

    def write_with_barrier(self, wire: bytes, on_drained: Callable[[], None]) -> None:
        """Write ``wire`` and a ping behind it; ``on_drained`` runs when its pong arrives
        (peers answer pings in order: the client has read ``wire`` by then)."""
        self._on_drained = on_drained
        self._barrier = barrier = b"nova" + struct.pack("!I", next(self._server.barrier_ids) & 0xFFFFFFFF)
        self.transport.write(wire + control_frame(_PING, barrier))


async def _awaited(call: Awaitable[None]) -> None:
    await call


def direct_writer(send: Callable[..., Awaitable[None]]) -> DirectWriter | None:
    """The direct writer behind an ASGI ``send``: this protocol itself, or uvicorn's sans-I/O
    socket through ``DirectSocket``; None for anything else (sends go through ASGI)."""
    protocol = getattr(send, "__self__", None)
    if isinstance(protocol, NativeWebSocketProtocol):
        return protocol
    return DirectSocket.of(send)
