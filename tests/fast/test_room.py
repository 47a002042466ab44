"""Room, in process: relay, durability, limits and bad input on the memory store with fake peers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pycrdt
import pytest

from collab_server.room import DocumentTooLarge, JoinWaitExpired, Room
from crdt_core import ProtocolError
from persistence.group_commit import BacklogFull, GroupCommitWriter
from persistence.memory import MemoryStore
from tests.fast.peers import TEXT, FakePeer, typing
from tests.fast.rooms import new_room, writing
from tests.fast.stores import GatedStore, TwoStepStore
from tests.support.waiting import eventually

pytestmark = pytest.mark.fast


@asynccontextmanager
async def room_on(
    store: MemoryStore, *, strict: bool = True, max_backlog: int = 1000, **options: Any
) -> AsyncIterator[tuple[Room, GridPeers]]:
    writer = GroupCommitWriter(store, max_backlog=max_backlog)
    room = new_room(writer, strict=strict, **options)
    peers = GridPeers(FakePeer("a"), FakePeer("b"))
    room.join(peers.a)
    room.join(peers.b)
    async with writing(writer):
        try:
            yield room, peers
        finally:
            room.close()
            for gate in (getattr(store, "gate", None), getattr(store, "sync_gate", None)):
                if gate is not None:
                    gate.set()  # a commit held at a gate must finish for the writer to stop


class GridPeers:
    def __init__(self, a: FakePeer, b: FakePeer) -> None:
        self.a = a
        self.b = b


async def test_an_update_reaches_the_other_peers_once_stored_and_not_its_sender() -> None:
    store = MemoryStore()
    async with room_on(store) as (room, peers):
        for update in typing("hello", " world"):
            assert room.apply_update(update, peers.a, "alice")
        await eventually(lambda: peers.b.text() == "hello world", timeout=5, what="relay to b")
        assert peers.a.frames == []
        stored = await store.load("doc")
        assert len(stored.tail) == 2
        assert (await store.activity("doc"))[0].actor == "alice"


async def test_strict_durability_relays_once_written_while_joiners_wait_for_the_fsync() -> None:
    store = TwoStepStore()
    store.sync_gate.clear()
    async with room_on(store) as (room, peers):
        [update] = typing("x")
        room.apply_update(update, peers.a, None)
        # Relayed without waiting for the disk: a kill of the hub could no longer lose it.
        await eventually(lambda: peers.b.text() == "x", timeout=5, what="relay before the fsync")
        assert room._writer.document_pending("doc")
        joiner = asyncio.ensure_future(room.sync_step2_for(b""))  # joiners get only durable state
        done, _ = await asyncio.wait({joiner}, timeout=0.05)
        assert not done and room._writer.document_pending("doc")
        store.sync_gate.set()
        frame = await asyncio.wait_for(joiner, 5)
        assert frame and not room._writer.document_pending("doc")


async def test_strict_durability_relays_only_after_the_commit() -> None:
    store = GatedStore()
    store.gate.clear()
    async with room_on(store) as (room, peers):
        [update] = typing("x")
        room.apply_update(update, peers.a, None)
        await eventually(lambda: store.waiting == 1, timeout=5, what="the commit held at the gate")
        assert peers.b.frames == [] and (await store.load("doc")).is_empty
        store.gate.set()
        await eventually(lambda: peers.b.text() == "x", timeout=5, what="relay after commit")


async def test_relaxed_durability_relays_before_the_commit() -> None:
    store = GatedStore()
    store.gate.clear()
    async with room_on(store, strict=False) as (room, peers):
        [update] = typing("x")
        room.apply_update(update, peers.a, None)
        await eventually(lambda: peers.b.text() == "x", timeout=5, what="relay before commit")
        assert (await store.load("doc")).is_empty


async def test_bad_bytes_change_nothing() -> None:
    store = MemoryStore()
    async with room_on(store) as (room, peers):
        before = room.doc.get_update()
        with pytest.raises(ProtocolError):
            room.apply_update(b"\x01\xff\xff\xff\xff\xff garbage", peers.a, None)
        assert room.doc.get_update() == before
        assert room._writer.backlog == 0


async def test_a_document_cannot_grow_past_its_size_limit() -> None:
    store = MemoryStore()
    async with room_on(store, max_bytes=200) as (room, peers):
        [small] = typing("ok")
        room.apply_update(small, peers.a, None)
        [large] = typing("x" * 500)
        with pytest.raises(DocumentTooLarge):
            room.apply_update(large, peers.a, None)
        assert str(room.doc.get(TEXT, type=pycrdt.Text)) == "ok"


async def test_a_full_backlog_refuses_writes_without_losing_any() -> None:
    store = GatedStore()
    store.gate.clear()
    async with room_on(store, max_backlog=2) as (room, peers):
        first, second, third = typing("a", "b", "c")
        room.apply_update(first, peers.a, None)
        room.apply_update(second, peers.a, None)
        with pytest.raises(BacklogFull):
            room.apply_update(third, peers.a, None)
        store.gate.set()
        await eventually(lambda: peers.b.text() == "ab", timeout=5, what="both stored and relayed")


async def test_a_joiner_waits_for_pending_commits_at_most_join_wait_seconds() -> None:
    store = GatedStore()
    store.gate.clear()
    async with room_on(store, join_wait_seconds=0.1) as (room, peers):
        [update] = typing("pending")
        room.apply_update(update, peers.a, None)
        with pytest.raises(JoinWaitExpired):
            await room.sync_step2_for(b"\x00")
        store.gate.set()
        frame = await room.sync_step2_for(b"\x00")
        joiner = FakePeer("joiner")
        joiner.deliver(frame, None)
        assert joiner.text() == "pending"
