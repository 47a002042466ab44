"""The broker port: how hub nodes share document updates and presence.

A single node uses ``LocalBroker`` (nothing leaves the process). Several nodes use
``RedisBroker`` (``collab_server/redis_broker.py``): one Redis stream per document.

Who persists: the node that received an update from its client stores it, and publishes it
only after the commit (strict durability). Other nodes take it as a *remote* update: relayed
to their own clients as it came, never stored again, and integrated into their own copy
only when they need the state (``Room.settle``). So every update lands in the log once, and
whatever a stream carries is already durable — streams can be trimmed by length at any time.
A *repair* is an update sent in the state exchange after a broker outage: it may repeat
what the receiver has, so the receiver integrates it first and relays only what was new.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from crdt_core import AwarenessEntry


@dataclass(frozen=True, slots=True)
class RemoteUpdate:
    document: str
    update: bytes
    node: str
    repair: bool = False


@dataclass(frozen=True, slots=True)
class RemotePresence:
    document: str
    entries: Sequence[AwarenessEntry]
    node: str


@dataclass(frozen=True, slots=True)
class StateRequest:
    """Another node asks for what it lacks (after an outage): answer with a diff."""

    document: str
    state_vector: bytes
    node: str


class BrokerListener(Protocol):
    """What a broker delivers to: the hub."""

    def on_remote_update(self, message: RemoteUpdate) -> None: ...

    def on_remote_presence(self, message: RemotePresence) -> None: ...

    def on_state_request(self, message: StateRequest) -> None: ...

    def on_node_gone(self, node: str) -> None: ...

    def on_broker_recovered(self) -> None:
        """The broker was unreachable and is back: documents must re-sync with other nodes."""

    def on_revoked(self, token_id: str) -> None:
        """A token was revoked on another node: close its connections here too."""


class Broker(Protocol):
    healthy: bool

    async def open(self, listener: BrokerListener) -> None:
        """Connect; raise BrokerUnavailable when unreachable."""

    async def run(self) -> None:
        """Consume, publish and keep heartbeats until cancelled (owned by the hub's TaskGroup)."""

    async def close(self) -> None: ...

    async def follow(self, document: str) -> str:
        """Start receiving ``document``'s messages; returns the stream position followed from.

        Called *before* the document is loaded from the store, so nothing published after
        the load began can be missed.
        """

    def unfollow(self, document: str) -> None: ...

    def publish_update(self, document: str, update: bytes, *, repair: bool = False) -> None:
        """Queue a durable update for other nodes (never blocks; dropped if the broker is down,
        which the state exchange after recovery repairs). ``repair``: a state-exchange answer."""

    def publish_presence(self, document: str, entries: Sequence[AwarenessEntry]) -> None: ...

    def request_state(self, document: str, state_vector: bytes) -> None: ...

    def publish_revocation(self, token_id: str) -> None: ...


class BrokerUnavailable(Exception):
    pass


class LocalBroker:
    """Single node: there is nobody to tell."""

    healthy = True

    async def open(self, listener: BrokerListener) -> None:
        return None

    async def run(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def follow(self, document: str) -> str:
        return "0"

    def unfollow(self, document: str) -> None:
        return None

    def publish_update(self, document: str, update: bytes, *, repair: bool = False) -> None:
        return None

    def publish_presence(self, document: str, entries: Sequence[AwarenessEntry]) -> None:
        return None

    def request_state(self, document: str, state_vector: bytes) -> None:
        return None

    def publish_revocation(self, token_id: str) -> None:
        return None
