"""A connection's bounded outbox: frames waiting for the one writer task of that socket.

Document frames go before presence frames, so a presence storm cannot delay edits, and a
presence backlog never closes a connection: presence is only ever the newest state. The
presence lane holds the room's framed broadcasts as they are (one bytes object shared by
every receiver, nothing re-encoded per connection). When it falls more than
``MAX_PRESENCE_FRAMES`` behind, or document frames need its room, the backlog is dropped
and the lane owes its peer one catch-up message instead: the room's shared one
(awareness/catch_up.py, encoded at most once per broadcast however many peers lag). An
outbox without a catch-up source coalesces its backlog itself (a cost per connection).

Presence may also be paced (``presence_rate``, bytes per second for this peer): a crowd's
presence is n² bytes (everyone's state to everyone), which no client should have to read
in full. Over its rate a peer's presence waits, its backlog turning into the catch-up
message, so it gets the newest state of everyone at the rate it is allowed; document
frames are never paced.
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
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import crdt_core
from collab_server.settings import Settings

# Presence frames a lane may hold before its backlog is replaced by one catch-up message.
MAX_PRESENCE_FRAMES = 4
# The shared framed catch-up message of a room (every live state and recent removals).
CatchUpSource = Callable[[], bytes]
# Presence bytes per second one peer may get now (read at each send; 0 or less: no pacing).
PresenceRate = Callable[[], float]


@dataclass(frozen=True, slots=True)
class OutboxLimits:
    max_messages: int
    max_bytes: int

    @classmethod
    def of(cls, settings: Settings) -> OutboxLimits:
        return cls(settings.outbox_max_messages, settings.outbox_max_bytes)


class MergeCounter(Protocol):
    """Where merges are counted (the hub's ``nova_outbox_merges_total``)."""

    def inc(self, amount: float = 1) -> None: ...


# Shared stand-ins for an empty lane (an idle hub holds thousands of outboxes, and an empty
# deque is ~600 bytes): never appended to, a lane gets its own deque for its first frame.
_NO_DOCUMENTS: deque[tuple[bytes, bytes | None]] = deque(maxlen=0)
_NO_PRESENCE: deque[bytes] = deque(maxlen=0)


class OutboxOverflow(Exception):
    """The peer cannot keep up; its connection must be closed."""


class OutboxClosed(Exception):
    pass


class Outbox:
    # An idle hub holds one per connection: no attribute dict.
    __slots__ = (
        "_bytes",
        "_closed",
        "_documents",
        "_limits",
        "_merge_counter",
        "_presence",
        "_presence_bytes",
        "_presence_held_until",
        "_presence_owed",
        "_presence_stamp",
        "_presence_tokens",
        "_waiter",
        "catch_up",
        "merges",
        "presence_dropped",
        "presence_rate",
    )

    def __init__(
        self, limits: OutboxLimits, catch_up: CatchUpSource | None = None, merges: MergeCounter | None = None
    ) -> None:
        self._limits = limits
        self._merge_counter = merges
        # Document lane: (frame, update or None). The update is kept to merge on overflow.
        self._documents: deque[tuple[bytes, bytes | None]] = _NO_DOCUMENTS
        # Presence lane: framed awareness messages, shared with every other receiver.
        self._presence: deque[bytes] = _NO_PRESENCE
        self._presence_bytes = 0
        # The backlog was dropped: the next presence frame sent is the catch-up message.
        self._presence_owed = False
        self.catch_up = catch_up
        self.presence_rate: PresenceRate | None = None
        # Token bucket of presence bytes (may go negative: a large frame is paid back later).
        self._presence_tokens = 0.0
        self._presence_stamp = float("-inf")
        # A presence message is on its way to the peer until its drain barrier returns (or then).
        self._presence_held_until = 0.0
        self._bytes = 0
        self._waiter: asyncio.Future[None] | None = None  # the writer's, made only while it waits
        self._closed = False
        self.merges = 0
        self.presence_dropped = 0  # presence frames replaced by a catch-up message

    def __len__(self) -> int:
        return len(self._documents) + len(self._presence) + self._presence_owed

    @property
    def has_documents(self) -> bool:
        return bool(self._documents)

    @property
    def queued_bytes(self) -> int:
        return self._bytes

    def put_document(self, frame: bytes, update: bytes | None = None) -> None:
        """Queue a document frame; ``update`` (the unframed sync update) allows merging."""
        if self._closed:
            return
        if self._documents is _NO_DOCUMENTS:
            self._documents = deque()
        self._documents.append((frame, update))
        self._bytes += len(frame)
        if self._over_limits(len(frame)) and self._presence:
            self._drop_presence()  # presence makes room first: it is only ever the newest state
        if self._over_limits(len(frame)):
            self._shrink(len(frame))
        self._wake()

    def put_presence(self, frame: bytes) -> None:
        """Queue a framed awareness message (kept as is: the same bytes go to every peer)."""
        if self._closed:
            return
        if self._presence_owed:
            return  # the catch-up message, built when it is sent, will hold this change too
        if self._presence is _NO_PRESENCE:
            self._presence = deque()
        self._presence.append(frame)
        self._presence_bytes += len(frame)
        self._bytes += len(frame)
        if len(self._presence) > 1 and (
            len(self._presence) > MAX_PRESENCE_FRAMES or self._over_limits(len(frame))
        ):
            self._drop_presence()
        if self._over_limits(len(frame)):
            raise OutboxOverflow(f"{len(self)} messages, {self._bytes} bytes queued")
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def pace_presence(self, catch_up: CatchUpSource, rate: PresenceRate) -> None:
        """Follow a room's presence: its shared catch-up message, and this peer's rate."""
        self.catch_up = catch_up
        self.presence_rate = rate

    def hold_presence(self, seconds: float) -> None:
        """A presence message was sent with a drain barrier: no more until it returns."""
        self._presence_held_until = time.monotonic() + seconds

    def release_presence(self) -> None:
        """The peer has read the last presence message: the next may go."""
        self._presence_held_until = 0.0
        if self._presence or self._presence_owed:
            self._wake()

    def spend_presence(self, size: int) -> bool:
        """Whether ``size`` bytes of presence may be sent now (and if so, count them)."""
        now = time.monotonic()
        if now < self._presence_held_until:
            return False
        if self.presence_rate is None:
            return True
        rate = self.presence_rate()
        if rate <= 0:
            return True
        # The bucket holds at most one second of the rate: a quiet peer gets a burst at once.
        self._presence_tokens = min(rate, self._presence_tokens + (now - self._presence_stamp) * rate)
        self._presence_stamp = now
        if self._presence_tokens <= 0:
            return False
        self._presence_tokens -= size
        return True

    def presence_wait(self) -> float | None:
        """Seconds until paced presence may go again; None when no presence waits for its turn."""
        if not (self._presence or self._presence_owed):
            return None
        now = time.monotonic()
        wait = max(0.0, self._presence_held_until - now)
        rate = self.presence_rate() if self.presence_rate is not None else 0.0
        if rate > 0:
            missing = -(self._presence_tokens + (now - self._presence_stamp) * rate)
            wait = max(wait, missing / rate)
        return wait + 0.001

    def _drop_presence(self) -> None:
        """Replace the presence backlog by one catch-up message (coalesced here without a source)."""
        self.presence_dropped += len(self._presence)
        self._bytes -= self._presence_bytes
        if self.catch_up is not None:
            self._presence = _NO_PRESENCE
            self._presence_bytes = 0
            self._presence_owed = True
            return
        payloads = [crdt_core.parse_message(frame).payload for frame in self._presence]
        merged = crdt_core.frame_awareness(crdt_core.coalesce_awareness(payloads))
        self._presence.clear()
        self._presence.append(merged)
        self._presence_bytes = len(merged)
        self._bytes += len(merged)

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
            if self._merge_counter is not None:
                self._merge_counter.inc()
        if self._over_limits(incoming):
            raise OutboxOverflow(f"{len(self)} messages, {self._bytes} bytes queued")

    def take_nowait(self) -> bytes | None:
        if self._documents:
            frame, _ = self._documents.popleft()
            self._bytes -= len(frame)
            if not self._documents:
                self._documents = _NO_DOCUMENTS  # an idle outbox keeps no deque
            return frame
        if self._presence_owed and self.catch_up is not None:
            catch_up = self.catch_up()  # shared and cached: free to look at before it is sent
            if not self.spend_presence(len(catch_up)):
                return None
            self._presence_owed = False
            return catch_up
        if self._presence:
            if not self.spend_presence(len(self._presence[0])):
                return None
            frame = self._presence.popleft()
            self._presence_bytes -= len(frame)
            self._bytes -= len(frame)
            if not self._presence:
                self._presence = _NO_PRESENCE
            return frame
        return None

    async def take(self) -> bytes:
        """The next frame to send; raises OutboxClosed once closed and drained."""
        while True:
            frame = self.take_nowait()
            if frame is not None:
                return frame
            if self._closed:
                raise OutboxClosed
            wait = self.presence_wait()
            if wait is None:
                await self.arrival()
                continue
            # Paced presence: its turn comes after ``wait``, or a document frame comes first.
            try:
                async with asyncio.timeout(wait):
                    await self.arrival()
            except TimeoutError:
                pass

    @property
    def closed(self) -> bool:
        return self._closed

    def arrival(self) -> asyncio.Future[None]:
        """A future done when a frame is queued or the outbox closes (the one writer's wait)."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiter = waiter
        if self._closed:
            waiter.set_result(None)
        return waiter

    def abort(self) -> None:
        """Drop everything queued and close: the peer is being disconnected."""
        self._documents = _NO_DOCUMENTS
        self._presence = _NO_PRESENCE
        self._presence_bytes = 0
        self._presence_owed = False
        self._bytes = 0
        self.close()

    def close(self) -> None:
        """Stop accepting frames; the writer drains what is queued, then stops."""
        self._closed = True
        self._wake()
