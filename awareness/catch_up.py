"""PresenceCatchUp: one shared message that brings any lagging receiver's presence up to date.

A receiver whose socket drains slower than presence changes would otherwise pile up
frames, or cost one coalescing per receiver (a decode and an encode of every queued
entry, for every connection: O(n) encodes per change in a crowded room). Instead its
outbox drops the backlog and later sends this message: every live state plus the
removals of the last ``remember_seconds`` (a receiver that skipped a removal must still
learn that the client left). It is encoded at most once per presence broadcast, however
many receivers lag, and shared by all of them (the same bytes object).

Removals are remembered for y-protocols' outdated timeout (30 s): after that a Yjs
client drops a state nobody renewed on its own, so an older removal is not needed.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

import crdt_core
from crdt_core import AwarenessEntry

NULL_STATE = "null"
REMEMBER_REMOVALS_SECONDS = 30.0  # y-protocols' outdatedTimeout
MAX_REMEMBERED_REMOVALS = 10_000  # the default entry limit of a document's presence


class PresenceCatchUp:
    def __init__(
        self,
        live_states: Callable[[], list[AwarenessEntry]],
        *,
        clock: Callable[[], float] = time.monotonic,
        remember_seconds: float = REMEMBER_REMOVALS_SECONDS,
        max_removals: int = MAX_REMEMBERED_REMOVALS,
    ) -> None:
        self._live_states = live_states
        self._clock = clock
        self._remember = remember_seconds
        self._max_removals = max_removals
        # client id -> (removal entry, when it was noted), oldest first.
        self._removals: OrderedDict[int, tuple[AwarenessEntry, float]] = OrderedDict()
        self._frame: bytes | None = None
        self.builds = 0  # how many times the message was encoded (for tests and metrics)

    def note(self, entries: Iterable[AwarenessEntry]) -> None:
        """Entries about to be broadcast: removals are remembered, a new state forgets one."""
        now = self._clock()
        for entry in entries:
            if entry.state == NULL_STATE:
                self._removals.pop(entry.client_id, None)
                self._removals[entry.client_id] = (entry, now)
                if len(self._removals) > self._max_removals:
                    self._removals.popitem(last=False)
            else:
                self._removals.pop(entry.client_id, None)

    def invalidate(self) -> None:
        """A presence broadcast left: the next catch-up is encoded afresh."""
        self._frame = None

    def frame(self) -> bytes:
        """The framed awareness message: every live state and the recent removals."""
        if self._frame is None:
            deadline = self._clock() - self._remember
            while self._removals:
                _, (_, noted_at) = next(iter(self._removals.items()))
                if noted_at >= deadline:
                    break
                self._removals.popitem(last=False)
            entries = self._live_states()
            live = {entry.client_id for entry in entries}
            entries.extend(entry for client_id, (entry, _) in self._removals.items() if client_id not in live)
            self._frame = crdt_core.frame_awareness(crdt_core.encode_awareness(entries))
            self.builds += 1
        return self._frame
