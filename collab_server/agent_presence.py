"""Presence for agents that never open a socket: set over HTTP with a time-to-live.

Each agent gets a stable awareness client id (derived from document and agent id) and a
membership in the room (so the document stays loaded while it is present). Everyone sees
it like any other client; when its TTL lapses without renewal it is removed for everyone.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

from collab_server.room import Room, SilentPeer
from crdt_core import AwarenessEntry

MAX_TTL_SECONDS = 3600.0


@dataclass(slots=True)
class Lease:
    room: Room
    peer: SilentPeer
    client_id: int
    clock: int
    expires_at: float


def client_id_for(document: str, agent_id: str) -> int:
    digest = hashlib.sha256(f"{document}\0{agent_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") | 1  # 32-bit like yjs ids, never 0


class AgentPresence:
    def __init__(self) -> None:
        self._leases: dict[tuple[str, str], Lease] = {}

    def __len__(self) -> int:
        return len(self._leases)

    def has(self, document: str, agent_id: str) -> bool:
        return (document, agent_id) in self._leases

    def set(self, room: Room, agent_id: str, state: dict[str, Any], ttl_seconds: float) -> int:
        """Set or renew an agent's presence; returns its awareness client id."""
        key = (room.name, agent_id)
        lease = self._leases.get(key)
        if lease is None:
            peer = SilentPeer(f"agent:{agent_id}")
            room.join(peer)
            lease = Lease(room, peer, client_id_for(room.name, agent_id), 0, 0.0)
            self._leases[key] = lease
        lease.clock += 1
        lease.expires_at = time.monotonic() + min(ttl_seconds, MAX_TTL_SECONDS)
        entry = AwarenessEntry(lease.client_id, lease.clock, json.dumps(state))
        room.apply_presence_entries([entry], lease.peer)
        return lease.client_id

    def remove(self, document: str, agent_id: str) -> bool:
        lease = self._leases.pop((document, agent_id), None)
        if lease is None:
            return False
        lease.room.leave(lease.peer)  # removes its presence for everyone
        return True

    def expire(self) -> list[tuple[str, str]]:
        now = time.monotonic()
        gone = [key for key, lease in self._leases.items() if lease.expires_at <= now]
        for document, agent_id in gone:
            self.remove(document, agent_id)
        return gone
