"""Presence of one document: the newest awareness state of every client, who owns it, and expiry.

The rules follow y-protocols' awareness: per client id the highest clock wins; a state of
``null`` means the client left; a state not renewed within the timeout is removed.
Owners are opaque keys (a connection, an agent session, a remote hub node). The first
owner that announces a client id owns it until it leaves: nobody else may change or remove
that entry, whatever clock it sends. When an owner goes away, every client id it announced
is removed at once. Limits bound what one owner and one document can hold.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field

import crdt_core
from awareness.identity import Identity, InvalidState, parse_state, stamp
from crdt_core import AwarenessEntry

NULL_STATE = "null"


@dataclass(frozen=True, slots=True)
class PresenceLimits:
    max_state_bytes: int = 16 * 1024  # one client's state (JSON text, UTF-8)
    max_clients_per_owner: int = 4  # client ids one connection may announce
    max_entries: int = 10_000  # client ids per document
    max_bytes: int = 8 * 1024 * 1024  # all states of a document together


@dataclass(frozen=True, slots=True)
class Refusal:
    client_id: int
    reason: str


@dataclass(slots=True)
class Applied:
    """What one awareness update did: the entries to broadcast and the ones refused."""

    changed: list[AwarenessEntry] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)


@dataclass(slots=True)
class ClientPresence:
    clock: int
    state: str  # JSON text
    owner: Hashable
    renewed_at: float


class PresenceRegistry:
    def __init__(
        self, clock: Callable[[], float] = time.monotonic, limits: PresenceLimits | None = None
    ) -> None:
        self._clients: dict[int, ClientPresence] = {}
        self._owned: dict[Hashable, set[int]] = {}
        self._clock = clock
        self.limits = limits or PresenceLimits()
        self.state_bytes = 0  # sum of the stored states' lengths, against ``limits.max_bytes``

    def __len__(self) -> int:
        return sum(1 for presence in self._clients.values() if presence.state != NULL_STATE)

    def apply(
        self,
        awareness_update: bytes,
        owner: Hashable,
        *,
        identity: Identity | None = None,
        limit_owner: bool = True,
    ) -> Applied:
        """Apply an encoded awareness update from ``owner``.

        Raises ``crdt_core.ProtocolError`` for bytes that do not decode; then nothing changes.
        """
        entries = crdt_core.decode_awareness(awareness_update)
        return self.apply_entries(entries, owner, identity=identity, limit_owner=limit_owner)

    def apply_entries(
        self,
        entries: Iterable[AwarenessEntry],
        owner: Hashable,
        *,
        identity: Identity | None = None,
        limit_owner: bool = True,
    ) -> Applied:
        """Apply entries from ``owner``; with ``identity``, states are stamped with it.

        ``limit_owner`` False: the owner may hold any number of client ids (a remote hub
        node, which relays many clients and enforced the limits on its own connections).
        """
        now = self._clock()
        result = Applied()
        for entry in entries:
            current = self._clients.get(entry.client_id)
            removal = entry.state == NULL_STATE
            if current is not None:
                mine = current.owner == owner
                newer = entry.clock > current.clock
                # Equal clock: only a removal of a live state counts (y-protocols does the same).
                same_clock_removal = entry.clock == current.clock and removal and current.state != NULL_STATE
                if not (newer or same_clock_removal):
                    # Not a change: a renewal from the owner, or an echo (y-websocket clients
                    # send back the states they receive), which is ignored without complaint.
                    if mine and entry.clock == current.clock:
                        current.renewed_at = now
                    continue
                if not mine:
                    result.refused.append(Refusal(entry.client_id, "client id belongs to another connection"))
                    continue
            elif removal:
                continue
            state = entry.state
            if not removal:
                try:
                    state = self._checked(state, identity)
                except InvalidState as exc:
                    result.refused.append(Refusal(entry.client_id, str(exc)))
                    continue
            previous = len(current.state) if current is not None else 0
            if not removal and self.state_bytes - previous + len(state) > self.limits.max_bytes:
                result.refused.append(Refusal(entry.client_id, "presence of this document is full (bytes)"))
                continue
            if current is None:
                owned = self._owned.get(owner, ())
                if limit_owner and len(owned) >= self.limits.max_clients_per_owner:
                    result.refused.append(
                        Refusal(entry.client_id, f"at most {self.limits.max_clients_per_owner} client ids")
                    )
                    continue
                if len(self._clients) >= self.limits.max_entries:
                    result.refused.append(Refusal(entry.client_id, "presence of this document is full"))
                    continue
            if removal and not limit_owner:
                # A remote node's client left: forget it entirely, so that client may
                # reconnect anywhere (nodes are trusted; they enforce ownership locally).
                self._forget(entry.client_id)
                result.changed.append(entry)
                continue
            self.state_bytes += len(state) - previous
            self._clients[entry.client_id] = ClientPresence(entry.clock, state, owner, now)
            self._owned.setdefault(owner, set()).add(entry.client_id)
            result.changed.append(
                entry if state is entry.state else AwarenessEntry(entry.client_id, entry.clock, state)
            )
        return result

    def _checked(self, state: str, identity: Identity | None) -> str:
        """The state to keep: within the size limit, valid JSON, stamped when auth is on."""
        if len(state) > self.limits.max_state_bytes:
            raise InvalidState(f"state over {self.limits.max_state_bytes} bytes")
        if identity is None:
            parse_state(state)
        else:
            state = stamp(state, identity)
        if len(state.encode("utf-8")) > self.limits.max_state_bytes:
            raise InvalidState(f"state over {self.limits.max_state_bytes} bytes")
        return state

    def _forget(self, client_id: int) -> None:
        presence = self._clients.pop(client_id, None)
        if presence is not None:
            self.state_bytes -= len(presence.state)
            self._disown(client_id, presence.owner)

    def remove_owner(self, owner: Hashable) -> list[AwarenessEntry]:
        """Mark every live client of ``owner`` as gone; return the removal entries to broadcast."""
        removals = []
        for client_id in sorted(self._owned.pop(owner, set())):
            presence = self._clients.pop(client_id, None)
            if presence is not None:
                self.state_bytes -= len(presence.state)
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
            self.state_bytes -= len(presence.state)
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

    def owner_of(self, client_id: int) -> Hashable | None:
        presence = self._clients.get(client_id)
        return presence.owner if presence is not None else None

    def owners(self) -> list[Hashable]:
        return list(self._owned)

    def _disown(self, client_id: int, owner: Hashable) -> None:
        owned = self._owned.get(owner)
        if owned is not None:
            owned.discard(client_id)
            if not owned:
                del self._owned[owner]
