"""Presence rules: newest clock wins, owners, removal on leave, expiry, and batching."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

import crdt_core
from awareness.batcher import PresenceBatcher
from awareness.identity import Identity
from awareness.registry import PresenceLimits, PresenceRegistry
from crdt_core import AwarenessEntry
from tests.support.waiting import eventually

pytestmark = pytest.mark.fast  # in-process: part of `scripts/test.sh --fast`


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_newest_clock_wins_and_stale_updates_change_nothing() -> None:
    registry = PresenceRegistry()
    assert registry.apply_entries([AwarenessEntry(1, 2, '{"a":2}')], "conn").changed != []
    assert registry.apply_entries([AwarenessEntry(1, 1, '{"a":1}')], "conn").changed == []
    assert registry.states() == {1: '{"a":2}'}


def test_removal_with_the_same_clock_counts() -> None:
    registry = PresenceRegistry()
    registry.apply_entries([AwarenessEntry(1, 2, '{"a":2}')], "conn")
    assert registry.apply_entries([AwarenessEntry(1, 2, "null")], "conn").changed == [
        AwarenessEntry(1, 2, "null")
    ]
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
    sent_at: list[float] = []

    def send(frame: bytes) -> None:
        sent.append(frame)
        sent_at.append(time.monotonic())

    batcher = PresenceBatcher(0.2, send)
    batcher.add([AwarenessEntry(1, 1, "{}")])
    await asyncio.sleep(0)  # one loop turn: the first change leaves at once
    assert len(sent) == 1
    for clock in range(2, 50):
        batcher.add([AwarenessEntry(1, clock, "{}"), AwarenessEntry(2, clock, "{}")])
    await eventually(lambda: len(sent) == 2, timeout=5, what="the coalesced batch after the window")
    assert sent_at[1] - sent_at[0] >= 0.2 * 0.95  # not before the window ended (clock granularity)
    assert {(e.client_id, e.clock) for e in crdt_core.decode_awareness(sent[1])} == {(1, 49), (2, 49)}
    batcher.close()


def test_only_the_owner_may_change_or_remove_its_client_whatever_the_clock() -> None:
    registry = PresenceRegistry()
    registry.apply_entries([AwarenessEntry(1, 1, '{"user":{"name":"Ada"}}')], "ada")
    attack = registry.apply_entries(
        [AwarenessEntry(1, 2**40, '{"user":{"name":"Mallory"}}'), AwarenessEntry(1, 2**40 + 1, "null")],
        "mallory",
    )
    assert attack.changed == []
    assert [r.reason for r in attack.refused] == ["client id belongs to another connection"] * 2
    assert registry.states() == {1: '{"user":{"name":"Ada"}}'}
    # The owner itself still updates and removes it.
    assert registry.apply_entries([AwarenessEntry(1, 2, "null")], "ada").changed != []
    assert registry.states() == {}
    # Its removal does not free the id for others while the owner is connected.
    assert registry.apply_entries([AwarenessEntry(1, 9, "{}")], "mallory").refused != []
    registry.remove_owner("ada")
    assert registry.apply_entries([AwarenessEntry(1, 9, "{}")], "mallory").changed != []


def test_limits_on_state_size_ids_per_owner_entries_and_bytes() -> None:
    limits = PresenceLimits(max_state_bytes=100, max_clients_per_owner=2, max_entries=3, max_bytes=250)
    registry = PresenceRegistry(limits=limits)
    big = registry.apply_entries([AwarenessEntry(1, 1, '"' + "x" * 200 + '"')], "a")
    assert big.changed == [] and "over 100 bytes" in big.refused[0].reason
    many = registry.apply_entries([AwarenessEntry(cid, 1, "{}") for cid in range(1, 10)], "a")
    assert [e.client_id for e in many.changed] == [1, 2]
    assert len(many.refused) == 7
    assert registry.apply_entries([AwarenessEntry(3, 1, "{}")], "b").changed != []
    full = registry.apply_entries([AwarenessEntry(4, 1, "{}")], "c")
    assert full.refused[0].reason == "presence of this document is full"
    registry.remove_owner("a")
    filler = '"' + "y" * 90 + '"'
    registry.apply_entries([AwarenessEntry(5, 1, filler), AwarenessEntry(6, 1, filler)], "d")
    over = registry.apply_entries([AwarenessEntry(7, 1, filler)], "e")
    assert over.refused[0].reason == "presence of this document is full (bytes)"
    assert registry.state_bytes <= 250


def test_a_remote_node_may_hold_many_clients_and_its_removals_free_the_id() -> None:
    registry = PresenceRegistry(limits=PresenceLimits(max_clients_per_owner=1))
    node = ("node", "n1")
    applied = registry.apply_entries([AwarenessEntry(c, 1, "{}") for c in (1, 2, 3)], node, limit_owner=False)
    assert len(applied.changed) == 3
    registry.apply_entries([AwarenessEntry(2, 2, "null")], node, limit_owner=False)
    # The client moved to this node: it may claim its id at once.
    assert registry.apply_entries([AwarenessEntry(2, 3, "{}")], "local-conn").changed != []


def test_states_must_be_json_and_are_stamped_with_the_verified_identity() -> None:
    registry = PresenceRegistry()
    assert registry.apply_entries([AwarenessEntry(1, 1, "{not json")], "a").refused != []
    ada = Identity.of_subject("ada", "human")
    applied = registry.apply_entries(
        [AwarenessEntry(2, 1, '{"user":{"name":"Boss","kind":"agent","color":"#123456"},"x":1}')],
        "a",
        identity=ada,
    )
    stamped = json.loads(applied.changed[0].state)
    assert stamped == {"user": {"name": "ada", "kind": "human", "id": "ada", "color": "#123456"}, "x": 1}
    assert json.loads(registry.states()[2]) == stamped
    not_object = registry.apply_entries([AwarenessEntry(3, 1, "[1, 2]")], "a", identity=ada)
    assert not_object.refused[0].reason == "state must be a JSON object"
    deep = registry.apply_entries([AwarenessEntry(4, 1, "[" * 5000 + "]" * 5000)], "a", identity=ada)
    assert deep.changed == [] and deep.refused


def test_an_echo_of_a_known_state_is_ignored_without_a_refusal() -> None:
    registry = PresenceRegistry()
    registry.apply_entries([AwarenessEntry(1, 3, "{}")], "ada")
    echo = registry.apply_entries([AwarenessEntry(1, 3, "{}"), AwarenessEntry(1, 2, "{}")], "observer")
    assert echo.changed == [] and echo.refused == []
