"""The hub's periodic chores, every `maintenance_interval_seconds`: expire agents' presence,
tokens and stale awareness states, unload idle documents, update gauges, check the store
(for /readyz) and re-read revocations from it."""

from __future__ import annotations

import asyncio
import logging
import time

from collab_server.agent_presence import AgentPresence
from collab_server.documents import DocumentRegistry
from collab_server.metrics import HubMetrics
from collab_server.room import Room
from collab_server.sessions import SessionRegistry
from collab_server.settings import Settings
from persistence.base import Store, StoreError
from persistence.group_commit import GroupCommitWriter

logger = logging.getLogger(__name__)


class Maintenance:
    def __init__(
        self,
        settings: Settings,
        *,
        store: Store,
        writer: GroupCommitWriter,
        documents: DocumentRegistry,
        sessions: SessionRegistry,
        agents: AgentPresence,
        metrics: HubMetrics,
    ) -> None:
        self._settings = settings
        self._store = store
        self._writer = writer
        self._documents = documents
        self._sessions = sessions
        self._agents = agents
        self._metrics = metrics
        self.store_reachable = True
        # The last-persisted time each document's gauge shows: a gauge is set only when it
        # changed (a labelled child lookup per document per pass was most of a pass's cost).
        # (Keyed by the room: a document unloaded and loaded again gets its gauge back.)
        self._gauge_at: dict[Room, float] = {}

    async def run(self) -> None:
        last_check = 0.0
        while True:
            await asyncio.sleep(self._settings.maintenance_interval_seconds)
            now = time.monotonic()
            self._agents.expire()
            self._sessions.close_expired()
            shown, self._gauge_at = self._gauge_at, {}
            for room in list(self._documents.rooms.values()):
                room.expire_presence(self._settings.awareness_timeout_seconds)
                persisted = self._writer.last_persisted.get(room.name)
                if persisted is not None:
                    self._gauge_at[room] = persisted.at
                    if shown.get(room) != persisted.at:
                        self._metrics.last_persisted.labels(document=room.name).set(persisted.at)
            self._documents.unload_idle(now)
            self._metrics.persist_backlog.set(self._writer.backlog)
            self._metrics.persist_healthy.set(1 if self._writer.healthy else 0)
            if now - last_check >= self._settings.store_check_interval_seconds:
                last_check = now
                await self._check_store()
                if self.store_reachable and self._sessions.refresh_due():
                    await self._refresh_revocations()

    async def _refresh_revocations(self) -> None:
        try:
            await self._sessions.load_revocations()
        except (StoreError, OSError) as exc:
            logger.warning("revocations not re-read from the store (kept as known): %s", exc)

    async def _check_store(self) -> None:
        try:
            async with asyncio.timeout(self._settings.store_check_interval_seconds):
                await self._store.ping()
        except (StoreError, OSError, TimeoutError) as exc:
            if self.store_reachable:
                logger.warning("store unreachable: %s", exc)
            self.store_reachable = False
        else:
            self.store_reachable = True
