"""The relay window: updates are held back to be merged only when that saves CPU the hub
needs — a crowded room, a busy process (or a lagging loop), and updates close enough
together that a window would actually merge some."""

from __future__ import annotations

import pytest

from collab_server.room import Room
from persistence.group_commit import GroupCommitWriter
from persistence.memory import MemoryStore
from tests.fast.peers import FakePeer, typing
from tests.fast.rooms import new_room

pytestmark = pytest.mark.fast

FULL_WINDOW = 0.02  # 100 peers x 0.2 ms, and relay_window_ms


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def room_with(peers: int, load: float, clock: Clock) -> Room:
    room = new_room(
        GroupCommitWriter(MemoryStore()), relay_window_seconds=FULL_WINDOW, load=lambda: load, clock=clock
    )
    for n in range(peers):
        room.join(FakePeer(f"p{n}"))
    return room


def arrive(room: Room, clock: Clock, updates: list[bytes], gap: float) -> None:
    """Updates reach the relay ``gap`` seconds apart (as their commits complete)."""
    for update in updates:
        clock.now += gap
        room._queue_relay(update, None, 0.0)


@pytest.mark.parametrize(
    ("peers", "load", "gap", "held"),
    [
        (100, 1.0, 0.002, True),  # crowded, busy, 500 updates/s: merging saves sends
        (100, 0.1, 0.002, False),  # the process has CPU to spare: relay at once
        (100, 1.0, 0.1, False),  # updates 100 ms apart: a 20 ms window would merge nothing
        (10, 1.0, 0.002, False),  # a small room: few sends to save
    ],
)
async def test_updates_are_held_only_when_holding_merges_them_on_a_busy_hub(
    peers: int, load: float, gap: float, held: bool
) -> None:
    clock = Clock()
    room = room_with(peers, load, clock)
    arrive(room, clock, typing(*"abcdefghijklmnop"), gap)
    window = room._relay_window()
    assert (window > 0) is held
    assert window <= FULL_WINDOW
    room.close()


async def test_a_burst_after_a_quiet_spell_opens_the_window_once_updates_come_close() -> None:
    clock = Clock()
    room = room_with(100, 1.0, clock)
    arrive(room, clock, typing("a"), 5.0)
    assert room._relay_window() == 0.0  # one update after a quiet spell: sent at once
    arrive(room, clock, typing(*"bcdefghijklmnopq"), 0.001)
    assert room._relay_window() == pytest.approx(FULL_WINDOW)
    room.close()
