"""Presence rules: newest clock wins, owners, removal on leave, expiry, and batching."""

from __future__ import annotations

import asyncio

import pytest

import crdt_core
from awareness.batcher import PresenceBatcher
from awareness.registry import PresenceRegistry
from crdt_core import AwarenessEntry


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_newest_clock_wins_and_stale_updates_change_nothing() -> None:
    registry = PresenceRegistry()
    assert registry.apply_entries([AwarenessEntry(1, 2, '{"a":2}')], "conn") != []
    assert registry.apply_entries([AwarenessEntry(1, 1, '{"a":1}')], "conn") == []
    assert registry.states() == {1: '{"a":2}'}


def test_removal_with_the_same_clock_counts() -> None:
    registry = PresenceRegistry()
    registry.apply_entries([AwarenessEntry(1, 2, '{"a":2}')], "conn")
    assert registry.apply_entries([AwarenessEntry(1, 2, "null")], "conn") == [AwarenessEntry(1, 2, "null")]
    assert registry.states() == {}


def test_owner_leaving_removes_all_its_clients_with_a_bumped_clock() -> None:
    registry = PresenceRegistry()
    registry.apply_entries([AwarenessEntry(1, 4, "{}"), AwarenessEntry(2, 9, "{}")], "a")
    registry.apply_entries([AwarenessEntry(3, 1, "{}")], "b")
    assert registry.remove_owner("a") == [AwarenessEntry(1, 5, "null"), AwarenessEntry(2, 10, "null")]
    assert set(registry.states()) == {3}


def test_states_not_renewed_expire() -> None:
    clock = Clock()
    registry = PresenceRegistry(clock)
    registry.apply_entries([AwarenessEntry(1, 1, "{}")], "a")
    clock.now += 20
    registry.apply_entries([AwarenessEntry(2, 1, "{}")], "b")
    clock.now += 15
    assert registry.expire(30) == [AwarenessEntry(1, 2, "null")]
    assert set(registry.states()) == {2}


def test_bad_bytes_raise_and_change_nothing() -> None:
    registry = PresenceRegistry()
    with pytest.raises(crdt_core.ProtocolError):
        registry.apply(b"\x02\x01\x01", "a")
    assert registry.states() == {}


async def test_batcher_sends_first_change_at_once_then_one_message_per_window() -> None:
    sent: list[bytes] = []
    batcher = PresenceBatcher(0.2, sent.append)
    batcher.add([AwarenessEntry(1, 1, "{}")])
    await asyncio.sleep(0)
    assert len(sent) == 1
    for clock in range(2, 50):
        batcher.add([AwarenessEntry(1, clock, "{}"), AwarenessEntry(2, clock, "{}")])
    await asyncio.sleep(0.05)
    assert len(sent) == 1  # still inside the window
    await asyncio.sleep(0.3)
    assert len(sent) == 2
    assert {(e.client_id, e.clock) for e in crdt_core.decode_awareness(sent[1])} == {(1, 49), (2, 49)}
    batcher.close()
