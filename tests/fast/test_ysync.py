"""The y-sync steps every transport shares (collab_server/ysync.py), in process: a room on
the memory store, fake peers, the y-websocket and Hocuspocus dialects."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pycrdt
import pytest

import crdt_core
from awareness.identity import Identity
from awareness.registry import Refusal
from collab_server.auth import ANONYMOUS
from collab_server.closecodes import CloseCode
from collab_server.document_access import DocumentAccess
from collab_server.hocuspocus_channel import HOCUSPOCUS
from collab_server.pending import PendingLimitExceeded
from collab_server.room import Room
from collab_server.ysync import (
    MAX_PRESENCE_REASONS_TOLD,
    READ_ONLY_REASON,
    Y_WEBSOCKET,
    SyncSteps,
    close_code_for,
)
from crdt_core import MessageKind, ProtocolError
from persistence.group_commit import BacklogFull, DocumentSetAside
from persistence.memory import MemoryStore
from tests.fast.peers import TEXT, FakePeer, typing
from tests.fast.test_room import GridPeers, room_on

pytestmark = pytest.mark.fast


class Audit:
    def __init__(self) -> None:
        self.events: list[tuple[str, str | None, str | None, str]] = []

    def record(self, action: str, subject: str | None, document: str | None, detail: str = "") -> None:
        self.events.append((action, subject, document, detail))


def access(*, read_only: bool) -> DocumentAccess:
    return DocumentAccess(ANONYMOUS, read_only=read_only, actor="tester", identity=None)


@asynccontextmanager
async def a_room() -> AsyncIterator[tuple[Room, GridPeers]]:
    async with room_on(MemoryStore()) as (room, peers):
        yield room, peers


def kinds(peer: FakePeer) -> list[MessageKind]:
    return [crdt_core.parse_message(frame).kind for frame in peer.frames]


async def test_a_writer_s_update_is_applied_and_a_step_1_answered_with_step_2() -> None:
    async with a_room() as (room, peers):
        sync = SyncSteps(peers.a, access(read_only=False), Audit(), Y_WEBSOCKET)
        for update in typing("hi"):
            await sync.handle(room, crdt_core.Message(MessageKind.SYNC_UPDATE, update))
        assert str(room.doc.get(TEXT, type=pycrdt.Text)) == "hi"
        peers.a.frames.clear()
        await sync.handle(room, crdt_core.Message(MessageKind.SYNC_STEP1, b"\x00"))
        assert kinds(peers.a) == [MessageKind.SYNC_STEP2]


async def test_a_viewer_is_told_once_and_audited_once_and_nothing_changes() -> None:
    async with a_room() as (room, peers):
        audit = Audit()
        sync = SyncSteps(peers.a, access(read_only=True), audit, Y_WEBSOCKET)
        for update in typing("no", "pe"):
            await sync.handle(room, crdt_core.Message(MessageKind.SYNC_UPDATE, update))
        assert str(room.doc.get(TEXT, type=pycrdt.Text)) == ""
        assert sync.refused_writes == 2
        denials = [crdt_core.parse_message(f) for f in peers.a.frames]
        assert [(m.kind, m.payload.decode()) for m in denials] == [(MessageKind.AUTH, READ_ONLY_REASON)]
        assert [e[0] for e in audit.events] == ["denied"] and "y-websocket" in audit.events[0][3]


async def test_hocuspocus_acknowledges_writes_and_a_viewer_s_empty_write_is_not_refused() -> None:
    async with a_room() as (room, peers):
        writer = SyncSteps(peers.a, access(read_only=False), Audit(), HOCUSPOCUS)
        [update] = typing("x")
        writer.handle_now(room, crdt_core.Message(MessageKind.SYNC_UPDATE, update))
        assert peers.a.frames[-1] == HOCUSPOCUS.write_status(True)
        viewer = SyncSteps(peers.b, access(read_only=True), Audit(), HOCUSPOCUS)
        viewer.handle_now(room, crdt_core.Message(MessageKind.SYNC_STEP2, update))  # adds nothing new
        assert peers.b.frames == [HOCUSPOCUS.write_status(True)]
        assert viewer.refused_writes == 0
        [news] = typing("y")
        viewer.handle_now(room, crdt_core.Message(MessageKind.SYNC_STEP2, news))
        assert peers.b.frames[1] == HOCUSPOCUS.write_status(False)
        assert viewer.refused_writes == 1 and len(peers.b.frames) == 3  # status, then the one denial


async def test_hocuspocus_answers_a_step_1_and_asks_back() -> None:
    async with a_room() as (room, peers):
        sync = SyncSteps(peers.a, access(read_only=False), Audit(), HOCUSPOCUS)
        step1 = sync.handle_now(room, crdt_core.Message(MessageKind.SYNC_STEP1, b"\x00"))
        assert step1 is not None  # answering awaits the store: handed back to the transport
        await sync.answer(room, step1)
        assert kinds(peers.a) == [MessageKind.SYNC_STEP2, MessageKind.SYNC_STEP1]


async def test_presence_refusals_are_told_once_per_reason_and_at_most_a_few_reasons() -> None:
    async with a_room() as (room, peers):
        identity = Identity.of_subject("alice", "human")
        sync = SyncSteps(peers.a, DocumentAccess(ANONYMOUS, False, "alice", identity), Audit(), Y_WEBSOCKET)
        for _ in range(3):
            sync._refuse_presence(room, Refusal(1, "same reason"))
        for n in range(MAX_PRESENCE_REASONS_TOLD + 4):
            sync._refuse_presence(room, Refusal(1, f"reason {n}"))
        told = [crdt_core.parse_message(f).payload.decode() for f in peers.a.frames]
        assert told.count("presence refused: same reason") == 1
        assert len(told) == MAX_PRESENCE_REASONS_TOLD


def test_every_transport_closes_for_the_same_errors_with_the_same_codes() -> None:
    assert close_code_for(ProtocolError("x")) is CloseCode.INVALID_PAYLOAD
    assert close_code_for(DocumentSetAside("x")) is CloseCode.DOCUMENT_SET_ASIDE
    assert close_code_for(BacklogFull("x")) is CloseCode.TRY_AGAIN_LATER
    assert close_code_for(PendingLimitExceeded("x")) is CloseCode.DEPENDENCIES_MISSING
    assert close_code_for(RuntimeError("a hub bug")) is None  # 1011, logged
