"""Direct sends: the shared WebSocket framing and the drain barrier, against websockets' own parser."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from collab_server.direct_send import DirectSocket, WireFrames, websocket_frame

pytestmark = pytest.mark.fast


def parse(data: bytes) -> list[Frame]:
    """Frames a client would read from ``data`` (server frames: unmasked)."""
    reader = StreamReader()
    reader.feed_data(data)
    frames = []
    while reader.buffer:
        parser = Frame.parse(reader.read_exact, mask=False, max_size=None, extensions=[])
        try:
            next(parser)
        except StopIteration as done:
            frames.append(done.value)
    return frames


@pytest.mark.parametrize("size", [0, 125, 126, 65_535, 65_536, 200_000])
def test_websocket_frame_is_what_a_client_parses(size: int) -> None:
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    (frame,) = parse(websocket_frame(payload))
    assert frame.opcode is Opcode.BINARY and frame.fin and frame.data == payload


def test_wire_frames_frame_a_message_once_for_all_its_receivers() -> None:
    wire = WireFrames(max_bytes=1 << 20)
    message = b"\x00\x02\x05hello"
    first = wire.of(message)
    assert wire.of(message) is first  # every other socket gets the very same bytes
    assert wire.of(b"\x01\x01\x00") is not first


@dataclass
class FakeTransport:
    written: list[bytes] = field(default_factory=list)

    def write(self, data: bytes) -> None:
        self.written.append(data)


class FakeProtocol:
    """The parts of uvicorn's sans-I/O protocol that DirectSocket touches."""

    def __init__(self) -> None:
        self.transport = FakeTransport()
        self.keepalive_pongs: list[bytes] = []

    def handle_pong(self, event: Any) -> None:
        self.keepalive_pongs.append(bytes(event.data))


def test_a_drain_barrier_returns_when_its_pong_does_and_other_pongs_go_to_the_keepalive() -> None:
    protocol = FakeProtocol()
    socket = DirectSocket(protocol)
    drained: list[int] = []
    socket.write_with_barrier(websocket_frame(b"presence"), lambda: drained.append(1))
    message, ping = parse(protocol.transport.written[0])
    assert message.data == b"presence" and ping.opcode is Opcode.PING  # the ping right behind it
    protocol.handle_pong(Frame(Opcode.PONG, b"keepalive"))
    assert protocol.keepalive_pongs == [b"keepalive"] and drained == []
    protocol.handle_pong(Frame(Opcode.PONG, ping.data))
    assert drained == [1] and protocol.keepalive_pongs == [b"keepalive"]
    protocol.handle_pong(Frame(Opcode.PONG, ping.data))  # a repeated pong drains nothing more
    assert drained == [1] and protocol.keepalive_pongs == [b"keepalive", ping.data]
