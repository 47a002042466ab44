"""Readiness and metrics of one hub, for /readyz and /metrics (the `Health` port)."""

from __future__ import annotations

from collab_server.events.publisher import EventPublisher
from collab_server.hub import Hub


class HubHealth:
    def __init__(self, hub: Hub, events: EventPublisher | None = None) -> None:
        self._hub = hub
        self._events = events

    @property
    def node_id(self) -> str:
        return self._hub.node_id

    @property
    def ready(self) -> bool:
        return self._hub.ready

    def readiness(self) -> dict[str, object]:
        hub = self._hub
        body: dict[str, object] = {
            "ready": hub.ready,
            "accepting": hub.accepting,
            "store_reachable": hub.store_reachable,
            "store_writes_healthy": hub.writer.healthy,
            "unsaved_updates": hub.writer.backlog,
            "last_store_error": hub.writer.last_error,
        }
        # Change events never make the hub unready (it keeps serving; the backlog waits in the store).
        if self._events is not None:
            body["events"] = self._events.status()
        return body

    @property
    def metrics_token(self) -> str:
        return self._hub.settings.metrics_token

    def metrics_text(self, *, per_document: bool) -> bytes:
        hub = self._hub
        hub.metrics.persist_backlog.set(hub.writer.backlog)
        hub.metrics.audit_dropped.set(hub.audit.dropped)
        return hub.metrics.exposition(per_document=per_document)


class HubDurability:
    """The `Durability` port: strict durability's commit wait, from the hub's writer."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub

    @property
    def strict(self) -> bool:
        return self._hub.settings.durability == "strict"

    @property
    def writes_healthy(self) -> bool:
        return self._hub.writer.healthy and self._hub.store_reachable

    @property
    def commit_timeout_seconds(self) -> float:
        return self._hub.settings.http_commit_timeout_seconds

    async def wait_stored(self, document: str) -> None:
        await self._hub.writer.wait_document(document)
