"""The bounded outbox: priority of document frames, merging on overflow, and the hard limit."""

from __future__ import annotations

import pycrdt
import pytest

import crdt_core
from collab_server.outbox import Outbox, OutboxClosed, OutboxLimits, OutboxOverflow
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
    return crdt_core.encode_awareness([AwarenessEntry(client, clock, state)])


async def test_document_frames_go_before_presence() -> None:
    box = Outbox(OutboxLimits(100, 1 << 20))
    box.put_presence(awareness(1, 1))
    box.put_document(b"doc-frame")
    assert await box.take() == b"doc-frame"
    assert crdt_core.parse_message(await box.take()).kind is crdt_core.MessageKind.AWARENESS


async def test_presence_updates_are_coalesced_when_taken() -> None:
    box = Outbox(OutboxLimits(100, 1 << 20))
    for clock in range(1, 6):
        box.put_presence(awareness(7, clock))
    box.put_presence(awareness(8, 1))
    message = crdt_core.parse_message(await box.take())
    entries = {e.client_id: e.clock for e in crdt_core.decode_awareness(message.payload)}
    assert entries == {7: 5, 8: 1}
    assert box.take_nowait() is None


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
