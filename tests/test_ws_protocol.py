"""The hub's lean WebSocket protocol (collab_server/ws_protocol.py) through the real server.

A joiner of a large document receives its state as RFC 6455 fragments written from the one
shared encoding, and reassembles exactly the document; the single-waiter stand-ins for
uvicorn's queue and event behave as uvicorn needs; an idle outbox holds nothing.
"""

from __future__ import annotations

import asyncio
import random
import socket
import string
import time
from pathlib import Path

import pycrdt
import pytest
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

import crdt_core
from collab_server.client import TEXT_FIELD, YClient
from collab_server.outbox import Outbox, OutboxLimits
from collab_server.ws_protocol import FRAGMENT_BYTES, ReceiveQueue, WritableFlag, fragment_header
from tests.support.hub import HubProcess

DEADLINE_S = 30.0
SYNC_STEP2 = b"\x00\x01"  # y-sync message 0, sub-type 1


class RawClient:
    """A WebSocket client that keeps every frame as received (websockets' sans-I/O protocol)."""

    def __init__(self, url: str) -> None:
        uri = parse_uri(url)
        self.protocol = ClientProtocol(uri, max_size=None)
        self.sock = socket.create_connection((uri.host, uri.port), timeout=DEADLINE_S)
        self.protocol.send_request(self.protocol.connect())
        self._flush()
        self.frames: list[Frame] = []
        deadline = time.monotonic() + DEADLINE_S
        while not any(isinstance(event, Response) for event in self._read(deadline)):
            pass

    def _flush(self) -> None:
        for data in self.protocol.data_to_send():
            if data:
                self.sock.sendall(data)

    def _read(self, deadline: float) -> list[object]:
        if time.monotonic() > deadline:
            raise TimeoutError("no answer from the hub in time")
        data = self.sock.recv(1 << 20)
        if not data:
            raise ConnectionError("the hub closed the socket")
        self.protocol.receive_data(data)
        self._flush()  # pongs
        events: list[object] = list(self.protocol.events_received())
        self.frames += [event for event in events if isinstance(event, Frame)]
        return events

    def send(self, message: bytes) -> None:
        self.protocol.send_binary(message)
        self._flush()

    def message_frames(self, prefix: bytes) -> list[Frame]:
        """The frames of the first data message starting with ``prefix``, waiting for its last."""
        deadline = time.monotonic() + DEADLINE_S
        while True:
            data = [f for f in self.frames if f.opcode in (Opcode.BINARY, Opcode.CONT)]
            starts = [
                i
                for i, f in enumerate(data)
                if f.opcode is Opcode.BINARY and bytes(f.data[: len(prefix)]) == prefix
            ]
            if starts:
                ends = [i for i, f in enumerate(data) if i >= starts[0] and f.fin]
                if ends:
                    return data[starts[0] : ends[0] + 1]
            self._read(deadline)

    def close(self) -> None:
        self.sock.close()


async def seed(url: str, text: str) -> None:
    async with YClient(url) as client:
        await client.wait_synced()
        client.text += text
    # Leaving the block waits until what was queued is sent; the hub has it once a new client sees it.
    async with YClient(url) as check:
        await check.wait_synced()
        await check.wait_for(lambda c: len(str(c.text)) == len(text), timeout=DEADLINE_S)


def joiner_frames(tmp_path: Path, text: str, *, deflate_setting: bool = False) -> list[Frame]:
    """The frames of the SyncStep2 a new joiner gets from a fresh hub holding ``text``.

    With ``deflate_setting`` the hub runs uvicorn's sans-I/O protocol slimmed (ws_protocol.py,
    the one that can negotiate compression; this joiner offers none), else its own
    (native_socket.py)."""
    hub = HubProcess(tmp_path, store="memory", ws_per_message_deflate=deflate_setting).start()
    try:
        asyncio.run(seed(hub.url("doc"), text))
        joiner = RawClient(hub.url("doc"))
        try:
            joiner.send(crdt_core.frame_sync_step1(b"\x00"))
            return joiner.message_frames(SYNC_STEP2)
        finally:
            joiner.close()
    finally:
        hub.stop()


@pytest.mark.parametrize("deflate_setting", [False, True], ids=["native", "sans-io"])
def test_a_large_state_reaches_a_joiner_in_fragments_from_the_shared_encoding(
    tmp_path: Path, deflate_setting: bool
) -> None:
    # Above large_frame_bytes (1 MiB): it goes through the gate, not as a direct send.
    text = "".join(random.choices(string.ascii_letters, k=5 * FRAGMENT_BYTES + 1000))
    frames = joiner_frames(tmp_path, text, deflate_setting=deflate_setting)
    assert len(frames) >= 4, [len(f.data) for f in frames]
    assert frames[0].opcode is Opcode.BINARY and not frames[0].fin
    assert all(f.opcode is Opcode.CONT for f in frames[1:]) and frames[-1].fin
    assert all(len(f.data) <= FRAGMENT_BYTES for f in frames)
    message = crdt_core.parse_message(b"".join(f.data for f in frames))
    doc: pycrdt.Doc[pycrdt.Text] = pycrdt.Doc()
    doc.apply_update(message.payload)
    assert str(doc.get(TEXT_FIELD, type=pycrdt.Text)) == text


def test_small_messages_still_leave_whole(tmp_path: Path) -> None:
    frames = joiner_frames(tmp_path, "hello")
    assert len(frames) == 1 and frames[0].fin and frames[0].opcode is Opcode.BINARY


@pytest.mark.fast
@pytest.mark.parametrize("length", [0, 125, 126, 65535, 65536, 5 << 20])
def test_fragment_headers_follow_rfc_6455(length: int) -> None:
    header = fragment_header(0x2, False, length)
    assert header[0] == 0x02  # not final, binary
    assert header[1] & 0x80 == 0  # servers do not mask
    if length < 126:
        assert header[1] == length and len(header) == 2
    elif length < 1 << 16:
        assert header[1] == 126 and int.from_bytes(header[2:4], "big") == length
    else:
        assert header[1] == 127 and int.from_bytes(header[2:10], "big") == length
    assert fragment_header(0x0, True, 3)[0] == 0x80  # final continuation


@pytest.mark.fast
async def test_the_receive_queue_hands_items_over_in_order_and_keeps_nothing_when_empty() -> None:
    queue = ReceiveQueue()
    assert queue.empty() and queue._items is None
    waiter = asyncio.ensure_future(queue.arrival())
    await asyncio.sleep(0)
    assert not waiter.done()
    queue.put_nowait({"n": 1})
    queue.put_nowait({"n": 2})
    await asyncio.wait_for(waiter, 1)
    assert [queue.pop(), queue.pop()] == [{"n": 1}, {"n": 2}]
    assert queue.empty() and queue._items is None
    first = queue.arrival()
    with pytest.raises(RuntimeError):
        queue.arrival()  # one consumer
    first.cancel()
    queue.arrival().cancel()  # a cancelled wait does not block the next


@pytest.mark.fast
async def test_the_writable_flag_releases_every_waiter_when_set() -> None:
    flag = WritableFlag()
    await asyncio.wait_for(flag.wait(), 1)  # set: returns at once
    flag.clear()
    waiters = [asyncio.ensure_future(flag.wait()) for _ in range(3)]
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiters)
    flag.set()
    await asyncio.wait_for(asyncio.gather(*waiters), 1)
    assert flag._waiters is None


@pytest.mark.fast
async def test_an_idle_outbox_holds_no_deque_and_wakes_its_writer() -> None:
    box = Outbox(OutboxLimits(16, 1 << 20))
    assert not box._documents and box._documents.maxlen == 0  # the shared empty stand-in
    arrival = box.arrival()
    assert not arrival.done()
    box.put_document(b"frame")
    assert arrival.done()
    assert box.take_nowait() == b"frame"
    assert box._documents.maxlen == 0 and box._waiter is None
    box.close()
    assert box.arrival().done() and box.closed
