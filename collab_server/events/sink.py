"""The sink port: where published events go (a Kafka topic, webhook endpoints)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from collab_server.events.envelope import Event


class SinkUnavailable(Exception):
    """The sink cannot take events now; the publisher keeps them in the store and retries."""


class EventSink(Protocol):
    name: str  # the cursor and lease namespace in the store; stable across restarts

    def wants(self, event: Event) -> bool:
        """Whether this sink publishes ``event`` at all (per-endpoint filters)."""

    async def publish(self, events: Sequence[Event]) -> None:
        """Publish in order; return once every event is delivered (or dead-lettered).

        Raise SinkUnavailable to have the same events offered again later.
        """

    async def close(self) -> None: ...
