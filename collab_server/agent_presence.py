"""Presence for agents that never open a socket: set over HTTP with a time-to-live.

Each agent gets a stable awareness client id (derived from document, caller and agent id)
and a membership in the room (so the document stays loaded while it is present). Everyone
sees it like any other client; when its TTL lapses without renewal it is removed for
everyone. Leases are keyed by the caller (the token's subject when auth is on), so one
caller can neither renew nor remove another's agent, and with auth on the identity shown
is stamped from the token like a connection's.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

from awareness.identity import Identity
from collab_server.room import Room, SilentPeer
from crdt_core import AwarenessEntry

MAX_TTL_SECONDS = 3600.0  # API contract: a lease longer than an hour is a forgotten agent, not presence


class PresenceRefused(Exception):
    """The room refused the agent's state (too large, or the document's presence is full)."""


@dataclass(slots=True)
class Lease:
    room: Room
    peer: SilentPeer
    client_id: int
    clock: int
    expires_at: float


def client_id_for(document: str, caller: str, agent_id: str) -> int:
    digest = hashlib.sha256(f"{document}\0{caller}\0{agent_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") | 1  # 32-bit like yjs ids, never 0


class AgentPresence:
    def __init__(self) -> None:
        self._leases: dict[tuple[str, str, str], Lease] = {}

    def __len__(self) -> int:
        return len(self._leases)

    def has(self, document: str, caller: str, agent_id: str) -> bool:
        return (document, caller, agent_id) in self._leases

    def set(
        self,
        room: Room,
        caller: str,
        agent_id: str,
        state: dict[str, Any],
        *,
        ttl_seconds: float,
        identity: Identity | None = None,
    ) -> int:
        """Set or renew ``caller``'s agent presence; returns its awareness client id.

        Raises PresenceRefused (nothing changed) when the room refuses the state.
        """
        if not 0 < ttl_seconds <= MAX_TTL_SECONDS:  # also refuses NaN
            raise ValueError(f"ttl must be within (0, {MAX_TTL_SECONDS:.0f}] seconds")
        key = (room.name, caller, agent_id)
        lease = self._leases.get(key)
        new = lease is None
        if lease is None:
            peer = SilentPeer(f"agent:{agent_id}")
            room.join(peer)
            lease = Lease(room, peer, client_id_for(room.name, caller, agent_id), 0, 0.0)
        entry = AwarenessEntry(lease.client_id, lease.clock + 1, json.dumps(state))
        refused = room.apply_presence_entries([entry], lease.peer, identity)
        if refused:
            if new:
                room.leave(lease.peer)
            raise PresenceRefused(refused[0].reason)
        lease.clock += 1
        lease.expires_at = time.monotonic() + ttl_seconds
        self._leases[key] = lease
        return lease.client_id

    def remove(self, document: str, caller: str, agent_id: str) -> bool:
        lease = self._leases.pop((document, caller, agent_id), None)
        if lease is None:
            return False
        lease.room.leave(lease.peer)  # removes its presence for everyone
        return True

    def expire(self) -> list[tuple[str, str, str]]:
        now = time.monotonic()
        gone = [key for key, lease in self._leases.items() if lease.expires_at <= now]
        for document, caller, agent_id in gone:
            self.remove(document, caller, agent_id)
        return gone
