"""The hub's own WebSocket protocol (collab_server/native_socket.py), spoken to byte by byte.

A raw TCP client sends the opening request and frames by hand, so that what RFC 6455 asks
of a server can be checked on the wire: the handshake answer (and its refusals), masked
and fragmented frames, pings answered between fragments, the close handshake, protocol
errors (1002/1007), frames over the size limit (1009) and keepalive pings whose pong never
comes (1011).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import socket
import struct
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

import crdt_core
from collab_server.native_socket import (
    HandshakeRefused,
    Keepalive,
    NativeWebSocketProtocol,
    accept_key,
    parse_request,
)
from tests.support.hub import HubProcess
from tests.support.waiting import eventually_async

DEADLINE_S = 20.0
SYNC_STEP2 = b"\x00\x01"
CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def request(path: str = "/native", version: str = "13", key: str | None = None) -> bytes:
    key = key if key is not None else base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {path} HTTP/1.1",
        "Host: 127.0.0.1",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        f"Sec-WebSocket-Version: {version}",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def masked(opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0, mask: bool = True) -> bytes:
    """A client frame (RFC 6455 5.2), masked unless asked otherwise."""
    first = (0x80 if fin else 0) | rsv | opcode
    size = len(payload)
    bit = 0x80 if mask else 0
    if size < 126:
        head = bytes((first, bit | size))
    elif size < 1 << 16:
        head = bytes((first, bit | 126)) + struct.pack("!H", size)
    else:
        head = bytes((first, bit | 127)) + struct.pack("!Q", size)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


class RawSocket:
    """A WebSocket client with nothing between the test and the bytes."""

    def __init__(self, port: int, opening: bytes) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE_S)
        self.sock.sendall(opening)
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        self.status_line, *lines = head.decode("latin-1").split("\r\n")
        self.headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}

    def _fill(self) -> None:
        data = self.sock.recv(1 << 16)
        if not data:
            raise ConnectionError("the hub closed the connection")
        self.buffer += data

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def frames(self) -> Iterator[tuple[int, bool, bytes]]:
        """Server frames as they arrive (opcode, fin, payload); ends when the hub closes TCP."""
        while True:
            while len(self.buffer) < 2:
                try:
                    self._fill()
                except ConnectionError:
                    return
            first, second = self.buffer[0], self.buffer[1]
            assert second & 0x80 == 0, "server frames are not masked"
            size, offset = second & 0x7F, 2
            if size == 126:
                size, offset = struct.unpack("!H", self.buffer[2:4])[0], 4
            elif size == 127:
                size, offset = struct.unpack("!Q", self.buffer[2:10])[0], 10
            while len(self.buffer) < offset + size:
                self._fill()
            payload = self.buffer[offset : offset + size]
            self.buffer = self.buffer[offset + size :]
            yield first & 0x0F, bool(first & 0x80), payload

    def first(self, opcode: int, prefix: bytes = b"") -> bytes:
        for got, _, payload in self.frames():
            if got == opcode and payload.startswith(prefix):
                return payload
        raise AssertionError(f"the hub closed before a frame {opcode:#x} {prefix!r}")

    def close_code(self) -> tuple[int, str]:
        payload = self.first(CLOSE)
        return struct.unpack("!H", payload[:2])[0], payload[2:].decode()

    def closed_tcp(self) -> bool:
        """True once the hub has ended the TCP connection (read until EOF, with a deadline)."""
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            try:
                if not self.sock.recv(1 << 16):
                    return True
            except ConnectionResetError:  # our echo reached a socket the hub had closed
                return True
        return False

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    process = HubProcess(tmp_path_factory.mktemp("native"), store="memory").start()
    yield process
    process.stop()


def opened(hub: HubProcess, path: str = "/native") -> RawSocket:
    client = RawSocket(hub.port, request(path))
    assert client.status_line.startswith("HTTP/1.1 101"), client.status_line
    return client


@pytest.mark.fast
def test_the_accept_key_is_rfc_6455s_example() -> None:
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


@pytest.mark.fast
def test_an_opening_request_is_checked() -> None:
    good = request("/doc?actor=a").removesuffix(b"\r\n\r\n")
    target, headers = parse_request(good)
    assert target == "/doc?actor=a" and (b"upgrade", b"websocket") in headers
    with pytest.raises(HandshakeRefused) as no_key:
        parse_request(good.replace(b"Sec-WebSocket-Key", b"X-Key"))
    assert no_key.value.status == 400
    with pytest.raises(HandshakeRefused) as old:
        parse_request(request(version="8").removesuffix(b"\r\n\r\n"))
    assert old.value.status == 426 and (b"Sec-WebSocket-Version", b"13") in old.value.headers
    with pytest.raises(HandshakeRefused):
        parse_request(good.replace(b"GET", b"POST", 1))
    with pytest.raises(HandshakeRefused):
        parse_request(request(key="c2hvcnQ=").removesuffix(b"\r\n\r\n"))  # not 16 bytes


@pytest.mark.fast
def test_a_socket_keeps_no_attribute_dict() -> None:
    assert NativeWebSocketProtocol.__dictoffset__ == 0  # slots only: an idle socket is small


@pytest.mark.fast
def test_the_keepalive_tick_keeps_deadlines_within_a_fraction() -> None:
    loop = asyncio.new_event_loop()
    loop.close()  # only its type matters here: no timer is started without a socket
    assert Keepalive(loop, 15.0, 5.0).tick == 1.0
    assert Keepalive(loop, 1.0, 2.0).tick == pytest.approx(0.2)


def test_a_handshake_is_answered_and_refused_as_rfc_6455_asks(hub: HubProcess) -> None:
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    client = RawSocket(hub.port, request(key=key))
    try:
        assert client.status_line.startswith("HTTP/1.1 101")
        assert client.headers["sec-websocket-accept"] == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        assert client.headers["upgrade"].lower() == "websocket"
    finally:
        client.close()
    old = RawSocket(hub.port, request(version="8"))
    try:
        assert old.status_line.startswith("HTTP/1.1 426") and old.headers["sec-websocket-version"] == "13"
    finally:
        old.close()


def test_fragments_with_a_ping_between_them_make_one_message(hub: HubProcess) -> None:
    client = opened(hub)
    try:
        step1 = crdt_core.frame_sync_step1(b"\x00")
        client.send(masked(BINARY, step1[:1], fin=False))
        client.send(masked(PING, b"between"))
        client.send(masked(CONT, step1[1:2], fin=False))
        client.send(masked(CONT, step1[2:]))
        assert client.first(PONG) == b"between"  # answered at once, mid-message
        assert client.first(BINARY, SYNC_STEP2)  # the reassembled sync step 1 was answered
    finally:
        client.close()


def test_the_close_handshake_echoes_the_code_and_ends_the_connection(hub: HubProcess) -> None:
    client = opened(hub)
    try:
        client.send(masked(CLOSE, struct.pack("!H", 1000) + b"bye"))
        assert client.close_code()[0] == 1000
        assert client.closed_tcp()
    finally:
        client.close()


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (masked(BINARY, b"\x00\x00\x00", mask=False), 1002),  # clients must mask
        (masked(BINARY, b"\x00\x00\x00", rsv=0x40), 1002),  # no extension was negotiated
        (masked(0x3, b"x"), 1002),  # a reserved opcode
        (masked(CONT, b"x"), 1002),  # a continuation of nothing
        (masked(PING, b"x" * 126), 1002),  # control frames carry at most 125 bytes
        (masked(CLOSE, struct.pack("!H", 1005)), 1002),  # a code no peer may send
        (masked(TEXT, b"\xff\xfe"), 1007),  # not UTF-8
        (masked(TEXT, b"text"), 1003),  # valid, but the hub takes binary messages only
    ],
)
def test_a_broken_frame_closes_with_its_code(hub: HubProcess, frame: bytes, code: int) -> None:
    client = opened(hub)
    try:
        client.send(frame)
        assert client.close_code()[0] == code
        with contextlib.suppress(OSError):  # the echo, where the hub waits for one
            client.send(masked(CLOSE, struct.pack("!H", code)))
        assert client.closed_tcp()
    finally:
        client.close()


def test_a_frame_over_the_size_limit_closes_before_its_payload_arrives(hub: HubProcess) -> None:
    client = opened(hub)
    try:
        client.send(bytes((0x82, 0x80 | 127)) + struct.pack("!Q", 1 << 40) + os.urandom(4))
        code, reason = client.close_code()
        assert code == 1009 and "limit" in reason
    finally:
        client.close()


def test_a_peer_that_never_answers_pings_is_closed_with_1011(tmp_path: Path) -> None:
    hub = HubProcess(tmp_path, store="memory", ping_interval_seconds=0.5, ping_timeout_seconds=1.0).start()
    try:
        answering = opened(hub)
        silent = opened(hub)
        try:
            ping = answering.first(PING)
            answering.send(masked(PONG, ping))
            assert answering.first(PING) != ping  # a new ping once the interval has passed again
            assert silent.first(PING)
            code, reason = silent.close_code()  # no pong
            assert code == 1011 and "keepalive" in reason
        finally:
            answering.close()
            silent.close()
    finally:
        hub.stop()


def presence(client_id: int, clock: int, state: str) -> bytes:
    return crdt_core.frame_awareness(
        crdt_core.encode_awareness([crdt_core.AwarenessEntry(client_id, clock, state)])
    )


def test_presence_goes_with_a_drain_barrier_that_the_pong_releases(hub: HubProcess) -> None:
    """A presence message is written with a ping right behind it; the next one waits for its
    pong (the client has read the first by then), and goes once it comes."""
    reader, sender = opened(hub, "/barrier"), opened(hub, "/barrier")
    try:
        sender.send(masked(BINARY, presence(7, 1, '{"n":1}')))
        frames = reader.frames()
        for opcode, _, payload in frames:
            if opcode == BINARY and payload[:1] == b"\x01" and b'{"n":1}' in payload:
                break
        opcode, _, barrier = next(frames)
        assert opcode == PING and barrier.startswith(b"nova")  # right behind the presence
        sender.send(masked(BINARY, presence(7, 2, '{"n":2}')))
        reader.send(masked(PONG, barrier))
        assert b'{"n":2}' in reader.first(BINARY, b"\x01")
    finally:
        reader.close()
        sender.close()


@pytest.mark.fast
async def test_bytes_sent_before_the_accept_wait_in_the_kernel_not_in_the_hub() -> None:
    """A client that floods while the app has not accepted yet (auth still deciding) makes
    the hub buffer nothing beyond what one read brings: reading waits for the accept."""
    accept_now = asyncio.Event()
    received: list[int] = []

    async def app(scope: dict[str, object], receive: Any, send: Any) -> None:
        assert scope["type"] == "websocket"
        assert (await receive())["type"] == "websocket.connect"
        await accept_now.wait()
        await send({"type": "websocket.accept"})
        while (message := await receive())["type"] == "websocket.receive":
            received.append(len(message["bytes"]))

    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, ws=NativeWebSocketProtocol, lifespan="off", log_level="warning"
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    try:
        await eventually_async(_true_when(lambda: server.started), DEADLINE_S, "uvicorn started")
        port = server.servers[0].sockets[0].getsockname()[1]
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request())
        frame = masked(BINARY, b"x" * 60_000)
        flood = 200  # 12 MB: far more than the kernel's buffers hold
        sent = 0

        async def send_flood() -> None:
            nonlocal sent
            for _ in range(flood):
                writer.write(frame)
                await writer.drain()  # blocks once the hub stops reading
                sent += 1

        def upgraded() -> list[NativeWebSocketProtocol]:
            connections: list[object] = list(server.server_state.connections)  # uvicorn types its own
            return [c for c in connections if isinstance(c, NativeWebSocketProtocol)]

        # uvicorn's HTTP parser drops bytes that arrive in the same read as the request, so
        # the flood starts once the socket is ours (the app has not accepted it yet).
        await eventually_async(_true_when(lambda: bool(upgraded())), DEADLINE_S, "the upgrade")
        flooding = asyncio.create_task(send_flood())
        # The client gets stuck well before the end: the hub stopped reading.
        deadline = time.monotonic() + DEADLINE_S
        stalled_at = -1
        while time.monotonic() < deadline:
            before = sent
            await asyncio.wait({flooding}, timeout=0.5)
            if sent == before:
                stalled_at = sent
                break
        assert 0 <= stalled_at < flood, "the client was never held back"
        (protocol,) = upgraded()
        held = len(protocol._buffer or b"")  # the bytes the hub holds for this socket
        assert held < 1 << 20, f"the hub buffered {held} bytes before the accept"
        accept_now.set()
        await asyncio.wait_for(flooding, DEADLINE_S)  # reading resumes after the accept
        await eventually_async(_true_when(lambda: len(received) >= flood), DEADLINE_S, "every message")
        assert received == [60_000] * flood
        writer.close()
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, DEADLINE_S)


def _true_when(check: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def probe() -> bool:
        return check()

    return probe
