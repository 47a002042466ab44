"""The bounded outbox: priority of document frames, merging on overflow, and the hard limit."""

from __future__ import annotations

import asyncio
import time

import pycrdt
import pytest

import crdt_core
from collab_server.outbox import MAX_PRESENCE_FRAMES, Outbox, OutboxClosed, OutboxLimits, OutboxOverflow
from crdt_core import AwarenessEntry

pytestmark = pytest.mark.fast  # in-process: part of `scripts/test.sh --fast`


def updates(count: int, size: int = 1) -> list[bytes]:
    doc: pycrdt.Doc[object] = pycrdt.Doc()
    text = doc.get("content", type=pycrdt.Text)
    out: list[bytes] = []
    doc.observe(lambda event: out.append(event.update))
    for i in range(count):
        text += str(i % 10) * size
    return out


def awareness(client: int, clock: int, state: str = '{"n":1}') -> bytes:
    """A framed awareness message, as the room broadcasts it."""
    return crdt_core.frame_awareness(crdt_core.encode_awareness([AwarenessEntry(client, clock, state)]))


def clocks(frame: bytes) -> dict[int, int]:
    message = crdt_core.parse_message(frame)
    assert message.kind is crdt_core.MessageKind.AWARENESS
    return {e.client_id: e.clock for e in crdt_core.decode_awareness(message.payload)}


async def test_document_frames_go_before_presence() -> None:
    box = Outbox(OutboxLimits(100, 1 << 20))
    box.put_presence(awareness(1, 1))
    box.put_document(b"doc-frame")
    assert await box.take() == b"doc-frame"
    assert crdt_core.parse_message(await box.take()).kind is crdt_core.MessageKind.AWARENESS


async def test_a_document_update_goes_ahead_of_a_presence_backlog() -> None:
    box = Outbox(OutboxLimits(100, 1 << 20), catch_up=lambda: awareness(9, 9))
    for clock in range(1, 50):
        box.put_presence(awareness(clock, clock))
    box.put_document(b"doc-frame")
    assert await box.take() == b"doc-frame"
    assert clocks(await box.take()) == {9: 9}  # the backlog was replaced by the catch-up
    assert box.take_nowait() is None


async def test_presence_frames_are_queued_as_the_same_bytes_not_re_encoded() -> None:
    shared = awareness(7, 1)
    boxes = [Outbox(OutboxLimits(100, 1 << 20)) for _ in range(3)]
    for box in boxes:
        box.put_presence(shared)
    assert all(box.take_nowait() is shared for box in boxes)


async def test_a_presence_backlog_becomes_one_shared_catch_up_message() -> None:
    built: list[bytes] = []

    def catch_up() -> bytes:
        if not built:
            built.append(awareness(8, 3))
        return built[0]

    boxes = [Outbox(OutboxLimits(100, 1 << 20), catch_up=catch_up) for _ in range(50)]
    for clock in range(1, MAX_PRESENCE_FRAMES + 3):
        for box in boxes:
            box.put_presence(awareness(8, clock))
    taken = [box.take_nowait() for box in boxes]
    assert len(built) == 1 and all(frame is built[0] for frame in taken)  # encoded once for all
    assert sum(box.presence_dropped for box in boxes) == 50 * (MAX_PRESENCE_FRAMES + 1)
    for box in boxes:  # what came after the catch-up was taken is sent as it is
        box.put_presence(awareness(8, 9))
        assert clocks(box.take_nowait() or b"") == {8: 9}


async def test_without_a_catch_up_source_a_presence_backlog_is_coalesced() -> None:
    box = Outbox(OutboxLimits(100, 1 << 20))
    for clock in range(1, MAX_PRESENCE_FRAMES + 2):
        box.put_presence(awareness(7, clock))
    box.put_presence(awareness(8, 1))
    assert clocks(await box.take()) == {7: MAX_PRESENCE_FRAMES + 1}
    assert clocks(await box.take()) == {8: 1}
    assert box.take_nowait() is None


def test_a_presence_backlog_never_closes_a_connection() -> None:
    box = Outbox(OutboxLimits(8, 2000), catch_up=lambda: awareness(1, 1))
    big = '{"s":"' + "x" * 900 + '"}'
    for clock in range(1, 200):
        box.put_presence(awareness(clock % 50, clock, big))  # would be 180 kB of distinct states
    for part in updates(5):
        box.put_document(crdt_core.frame_update(part), part)
    assert box.queued_bytes < 2000 + 2 * 1000


async def test_overflowing_updates_are_merged_into_one_equivalent_update() -> None:
    box = Outbox(OutboxLimits(8, 1 << 20))
    box.put_document(crdt_core.frame_sync_step2(b"\x00\x00"))  # a step 2 is never merged away
    parts = updates(20)
    for part in parts:
        box.put_document(crdt_core.frame_update(part), part)
    assert box.merges > 0 and len(box) <= 8
    assert crdt_core.parse_message(await box.take()).kind is crdt_core.MessageKind.SYNC_STEP2
    doc: pycrdt.Doc[object] = pycrdt.Doc()
    while (frame := box.take_nowait()) is not None:
        doc.apply_update(crdt_core.parse_message(frame).payload)
    assert str(doc.get("content", type=pycrdt.Text)) == "".join(str(i % 10) for i in range(20))


def test_overflow_beyond_the_byte_limit_raises() -> None:
    box = Outbox(OutboxLimits(4, 2000))
    with pytest.raises(OutboxOverflow):
        for part in updates(50, size=200):
            box.put_document(crdt_core.frame_update(part), part)


async def test_abort_drops_everything_and_closes() -> None:
    box = Outbox(OutboxLimits(4, 1000))
    box.put_document(b"x")
    box.abort()
    assert box.queued_bytes == 0
    with pytest.raises(OutboxClosed):
        await box.take()


def test_one_frame_of_any_size_fits_but_a_backlog_behind_it_does_not() -> None:
    box = Outbox(OutboxLimits(16, 1000))
    box.put_document(b"j" * 50_000)  # into an empty outbox: a large document's state
    box.put_document(b"k" * 40_000)  # a large frame behind it: also accepted
    with pytest.raises(OutboxOverflow):
        box.put_document(b"l" * 10)  # but now 40 kB wait behind the head: over the limit


def test_a_joiner_state_behind_its_first_frames_is_accepted() -> None:
    box = Outbox(OutboxLimits(16, 1000))
    box.put_document(b"s" * 10)  # sync step 1
    box.put_presence(awareness(1, 1))
    box.put_document(crdt_core.frame_sync_step2(b"j" * 50_000))
    assert len(box) == 3


def test_a_large_paste_reaches_a_peer_whose_outbox_is_within_its_limit() -> None:
    box = Outbox(OutboxLimits(16, 1000))
    small, large = updates(2, size=400)[0], updates(1, size=20_000)[0]
    box.put_document(crdt_core.frame_update(small), small)
    box.put_document(crdt_core.frame_update(large), large)
    assert box.queued_bytes > 20_000


async def test_paced_presence_waits_for_its_turn_while_document_frames_go_at_once() -> None:
    box = Outbox(OutboxLimits(100, 1 << 20))
    box.pace_presence(lambda: awareness(5, 5), lambda: 1000.0)  # 1,000 presence bytes/s
    big = '{"s":"' + "x" * 1500 + '"}'
    box.put_presence(awareness(1, 1, big))
    box.put_presence(awareness(1, 2, big))
    assert clocks(box.take_nowait() or b"") == {1: 1}  # a quiet peer's first frame goes at once
    assert box.take_nowait() is None  # then its bucket is empty (1,500 bytes > 1 s of the rate)
    assert box.presence_wait() is not None
    box.put_document(b"doc-frame")
    assert box.take_nowait() == b"doc-frame"  # never paced
    started = time.monotonic()
    async with asyncio.timeout(5):
        frame = await box.take()
    assert clocks(frame) == {1: 2}
    assert time.monotonic() - started > 0.2  # it waited for its turn


async def test_held_presence_waits_for_its_release_and_documents_do_not() -> None:
    box = Outbox(OutboxLimits(100, 1 << 20))
    box.hold_presence(30.0)  # a presence message is on its way, its drain barrier not back yet
    box.put_presence(awareness(1, 1))
    assert box.take_nowait() is None
    box.put_document(b"doc-frame")
    assert box.take_nowait() == b"doc-frame"
    box.release_presence()
    async with asyncio.timeout(5):
        assert clocks(await box.take()) == {1: 1}
