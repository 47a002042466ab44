"""Updates held back for missing dependencies: counted, capped, released (in-process Room)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pycrdt
import pytest

from collab_server.pending import PendingLimitExceeded, PendingLimits, held_back_part
from collab_server.room import DocumentTooLarge, Room, SilentPeer
from persistence.group_commit import GroupCommitWriter
from persistence.memory import MemoryStore
from tests.fast.rooms import new_room

pytestmark = pytest.mark.fast  # in-process: part of `scripts/test.sh --fast`


def chained_updates(sizes: list[int]) -> list[bytes]:
    """Updates of one writer, each depending on the one before (a gap holds the rest back)."""
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    text = doc.get("content", type=pycrdt.Text)
    out: list[bytes] = []
    for size in sizes:
        before = doc.get_state()
        text += "x" * size
        out.append(doc.get_update(before))
    return out


@pytest.fixture
async def room_of() -> AsyncIterator[Any]:
    store = MemoryStore()
    await store.open()
    writer = GroupCommitWriter(store)
    task = asyncio.create_task(writer.run())
    rooms: list[Room] = []

    def make(**options: Any) -> Room:
        room = new_room(writer, **options)
        rooms.append(room)
        return room

    yield make
    for room in rooms:
        room.close()
    writer.stop()
    await task
    await store.close()


def text_of(room: Room) -> str:
    return str(room.doc.get("content", type=pycrdt.Text))


async def test_held_back_bytes_are_counted_and_released_when_the_gap_fills(room_of: Any) -> None:
    room: Room = room_of()
    peer = SilentPeer("p")
    room.join(peer)
    first, second, third = chained_updates([5, 1000, 7])
    room.apply_update(second, peer, None)
    room.apply_update(third, peer, None)
    assert room.pending.owner_bytes(peer) >= 1000
    assert text_of(room) == ""
    room.apply_update(first, peer, None)  # the gap fills: everything integrates
    assert room.pending.total_bytes == 0
    assert text_of(room) == "x" * 1012


async def test_a_sender_over_its_cap_is_stopped_and_its_held_back_bytes_dropped(room_of: Any) -> None:
    room: Room = room_of(pending_limits=PendingLimits(per_connection=3000, per_document=10_000))
    honest, attacker = SilentPeer("honest"), SilentPeer("attacker")
    room.join(honest)
    room.join(attacker)
    room.apply_update(chained_updates([3])[0], honest, None)
    gapped = chained_updates([1] + [1000] * 5)[1:]
    with pytest.raises(PendingLimitExceeded):
        for update in gapped:
            room.apply_update(update, attacker, None)
    assert room.pending.owner_bytes(attacker) > 3000
    room.leave(attacker)  # its connection closes: what it held back goes
    assert room.pending.total_bytes == 0
    assert text_of(room) == "xxx"
    # The rebuilt document keeps working: edits apply and are captured.
    room.apply_update(chained_updates([3, 4])[0], honest, None)
    assert text_of(room).count("x") == 6


async def test_the_document_cap_counts_every_sender(room_of: Any) -> None:
    room: Room = room_of(pending_limits=PendingLimits(per_connection=3000, per_document=4000))
    peers = [SilentPeer(f"p{i}") for i in range(3)]
    with pytest.raises(PendingLimitExceeded, match="per document"):
        for peer in peers:
            room.join(peer)
            room.apply_update(chained_updates([1, 1900])[1], peer, None)


async def test_held_back_bytes_count_against_the_document_size(room_of: Any) -> None:
    room: Room = room_of(max_bytes=5000)
    peer = SilentPeer("p")
    room.join(peer)
    for update in chained_updates([1, 2000, 2000])[1:]:
        room.apply_update(update, peer, None)
    assert room.size_bytes < 100 and room.pending.total_bytes > 4000
    with pytest.raises(DocumentTooLarge, match="held back"):
        room.apply_update(chained_updates([1000])[0], peer, None)


async def test_deletes_of_missing_items_are_held_back_too(room_of: Any) -> None:
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    text = doc.get("content", type=pycrdt.Text)
    text += "hello world"
    inserted = doc.get_state()
    del text[0:6]
    deletes_only = doc.get_update(inserted)
    room: Room = room_of()
    peer = SilentPeer("p")
    room.join(peer)
    room.apply_update(deletes_only, peer, None)
    assert room.pending.owner_bytes(peer) > 0
    assert held_back_part(deletes_only, doc.get_state()) is None  # with the items, nothing waits
