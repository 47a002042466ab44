"""A presence storm in one room, in process: peers whose writers lag behind a storm of
presence changes get document updates first, and presence costs encodes per broadcast,
not per peer."""

from __future__ import annotations

import pytest

import crdt_core
from awareness.catch_up import PresenceCatchUp
from collab_server.closecodes import CloseCode
from collab_server.outbox import Outbox, OutboxLimits
from crdt_core import AwarenessEntry, MessageKind
from persistence.group_commit import GroupCommitWriter
from persistence.memory import MemoryStore
from tests.fast.peers import typing
from tests.fast.rooms import new_room, writing
from tests.support.waiting import eventually

pytestmark = pytest.mark.fast

PEERS = 60


class LaggingPeer:
    """A room member with a real outbox whose writer has not run yet (a slow socket)."""

    def __init__(self, index: int) -> None:
        self.peer_id = f"p{index}"
        self.client_id = index + 1
        self.outbox = Outbox(OutboxLimits(2048, 64 << 20))
        self.closed: CloseCode | None = None

    def deliver(self, frame: bytes, update: bytes | None) -> None:
        self.outbox.put_document(frame, update)

    def deliver_presence(self, frame: bytes) -> None:
        self.outbox.put_presence(frame)

    def request_close(self, code: CloseCode, detail: str | None = None) -> None:
        self.closed = code

    def drain(self) -> list[crdt_core.Message]:
        out = []
        while (frame := self.outbox.take_nowait()) is not None:
            out.append(crdt_core.parse_message(frame))
        return out


def state(peer: LaggingPeer, clock: int) -> bytes:
    entry = AwarenessEntry(peer.client_id, clock, f'{{"user":{{"name":"{peer.peer_id}"}},"cursor":{clock}}}')
    return crdt_core.encode_awareness([entry])


async def test_lagging_peers_get_document_updates_first_and_one_shared_catch_up() -> None:
    writer = GroupCommitWriter(MemoryStore())
    room = new_room(writer, name="storm", awareness_window_seconds=0.01)
    peers = [LaggingPeer(i) for i in range(PEERS)]
    for peer in peers:
        room.join(peer)
        peer.outbox.catch_up = room.presence_catch_up.frame
    async with writing(writer):
        try:
            rounds = 12
            for clock in range(1, rounds + 1):  # every peer changes presence, a broadcast per round
                before = room._batcher.flushes
                for peer in peers:
                    room.apply_presence(state(peer, clock), peer)
                await eventually(lambda b=before: room._batcher.flushes > b, timeout=5, what="a broadcast")
            edit = typing("hello")[0]
            room.apply_update(edit, peers[0], "writer")
            await eventually(lambda: len(peers[1].outbox._documents) > 0, timeout=5, what="the relay")
            broadcasts = room._batcher.flushes
            for peer in peers[1:]:
                messages = peer.drain()
                # The edit is the first thing the lagging peer sends, ahead of the presence storm.
                assert messages[0].kind is MessageKind.SYNC_UPDATE
                assert messages[0].payload == edit
                seen: dict[int, int] = {}
                for message in messages[1:]:
                    assert message.kind is MessageKind.AWARENESS
                    seen |= {e.client_id: e.clock for e in crdt_core.decode_awareness(message.payload)}
                assert seen == {p.client_id: rounds for p in peers}  # the newest state of everyone
                assert peer.closed is None
            # Each catch-up is encoded at most once per broadcast, however many peers lag.
            assert 1 <= room.presence_catch_up.builds <= broadcasts
        finally:
            room.close()


def test_a_catch_up_tells_a_lagging_peer_who_left() -> None:
    now = [0.0]
    live = [AwarenessEntry(2, 5, '{"n":2}')]
    catch_up = PresenceCatchUp(lambda: list(live), clock=lambda: now[0], remember_seconds=30)
    catch_up.note([AwarenessEntry(1, 4, "null"), AwarenessEntry(3, 2, "null")])
    catch_up.note([AwarenessEntry(3, 3, '{"back":true}')])  # client 3 came back: not removed
    live.append(AwarenessEntry(3, 3, '{"back":true}'))
    frame = catch_up.frame()
    assert catch_up.frame() is frame  # cached until the next broadcast
    entries = crdt_core.decode_awareness(crdt_core.parse_message(frame).payload)
    assert {(e.client_id, e.clock, e.state) for e in entries} == {
        (2, 5, '{"n":2}'),
        (3, 3, '{"back":true}'),
        (1, 4, "null"),
    }
    now[0] = 31.0  # past y-protocols' outdated timeout: clients dropped client 1 by themselves
    catch_up.invalidate()
    entries = crdt_core.decode_awareness(crdt_core.parse_message(catch_up.frame()).payload)
    assert {e.client_id for e in entries} == {2, 3}
    assert catch_up.builds == 2
