"""Presence of one document: the newest awareness state of every client, who owns it, and expiry.

The rules follow y-protocols' awareness: per client id the highest clock wins; a state of
``null`` means the client left; a state not renewed within the timeout is removed.
Owners are opaque keys (a connection, an agent session, a remote hub node): when an
owner goes away, every client id it announced is removed at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass

import crdt_core
from crdt_core import AwarenessEntry

NULL_STATE = "null"


@dataclass(slots=True)
class ClientPresence:
    clock: int
    state: str  # JSON text
    owner: Hashable
    renewed_at: float


class PresenceRegistry:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clients: dict[int, ClientPresence] = {}
        self._owned: dict[Hashable, set[int]] = {}
        self._clock = clock

    def __len__(self) -> int:
        return sum(1 for presence in self._clients.values() if presence.state != NULL_STATE)

    def apply(self, awareness_update: bytes, owner: Hashable) -> list[AwarenessEntry]:
        """Apply an encoded awareness update; return the entries that changed anything.

        Raises ``crdt_core.ProtocolError`` for bytes that do not decode; then nothing changes.
        """
        entries = crdt_core.decode_awareness(awareness_update)
        return self.apply_entries(entries, owner)

    def apply_entries(self, entries: Iterable[AwarenessEntry], owner: Hashable) -> list[AwarenessEntry]:
        now = self._clock()
        changed: list[AwarenessEntry] = []
        for entry in entries:
            current = self._clients.get(entry.client_id)
            removal = entry.state == NULL_STATE
            if current is not None:
                newer = entry.clock > current.clock
                # Equal clock: only a removal of a live state counts (y-protocols does the same).
                same_clock_removal = entry.clock == current.clock and removal and current.state != NULL_STATE
                if not (newer or same_clock_removal):
                    if entry.clock == current.clock and current.owner == owner:
                        current.renewed_at = now
                    continue
                self._disown(entry.client_id, current.owner)
            elif removal:
                continue
            self._clients[entry.client_id] = ClientPresence(entry.clock, entry.state, owner, now)
            self._owned.setdefault(owner, set()).add(entry.client_id)
            changed.append(entry)
        return changed

    def remove_owner(self, owner: Hashable) -> list[AwarenessEntry]:
        """Mark every live client of ``owner`` as gone; return the removal entries to broadcast."""
        removals = []
        for client_id in sorted(self._owned.pop(owner, set())):
            presence = self._clients.pop(client_id, None)
            if presence is not None and presence.state != NULL_STATE:
                removals.append(AwarenessEntry(client_id, presence.clock + 1, NULL_STATE))
        return removals

    def expire(self, timeout_seconds: float) -> list[AwarenessEntry]:
        """Remove states not renewed within the timeout; return the removal entries."""
        deadline = self._clock() - timeout_seconds
        stale = [cid for cid, p in self._clients.items() if p.renewed_at < deadline]
        removals = []
        for client_id in stale:
            presence = self._clients.pop(client_id)
            self._disown(client_id, presence.owner)
            if presence.state != NULL_STATE:
                removals.append(AwarenessEntry(client_id, presence.clock + 1, NULL_STATE))
        return removals

    def snapshot(self) -> list[AwarenessEntry]:
        """Every live state, for a client that just joined or asked (query-awareness)."""
        return [
            AwarenessEntry(client_id, presence.clock, presence.state)
            for client_id, presence in self._clients.items()
            if presence.state != NULL_STATE
        ]

    def states(self) -> dict[int, str]:
        return {entry.client_id: entry.state for entry in self.snapshot()}

    def owners(self) -> list[Hashable]:
        return list(self._owned)

    def _disown(self, client_id: int, owner: Hashable) -> None:
        owned = self._owned.get(owner)
        if owned is not None:
            owned.discard(client_id)
            if not owned:
                del self._owned[owner]
