"""Updates held back because what they build on has not arrived ("pending" in Yjs terms).

pycrdt keeps such an update inside the document until its dependencies arrive, without
saying so and without a way to drop it. A client that reconnects and types at once causes
this for a moment; a hostile one could pile up held-back bytes forever. So after every
apply the room asks this ledger what part of the update was held back: the part the
document's state vector does not cover (structs) or deletes of items it does not have.
Held-back bytes are counted per sender and per document, against limits, and the ledger
notices when later updates integrate them. Dropping a sender's held-back bytes means
rebuilding the document without them (the room does that when the sender leaves).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable
from dataclasses import dataclass

import crdt_core

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class PendingLimits:
    per_connection: int = 8 * MIB
    per_document: int = 32 * MIB


class PendingLimitExceeded(Exception):
    """A sender's held-back updates passed a limit: its connection must be closed (4412)."""


@dataclass(frozen=True, slots=True)
class HeldBack:
    owner: Hashable | None  # None: another hub node (remote updates)
    update: bytes  # the part of the update the document has not integrated


_var_uint = crdt_core.decode_var_uint  # raises ProtocolError on a truncated or oversized varuint


def decode_state_vector(state_vector: bytes) -> dict[int, int]:
    count, offset = _var_uint(state_vector, 0)
    clocks: dict[int, int] = {}
    for _ in range(count):
        client, offset = _var_uint(state_vector, offset)
        clocks[client], offset = _var_uint(state_vector, offset)
    return clocks


def held_back_part(update: bytes, state_vector: bytes) -> bytes | None:
    """What of ``update`` a document with ``state_vector`` (read after applying it) holds back.

    None when everything was integrated. Raises ProtocolError for bytes that do not decode.
    """
    missing = crdt_core.diff_update(update, state_vector)
    groups, offset = _var_uint(missing, 0)
    if groups > 0:
        return missing  # structs the document could not integrate
    # Only the delete set is left: held back if it deletes items the document does not have.
    clocks: dict[int, int] | None = None
    clients, offset = _var_uint(missing, offset)
    for _ in range(clients):
        client, offset = _var_uint(missing, offset)
        ranges, offset = _var_uint(missing, offset)
        for _ in range(ranges):
            clock, offset = _var_uint(missing, offset)
            length, offset = _var_uint(missing, offset)
            if clocks is None:
                clocks = decode_state_vector(state_vector)
            if clock + length > clocks.get(client, 0):
                return missing
    return None


class PendingLedger:
    """Held-back updates of one document, by sender."""

    def __init__(self, limits: PendingLimits) -> None:
        self.limits = limits
        self.records: list[HeldBack] = []
        self._by_owner: Counter[Hashable | None] = Counter()
        self.total_bytes = 0

    def owner_bytes(self, owner: Hashable | None) -> int:
        return self._by_owner.get(owner, 0)

    def has(self, owner: Hashable | None) -> bool:
        return owner in self._by_owner

    def record(self, update: bytes, owner: Hashable | None, state_vector: bytes) -> int:
        """Note what of ``update`` (just applied) was held back; return its size in bytes."""
        held = held_back_part(update, state_vector)
        if held is None:
            return 0
        self._add(HeldBack(owner, held))
        return len(held)

    def over_limit(self, owner: Hashable | None) -> str | None:
        """Why ``owner`` must stop (a limit it crossed), or None."""
        if owner is not None and self.owner_bytes(owner) > self.limits.per_connection:
            return f"{self.owner_bytes(owner)} bytes > {self.limits.per_connection} per connection"
        if self.total_bytes > self.limits.per_document:
            return f"{self.total_bytes} bytes > {self.limits.per_document} per document"
        return None

    def recheck(self, state_vector: bytes) -> None:
        """Forget what later updates integrated (call after the document's state changed)."""
        records, self.records = self.records, []
        self._by_owner.clear()
        self.total_bytes = 0
        for held in records:
            rest = held_back_part(held.update, state_vector)
            if rest is not None:
                self._add(HeldBack(held.owner, rest))

    def drop(self, owner: Hashable | None) -> bool:
        """Forget ``owner``'s records; True if it had any (the document must then be rebuilt)."""
        if owner not in self._by_owner:
            return False
        self.records = [held for held in self.records if held.owner != owner]
        self.total_bytes -= self._by_owner.pop(owner)
        return True

    def _add(self, held: HeldBack) -> None:
        self.records.append(held)
        self._by_owner[held.owner] += len(held.update)
        self.total_bytes += len(held.update)
