"""The hub: composes the document registry, sessions, compactions and the store writer, owns
their tasks, and runs the fixed start and shutdown order.

Start: open the store, open the broker, load revocations, start the tasks (broker, audit,
store writer, maintenance), accept. Shutdown, all of it within `shutdown_timeout_seconds`:
stop accepting and maintenance, let the writer flush and running compactions finish, close
the documents, flush the audit trail; then cancel what is left, close the broker and store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from types import TracebackType

import crdt_core
from collab_server.agent_presence import AgentPresence
from collab_server.archiving import archive_service
from collab_server.audit import AuditLog
from collab_server.auth import Authenticator, read_key
from collab_server.broker import Broker, LocalBroker
from collab_server.client_address import TrustedProxies
from collab_server.compaction import CompactionScheduler
from collab_server.direct_send import WireFrames
from collab_server.documents import DocumentRegistry
from collab_server.lifecycle import DocumentLifecycle
from collab_server.maintenance import Maintenance
from collab_server.metrics import HubMetrics
from collab_server.remote import RemoteListener
from collab_server.send_gate import LargeFrameGate
from collab_server.sessions import SessionRegistry
from collab_server.settings import Settings
from persistence.base import Store, StoreError
from persistence.encryption.store import check_plaintext_mode
from persistence.group_commit import GroupCommitWriter

logger = logging.getLogger(__name__)


class Hub:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        metrics: HubMetrics | None = None,
        broker: Broker | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.broker: Broker = broker if broker is not None else LocalBroker()
        self.metrics = metrics or HubMetrics()
        self.node_id = settings.node_id
        self.writer = GroupCommitWriter(
            store,
            window_seconds=settings.group_commit_ms / 1000.0,
            sync_interval_seconds=settings.store_sync_interval_ms / 1000.0,
            first_backoff_seconds=settings.store_first_retry_ms / 1000.0,
            max_backlog=settings.max_unsaved_updates,
            max_batch=settings.commit_batch_max_updates,
            max_backoff_seconds=settings.store_retry_max_seconds,
            quarantine_seconds=settings.set_aside_seconds,
        )
        self.compactions = CompactionScheduler(
            store,
            self.writer,
            self.metrics,
            after_updates=settings.compact_after_updates,
            after_bytes=settings.compact_after_bytes,
        )
        self.documents = DocumentRegistry(
            settings,
            store=store,
            writer=self.writer,
            broker=self.broker,
            metrics=self.metrics,
            compactions=self.compactions,
        )
        self.writer.on_set_aside = self.documents.set_aside
        self.writer.on_stored = self.compactions.stored
        self.auth = Authenticator(
            secret=settings.auth_secret, public_key=read_key(settings.auth_public_key_file)
        )
        self.audit = AuditLog(store, settings.node_id)
        self.sessions = SessionRegistry(settings, self.auth, self.audit, store, self.broker)
        self.agent_presence = AgentPresence()
        self.trusted_proxies = TrustedProxies(settings.trusted_proxies)
        # The WebSocket framing of the message being relayed, shared by every socket it goes to.
        self.wire_frames = WireFrames(settings.large_frame_bytes)
        self.large_frames = LargeFrameGate(
            settings.large_frame_bytes, settings.large_frames_in_flight, settings.large_frame_drain_seconds
        )
        self.lifecycle = DocumentLifecycle(
            self,
            settings.deletion_grace_seconds,
            checkpoint_retention_seconds=settings.checkpoint_retention_seconds,
        )
        self.documents.is_deleted = self.compactions.is_deleted = self.lifecycle.is_deleted
        self.archive = archive_service(settings, store, self.lifecycle, self.documents.held)
        self.maintenance = Maintenance(
            settings,
            store=store,
            writer=self.writer,
            documents=self.documents,
            sessions=self.sessions,
            agents=self.agent_presence,
            metrics=self.metrics,
        )
        self._lifetime_context: contextlib.AbstractAsyncContextManager[Hub] | None = None

    @property
    def accepting(self) -> bool:
        return self.documents.accepting

    @property
    def store_reachable(self) -> bool:
        return self.maintenance.store_reachable

    @property
    def ready(self) -> bool:
        return self.accepting and self.store_reachable and self.writer.healthy and self.broker.healthy

    # -- lifetime ---------------------------------------------------------------------

    async def __aenter__(self) -> Hub:
        self._lifetime_context = self._lifetime()
        return await self._lifetime_context.__aenter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._lifetime_context is not None
        await self._lifetime_context.__aexit__(exc_type, exc, tb)

    @contextlib.asynccontextmanager
    async def _lifetime(self) -> AsyncIterator[Hub]:
        async with contextlib.AsyncExitStack() as stack:
            await self.store.open()
            stack.push_async_callback(self.store.close)
            await check_plaintext_mode(self.store)
            await self.broker.open(RemoteListener(self.documents, self.sessions, self.broker))
            stack.push_async_callback(self.broker.close)
            await self.sessions.load_revocations()
            tasks = await stack.enter_async_context(asyncio.TaskGroup())
            await self.lifecycle.refresh()
            background = [
                tasks.create_task(self.broker.run(), name="broker"),
                tasks.create_task(self.audit.run(), name="audit"),
                tasks.create_task(self.lifecycle.run(), name="lifecycle"),
            ]
            if self.archive is not None:
                background.append(tasks.create_task(self.archive.run(), name="archive"))
            writer_task = tasks.create_task(self.writer.run(), name="store-writer")
            maintenance = tasks.create_task(self.maintenance.run(), name="maintenance")
            self.compactions.start(tasks)
            self.documents.start(tasks)
            if not self.auth.enabled:
                logger.warning(
                    "AUTH IS OFF: anyone who can reach this hub can read and write every document"
                    " (set --auth-secret or --auth-public-key-file to require tokens)"
                )
            logger.info(
                "hub %s started (durability=%s, crdt backend=%s)",
                self.node_id,
                self.settings.durability,
                crdt_core.BACKEND,
            )
            try:
                yield self
            finally:
                maintenance.cancel()
                await self._shutdown(writer_task)
                for task in background:
                    task.cancel()

    async def _shutdown(self, writer_task: asyncio.Task[None]) -> None:
        """Everything that may wait shares one deadline: `shutdown_timeout_seconds`."""
        self.documents.stop_accepting()
        logger.info("shutdown: flushing %d pending updates", self.writer.backlog)
        self.writer.stop()
        deadline = asyncio.get_running_loop().time() + self.settings.shutdown_timeout_seconds
        try:
            async with asyncio.timeout_at(deadline):
                await asyncio.gather(asyncio.shield(writer_task), self.compactions.stop())
        except TimeoutError:
            logger.error(
                "shutdown: %d updates could not be stored and %d compactions did not finish within %.1fs",
                self.writer.backlog,
                self.compactions.running,
                self.settings.shutdown_timeout_seconds,
            )
            writer_task.cancel()
        self.documents.close_all()
        try:
            async with asyncio.timeout_at(deadline):
                await self.audit.flush()
        except (TimeoutError, StoreError, OSError) as exc:
            logger.warning("shutdown: audit events not stored: %r", exc)
        logger.info("shutdown: complete")
