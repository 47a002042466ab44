"""Other nodes' updates in a Room, in process: relayed as they came, integrated only when needed.

A node pays for a document's updates in proportion to its own clients of it: updates another
node received (and stored) go to this node's peers without being integrated into its copy,
until a joiner, a read, an edit or a local update needs the state.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pycrdt
import pytest

import crdt_core
from collab_server.metrics import HubMetrics
from collab_server.redis_broker import KIND_PRESENCE, KIND_REPAIR, KIND_UPDATE, coalesced
from collab_server.room import Room
from crdt_core import MessageKind
from persistence.memory import MemoryStore
from tests.fast.peers import TEXT, FakePeer, typing
from tests.fast.test_room import room_on
from tests.support.waiting import eventually

pytestmark = pytest.mark.fast


@asynccontextmanager
async def node_room(store: MemoryStore, **options: Any) -> AsyncIterator[tuple[Room, FakePeer, HubMetrics]]:
    """A room of one node with a local peer, on ``store`` (the Room of tests/fast/test_room.py)."""
    async with room_on(store, **options) as (room, peers):
        yield room, peers.b, room._metrics


def counted(metrics: HubMetrics, name: str) -> float:
    return metrics.registry.get_sample_value(name) or 0.0


def applied(metrics: HubMetrics) -> float:
    return counted(metrics, "nova_remote_updates_applied_total")


def text_of(doc: pycrdt.Doc[Any]) -> str:
    return str(doc.get(TEXT, type=pycrdt.Text))


async def test_remote_updates_reach_local_peers_without_being_integrated_or_stored() -> None:
    store = MemoryStore()
    async with node_room(store) as (room, peer, metrics):
        for update in typing("hello", " world"):
            room.apply_remote_update(update)
        await eventually(lambda: peer.text() == "hello world", timeout=5, what="relay to the local peer")
        assert counted(metrics, "nova_remote_updates_in_total") == 2
        assert applied(metrics) == 0  # this node's copy has not paid for them
        assert (await store.load("doc")).is_empty  # the other node stored them, not this one
        # Reading the document integrates them, in one step.
        assert text_of(room.doc) == "hello world"
        assert applied(metrics) == 2


async def test_a_joiner_gets_what_arrived_only_from_other_nodes() -> None:
    async with node_room(MemoryStore()) as (room, _peer, metrics):
        for update in typing("from ", "elsewhere"):
            room.apply_remote_update(update)
        message = crdt_core.parse_message(await room.sync_step2_for(b"\x00"))
        assert message.kind == MessageKind.SYNC_STEP2
        joiner: pycrdt.Doc[Any] = pycrdt.Doc()
        joiner.apply_update(message.payload)
        assert text_of(joiner) == "from elsewhere"
        assert applied(metrics) == 2


async def test_a_local_update_building_on_remote_ones_integrates_and_is_stored_alone() -> None:
    store = MemoryStore()
    async with node_room(store) as (room, peer, _metrics):
        remote: pycrdt.Doc[Any] = pycrdt.Doc()
        remote_updates: list[bytes] = []
        subscription = remote.observe(lambda event: remote_updates.append(event.update))
        remote.get(TEXT, type=pycrdt.Text).insert(0, "abc")
        remote.unobserve(subscription)
        for update in remote_updates:
            room.apply_remote_update(update)
        # The local client saw "abc" and types after it: its update depends on the remote items.
        local: pycrdt.Doc[Any] = pycrdt.Doc()
        local.apply_update(remote.get_update())
        before = local.get_state()
        local.get(TEXT, type=pycrdt.Text).insert(3, "d")
        assert room.apply_update(local.get_update(before), peer, "local-user")
        assert room.pending.total_bytes == 0  # not held back: the remote part was integrated first
        assert text_of(room.doc) == "abcd"
        await room.wait_durable()
        stored = await store.load("doc")
        assert len(stored.tail) == 1  # only the local update; "abc" was stored by its own node


async def test_the_unintegrated_backlog_is_bounded() -> None:
    async with node_room(MemoryStore(), max_unapplied_remote_bytes=200) as (room, _peer, metrics):
        updates = typing(*(["x" * 40] * 10))
        for update in updates:
            room.apply_remote_update(update)
        # Past 200 bytes the backlog is integrated without anyone asking for the state.
        assert 0 < applied(metrics) < len(updates)
        assert text_of(room.doc) == "x" * 400
        assert applied(metrics) == len(updates)


async def test_a_repair_is_integrated_at_once_and_only_its_new_part_relayed() -> None:
    async with node_room(MemoryStore()) as (room, peer, _metrics):
        other: pycrdt.Doc[Any] = pycrdt.Doc()
        text = other.get(TEXT, type=pycrdt.Text)
        text += "x" * 5000
        room.apply_remote_update(other.get_update())
        await eventually(lambda: len(peer.frames) == 1, timeout=5, what="first relay")
        text += "!"
        full_state = other.get_update()  # what a node offers after a broker outage: everything
        room.apply_remote_update(full_state, repair=True)
        await eventually(lambda: len(peer.frames) == 2, timeout=5, what="repair relay")
        assert len(peer.frames[1]) < 200 < len(full_state)  # the "!" only, not 5,000 known bytes
        assert peer.text() == "x" * 5000 + "!"


async def test_a_bad_remote_update_is_skipped_without_losing_the_good_ones() -> None:
    async with node_room(MemoryStore()) as (room, _peer, _metrics):
        good = typing("kept")
        room.apply_remote_update(good[0])
        room.apply_remote_update(b"\x01\xff\xff\xff\xff\xff garbage")
        assert text_of(room.doc) == "kept"


def test_a_round_trip_publishes_one_merged_update_per_document() -> None:
    first, second, third = typing("a", "b", "c")
    batch = [
        ("doc:x", KIND_UPDATE, first),
        ("doc:x", KIND_PRESENCE, b"presence"),
        ("doc:y", KIND_UPDATE, first),
        ("doc:x", KIND_UPDATE, second),
        ("doc:x", KIND_REPAIR, third),
        ("doc:x", KIND_UPDATE, third),
    ]
    out = coalesced(batch)
    assert [(key, kind) for key, kind, _ in out] == [
        ("doc:x", KIND_UPDATE),
        ("doc:x", KIND_PRESENCE),
        ("doc:y", KIND_UPDATE),
        ("doc:x", KIND_REPAIR),  # repairs are never merged into ordinary updates
    ]
    merged: pycrdt.Doc[Any] = pycrdt.Doc()
    merged.apply_update(out[0][2])
    assert text_of(merged) == "abc"
    assert out[2][2] == first and out[3][2] == third
