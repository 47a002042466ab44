"""A connection's bounded outbox: frames waiting for the one writer task of that socket.

Document frames go before presence frames, so a presence storm cannot delay edits.
When too many document updates queue up (a slow reader), they are merged into one
update; if the outbox is still over its limits, it reports overflow and the connection is
closed so the client re-syncs on reconnect. The byte limit applies to what is queued
besides the next frame to be sent and the frame being added: either may be of any size (a
joiner's state of a large document, a large paste), so an outbox always accepts one frame
when it is empty, a large frame never closes a peer whose backlog is small, and what is
queued stays below the limit plus two frames. Nothing here grows without bound.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass

import crdt_core


@dataclass(frozen=True, slots=True)
class OutboxLimits:
    max_messages: int
    max_bytes: int


# Shared stand-ins for an empty lane: never appended to (a lane gets its own deque first).
_EMPTY_DOCUMENTS: deque[tuple[bytes, bytes | None]] = deque(maxlen=0)
_EMPTY_PRESENCE: deque[bytes] = deque(maxlen=0)


class OutboxOverflow(Exception):
    """The peer cannot keep up; its connection must be closed."""


class OutboxClosed(Exception):
    pass


class Outbox:
    """One connection's queue. An idle outbox holds no deque and no future: those are made
    when a frame arrives or the writer waits (an idle hub holds thousands of outboxes)."""

    __slots__ = ("_bytes", "_closed", "_documents", "_limits", "_presence", "_waiter", "merges")

    def __init__(self, limits: OutboxLimits) -> None:
        self._limits = limits
        # Document lane: (frame, update or None). The update is kept to merge on overflow.
        self._documents: deque[tuple[bytes, bytes | None]] = _EMPTY_DOCUMENTS
        # Presence lane: raw awareness updates, coalesced into one frame when taken.
        self._presence: deque[bytes] = _EMPTY_PRESENCE
        self._bytes = 0
        self._waiter: asyncio.Future[None] | None = None  # the writer, while it waits
        self._closed = False
        self.merges = 0

    def __len__(self) -> int:
        return len(self._documents) + len(self._presence)

    @property
    def queued_bytes(self) -> int:
        return self._bytes

    def put_document(self, frame: bytes, update: bytes | None = None) -> None:
        """Queue a document frame; ``update`` (the unframed sync update) allows merging."""
        if self._closed:
            return
        if self._documents is _EMPTY_DOCUMENTS:
            self._documents = deque()
        self._documents.append((frame, update))
        self._bytes += len(frame)
        if self._over_limits(len(frame)):
            self._shrink(len(frame))
        self._wake()

    def put_presence(self, awareness_update: bytes) -> None:
        if self._closed:
            return
        if self._presence is _EMPTY_PRESENCE:
            self._presence = deque()
        self._presence.append(awareness_update)
        self._bytes += len(awareness_update)
        if len(self._presence) > 1 and self._over_limits(len(awareness_update)):
            merged = crdt_core.coalesce_awareness(list(self._presence))
            self._bytes -= sum(len(item) for item in self._presence)
            self._presence.clear()
            self._presence.append(merged)
            self._bytes += len(merged)
        if self._over_limits(len(awareness_update)):
            raise OutboxOverflow(f"{len(self)} messages, {self._bytes} bytes queued")
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _over_limits(self, incoming: int) -> bool:
        """Over the message count, or over the byte limit not counting the next frame to be
        sent nor the incoming one: those two may be of any size."""
        if len(self) > self._limits.max_messages:
            return True
        head = len(self._documents[0][0]) if len(self._documents) > 1 else 0
        return self._bytes - incoming - head > self._limits.max_bytes

    def _shrink(self, incoming: int) -> None:
        # Merge the run of plain updates after the last frame that must stay as it is
        # (a sync step 2 marks the client synced, so it is never folded into an update).
        items = list(self._documents)
        start = len(items)
        # The head is never merged: it may be large (it is exempt from the byte limit), and
        # folding more into it would let it grow without bound.
        while start > 1 and items[start - 1][1] is not None:
            start -= 1
        run = items[start:]
        if len(run) > 1:
            merged = crdt_core.merge_updates([update for _, update in run if update is not None])
            frame = crdt_core.frame_update(merged)
            self._bytes -= sum(len(f) for f, _ in run)
            for _ in run:
                self._documents.pop()
            self._documents.append((frame, merged))
            self._bytes += len(frame)
            self.merges += 1
        if self._over_limits(incoming):
            raise OutboxOverflow(f"{len(self)} messages, {self._bytes} bytes queued")

    def take_nowait(self) -> bytes | None:
        if self._documents:
            frame, _ = self._documents.popleft()
            self._bytes -= len(frame)
            if not self._documents:
                self._documents = _EMPTY_DOCUMENTS  # an idle outbox keeps no deque
            return frame
        if self._presence:
            items = list(self._presence)
            self._presence = _EMPTY_PRESENCE
            self._bytes -= sum(len(item) for item in items)
            merged = items[0] if len(items) == 1 else crdt_core.coalesce_awareness(items)
            return crdt_core.frame_awareness(merged)
        return None

    async def take(self) -> bytes:
        """The next frame to send; raises OutboxClosed once closed and drained."""
        while True:
            frame = self.take_nowait()
            if frame is not None:
                return frame
            if self._closed:
                raise OutboxClosed
            await self.arrival()

    @property
    def closed(self) -> bool:
        return self._closed

    def arrival(self) -> asyncio.Future[None]:
        """A future done when a frame is queued or the outbox closes; the one writer awaits it
        directly (an idle socket's writer then holds no coroutine frame besides its own)."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiter = waiter
        if self._closed or self._documents or self._presence:
            waiter.set_result(None)
        return waiter

    def abort(self) -> None:
        """Drop everything queued and close: the peer is being disconnected."""
        self._documents = _EMPTY_DOCUMENTS
        self._presence = _EMPTY_PRESENCE
        self._bytes = 0
        self.close()

    def close(self) -> None:
        """Stop accepting frames; the writer drains what is queued, then stops."""
        self._closed = True
        self._wake()
