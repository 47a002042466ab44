"""The two streaming calls: ``Subscribe`` (a document's changes from a version on) and
``Sync`` (y-protocol both ways). Each stream is a room member like a WebSocket connection,
with the same bounded outbox: a consumer that falls too far behind is ended with
RESOURCE_EXHAUSTED (``slow_consumer``, as close 4408) and resumes from its last version.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pycrdt

import crdt_core
from collab_server.api.context import AppState
from collab_server.auth import Role
from collab_server.closecodes import CloseCode, reason_for
from collab_server.document_access import access_for
from collab_server.outbox import Outbox, OutboxClosed, OutboxLimits, OutboxOverflow
from collab_server.rate_limit import RateLimiter
from collab_server.rebase import InvalidVersion, doc_at_version, version_token
from collab_server.room import Room
from collab_server.rpc import collab_pb2 as pb
from collab_server.rpc.access import CallGuard, document_name
from collab_server.rpc.errors import RpcFailure, invalid
from collab_server.ydoc import doc_from_parts
from collab_server.ysync import Dialect, SyncSteps
from crdt_core import MessageKind, ProtocolError
from persistence.base import CorruptDocument

_stream_ids = itertools.count(1)
# A Sync stream speaks y-protocols like a y-websocket client; its refusals are audited as gRPC's.
GRPC = Dialect(crdt_core.frame_auth_denied, label="grpc")


class StreamPeer:
    """A room member whose traffic goes to one gRPC stream through a bounded outbox."""

    def __init__(self, kind: str, limits: OutboxLimits) -> None:
        self.peer_id = f"grpc-{kind}-{next(_stream_ids)}"
        self.outbox = Outbox(limits)
        self.overflow: str | None = None

    def deliver(self, frame: bytes, update: bytes | None) -> None:
        try:
            self.outbox.put_document(frame, update)
        except OutboxOverflow as exc:
            self._overflowed(str(exc))

    def deliver_presence(self, frame: bytes) -> None:
        try:
            self.outbox.put_presence(frame)
        except OutboxOverflow as exc:
            self._overflowed(str(exc))

    def request_close(self, code: CloseCode, detail: str | None = None) -> None:
        """The hub ends this membership (e.g. the document was set aside): the stream ends."""
        self._overflowed(reason_for(code, detail))

    def _overflowed(self, detail: str) -> None:
        if self.overflow is None:
            self.overflow = detail
            self.outbox.abort()

    def slow_consumer(self, **metadata: object) -> RpcFailure:
        return RpcFailure(429, "slow_consumer", f"the stream fell behind: {self.overflow}", **metadata)


def _doc_from_token(live: pycrdt.Doc[Any], token: str) -> pycrdt.Doc[Any]:
    try:
        return doc_at_version(live, token)
    except InvalidVersion as exc:
        raise invalid(str(exc), "invalid_version") from None


async def _state_vector_at_seq(state: AppState, name: str, seq: int) -> bytes:
    stored = await state.store.read_version(name, seq)
    try:
        return doc_from_parts(stored.parts).get_state()
    except ProtocolError as exc:
        raise CorruptDocument(f"stored updates of {name!r} do not decode: {exc}") from exc


def _presence_event(awareness_update: bytes, version: str) -> pb.DocumentEvent:
    states = [
        pb.PresenceState(client_id=entry.client_id, clock=entry.clock, state_json=entry.state)
        for entry in crdt_core.decode_awareness(awareness_update)
    ]
    return pb.DocumentEvent(presence=pb.PresenceChange(states=states), version=version)


async def subscribe(
    state: AppState, request: pb.SubscribeRequest, limits: OutboxLimits
) -> AsyncIterator[pb.DocumentEvent]:
    """First what the caller lacks (relative to its version), then every change.

    A mirror of what the caller holds filters the live traffic: an update that reached the
    room before the first event was computed adds nothing to the mirror and is not sent
    again; one that arrives later is sent exactly once. Each event's ``version`` is the
    mirror's version, the token to resume from.
    """
    name = document_name(request.document)
    start = request.WhichOneof("from")
    base_state = b"\x00"
    if start == "from_seq":
        if request.from_seq <= 0:
            raise invalid("'from_seq' must be a positive seq from GetHistory")
        base_state = await _state_vector_at_seq(state, name, request.from_seq)
    peer = StreamPeer("subscribe", limits)
    room = await state.documents.acquire(name, peer)
    peer.outbox.catch_up = room.presence_catch_up.frame
    try:
        if start == "from_version" and request.from_version:
            base_state = _doc_from_token(room.doc, request.from_version).get_state()
        await room.wait_durable()  # like a joiner's state: bounded by join_wait_seconds
        # From here to the first yield nothing awaits: the mirror and the first event are the
        # room's state at one instant, and the peer has been a member since before it.
        mirror: pycrdt.Doc[Any] = pycrdt.Doc(skip_gc=True)
        mirror.apply_update(room.doc.get_update())
        first = room.doc.get_update(base_state)
        presence = room.presence_snapshot() if request.include_presence else None
        version = version_token(mirror)
        yield pb.DocumentEvent(update=first, version=version)
        if presence is not None:
            yield _presence_event(presence, version)
        captured: list[bytes] = []
        subscription = mirror.observe(lambda event: captured.append(event.update))
        try:
            while True:
                try:
                    frame = await peer.outbox.take()
                except OutboxClosed:
                    raise peer.slow_consumer(version=version) from None
                message = crdt_core.parse_message(frame)
                if message.kind in (MessageKind.SYNC_UPDATE, MessageKind.SYNC_STEP2):
                    captured.clear()
                    mirror.apply_update(message.payload)
                    if captured:
                        change = captured[0] if len(captured) == 1 else crdt_core.merge_updates(captured)
                        version = version_token(mirror)
                        yield pb.DocumentEvent(update=change, version=version)
                elif message.kind is MessageKind.AWARENESS and request.include_presence:
                    yield _presence_event(message.payload, version)
        finally:
            mirror.unobserve(subscription)
    finally:
        room.leave(peer)


WRITER_STOP_SECONDS = 5.0  # how long a Sync call's writer may take to finish its current write


class SyncSession:
    """One ``Sync`` call: a Yjs peer speaking y-protocol messages over a bidirectional stream."""

    def __init__(
        self,
        state: AppState,
        guard: CallGuard,
        context: grpc.aio.ServicerContext[pb.SyncMessage, pb.SyncMessage],
        limits: OutboxLimits,
    ) -> None:
        self._state = state
        self._guard = guard
        self._context = context
        self.peer = StreamPeer("sync", limits)
        settings = state.settings
        self._limiter = RateLimiter(settings.max_messages_per_second, settings.message_burst)

    async def run(self, requests: AsyncIterator[pb.SyncMessage]) -> None:
        try:
            first = await anext(requests)
        except StopAsyncIteration:
            return
        name = document_name(first.document)
        principal = self._guard.require(self._context, name, Role.READ)
        access = access_for(self._state.access, principal, name, claimed_actor="grpc:sync")
        sync = SyncSteps(self.peer, access, self._state.access, GRPC)
        room = await self._state.documents.acquire(name, self.peer)
        try:
            self.peer.outbox.put_document(crdt_core.frame_sync_step1(room.state_vector()))
            self.peer.outbox.catch_up = room.presence_catch_up.frame
            presence = room.presence_snapshot_frame()
            if presence is not None:
                self.peer.outbox.put_presence(presence)
            await self._pump(room, sync, first, requests)
        finally:
            room.leave(self.peer)

    async def _pump(
        self, room: Room, sync: SyncSteps, first: pb.SyncMessage, requests: AsyncIterator[pb.SyncMessage]
    ) -> None:
        reader = asyncio.create_task(
            self._read(room, sync, first, requests), name=f"read:{self.peer.peer_id}"
        )
        writer = asyncio.create_task(self._write(), name=f"write:{self.peer.peer_id}")
        try:
            done, _ = await asyncio.wait((reader, writer), return_when=asyncio.FIRST_COMPLETED)
        finally:
            reader.cancel()
            # The writer is stopped between writes, not in one: a server-side write cancelled
            # mid-flight can leave the call unable to send its status, and the client then
            # waits for it forever. A writer stuck on a peer that does not read is cancelled
            # after a bound.
            self.peer.outbox.abort()
            await asyncio.wait((writer,), timeout=WRITER_STOP_SECONDS)
            writer.cancel()
            for task in (reader, writer):
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for task in done:
            error = task.exception()
            if error is not None:
                raise error
        if self.peer.overflow is not None:
            raise self.peer.slow_consumer()

    async def _write(self) -> None:
        while True:
            try:
                frame = await self.peer.outbox.take()
            except OutboxClosed:
                return
            await self._context.write(pb.SyncMessage(message=frame))

    async def _read(
        self, room: Room, sync: SyncSteps, first: pb.SyncMessage, requests: AsyncIterator[pb.SyncMessage]
    ) -> None:
        if first.message:
            await sync.handle(room, _parsed(first.message))
        async for request in requests:
            if request.document:
                raise invalid("'document' is named in the first message only")
            if not self._limiter.allow():
                raise RpcFailure(429, "rate_limited", "too many messages per second")
            await sync.handle(room, _parsed(request.message))


def _parsed(data: bytes) -> crdt_core.Message:
    try:
        return crdt_core.parse_message(data)
    except ProtocolError as exc:
        raise invalid(f"not a y-protocol message: {exc}", "invalid_message") from None
