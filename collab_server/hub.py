"""The hub: live documents by name, one shared load per document, idle unload, and shutdown.

The hub owns every long-lived task (the store writer, maintenance, compactions) in one
TaskGroup, entered with ``async with Hub(...)``. Leaving it runs the fixed shutdown order:
stop accepting, stop the writer and wait for it to flush, close the documents, close the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol

import pycrdt

import crdt_core
from awareness.registry import PresenceLimits
from collab_server.agent_presence import AgentPresence
from collab_server.archiving import ArchiveService
from collab_server.audit import AuditLog
from collab_server.auth import Authenticator, Principal
from collab_server.broker import Broker, LocalBroker, RemotePresence, RemoteUpdate, StateRequest
from collab_server.client_address import TrustedProxies
from collab_server.closecodes import CloseCode
from collab_server.lifecycle import DocumentLifecycle
from collab_server.load_gauge import CpuGauge
from collab_server.metrics import HubMetrics
from collab_server.pending import PendingLimits
from collab_server.room import Peer, Room, SilentPeer
from collab_server.send_gate import LargeFrameGate
from collab_server.settings import Settings
from crdt_core import ProtocolError
from persistence.archive.factory import object_store_from_url
from persistence.base import CorruptDocument, Store, StoreError
from persistence.encryption.store import check_plaintext_mode, text_sealer
from persistence.group_commit import GroupCommitWriter
from persistence.index.base import SearchIndex
from persistence.index.indexer import IndexerSettings, SearchIndexer
from persistence.index.lazy import LazySearchIndex

logger = logging.getLogger(__name__)

_MAINTENANCE_INTERVAL = 0.5
_MAX_EARLY_REMOTE = 10_000
_MERGE_BEFORE_LOAD = 32  # stored parts above which loading merges them first (native backend)


class DocumentUnavailable(Exception):
    """The document cannot be served now (load failed, or the document limit is reached)."""

    close_code = CloseCode.DOCUMENT_UNAVAILABLE


class DocumentDeleted(DocumentUnavailable):
    """The document is soft-deleted (or being erased): opens are refused with 4410."""

    close_code = CloseCode.DOCUMENT_DELETED


class TooManyConnections(Exception):
    pass


class HubStopping(Exception):
    pass


@dataclass(frozen=True, slots=True)
class DocumentSummary:
    name: str
    connections: int
    presence: int
    updated_at: float
    loaded: bool


def search_location(settings: Settings) -> str | None:
    """Where the search index lives, or None when search is off (or nowhere to keep it)."""
    if settings.search == "off":
        return None
    if settings.search.startswith(("http://", "https://")):
        return settings.search
    if settings.search != "embedded":
        raise ValueError(f"search must be 'embedded', 'off' or http://host:port, not {settings.search!r}")
    if settings.search_dir:
        return settings.search_dir
    if settings.store.startswith("sqlite:///"):
        return settings.store[len("sqlite:///") :] + ".search"
    return None  # memory or PostgreSQL without --search-dir: no local place to keep it


def _read_key(path: str) -> str:
    if not path:
        return ""
    with open(path, encoding="utf-8") as handle:
        return handle.read()


class Session(Protocol):
    """An authenticated connection, as the hub sees it for quotas and revocation."""

    principal: Principal
    client_ip: str
    quota_ip: str | None  # None: from a trusted proxy that named no client (no per-address quota)
    document: str

    def request_close(self, code: CloseCode, detail: str | None = None) -> None: ...


class QuotaExceeded(Exception):
    pass


def _decrement(counter: Counter[str], key: str) -> None:
    counter[key] -= 1
    if counter[key] <= 0:
        del counter[key]


def archive_service(
    settings: Settings, store: Store, loaded: Callable[[], Collection[str]]
) -> ArchiveService | None:
    objects = object_store_from_url(
        settings.archive, settings.archive_access_key, settings.archive_secret_key
    )
    if objects is None:
        return None
    return ArchiveService(
        store,
        objects,
        settings.archive_interval_seconds,
        tier_after_seconds=settings.tier_after_seconds,
        loaded=loaded,
    )


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
        # Remote messages for documents still loading: applied once the load is done.
        self._early_remote: dict[str, list[RemoteUpdate | RemotePresence]] = {}
        self.metrics = metrics or HubMetrics()
        self.node_id = settings.node_id
        self.rooms: dict[str, Room] = {}
        self.writer = GroupCommitWriter(
            store,
            window_seconds=settings.group_commit_ms / 1000.0,
            max_backlog=settings.max_unsaved_updates,
        )
        self._loading: dict[str, asyncio.Future[Room]] = {}
        self.agent_presence = AgentPresence()
        self.auth = Authenticator(
            secret=settings.auth_secret, public_key=_read_key(settings.auth_public_key_file)
        )
        self.audit = AuditLog(store, settings.node_id)
        self.lifecycle = DocumentLifecycle(
            self,
            settings.deletion_grace_seconds,
            checkpoint_retention_seconds=settings.checkpoint_retention_seconds,
        )
        self.archive = archive_service(settings, store, lambda: set(self.rooms) | set(self._loading))
        if self.archive is not None:
            self.lifecycle.archive_eraser = self.archive.archiver.erase
        self.sessions: set[Session] = set()
        self.trusted_proxies = TrustedProxies(settings.trusted_proxies)
        self.cpu_load = CpuGauge()
        self.large_frames = LargeFrameGate(
            settings.large_frame_bytes, settings.large_frames_in_flight, settings.large_frame_drain_seconds
        )
        self.search_index: SearchIndex | None = None
        self._search_task: asyncio.Task[None] | None = None
        self._by_subject: Counter[str] = Counter()
        self._by_ip: Counter[str] = Counter()
        self._documents_by_subject: dict[str, Counter[str]] = {}
        self._compacting: set[str] = set()
        # Set by the change-event publisher: the newest seq compaction may cover per document.
        self.compaction_limit: Callable[[str], Awaitable[int | None]] | None = None
        self._stored_since_compaction: dict[str, int] = {}
        self._task_group: asyncio.TaskGroup | None = None
        self._writer_task: asyncio.Task[None] | None = None
        self.accepting = False
        self.store_reachable = True

    # -- lifetime ---------------------------------------------------------------------

    async def __aenter__(self) -> Hub:
        await self.store.open()
        try:
            await check_plaintext_mode(self.store)
            await self.broker.open(self)
        except Exception:
            await self.store.close()
            raise
        self._task_group = asyncio.TaskGroup()
        await self._task_group.__aenter__()
        self._broker_task = self._task_group.create_task(self.broker.run(), name="broker")
        self._audit_task = self._task_group.create_task(self.audit.run(), name="audit")
        await self.lifecycle.refresh()
        self._lifecycle_task = self._task_group.create_task(self.lifecycle.run(), name="lifecycle")
        if self.archive is not None:
            self._archive_task = self._task_group.create_task(self.archive.run(), name="archive")
        location = search_location(self.settings)
        if location is not None:
            self._search_task = self._task_group.create_task(self._run_search(location), name="search")
        if not self.auth.enabled:
            logger.warning(
                "AUTH IS OFF: anyone who can reach this hub can read and write every document"
                " (set --auth-secret or --auth-public-key-file to require tokens)"
            )
        self._writer_task = self._task_group.create_task(self.writer.run(), name="store-writer")
        self._maintenance_task = self._task_group.create_task(self._maintenance(), name="maintenance")
        self.accepting = True
        logger.info(
            "hub %s started (durability=%s, crdt backend=%s)",
            self.node_id,
            self.settings.durability,
            crdt_core.BACKEND,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._task_group is not None
        self.accepting = False
        logger.info("shutdown: flushing %d pending updates", self.writer.backlog)
        self._maintenance_task.cancel()
        self.writer.stop()
        try:
            async with asyncio.timeout(self.settings.shutdown_timeout_seconds):
                if self._writer_task is not None:
                    await asyncio.shield(self._writer_task)
        except TimeoutError:
            logger.error("shutdown: %d updates could not be stored in time", self.writer.backlog)
            if self._writer_task is not None:
                self._writer_task.cancel()
        for room in list(self.rooms.values()):
            room.close()
        self.rooms.clear()
        self._broker_task.cancel()
        self._lifecycle_task.cancel()
        if self.archive is not None:
            self._archive_task.cancel()
        if self._search_task is not None:
            self._search_task.cancel()
        with contextlib.suppress(StoreError, OSError):
            await self.audit.flush()
        self._audit_task.cancel()
        await self._task_group.__aexit__(exc_type, exc, tb)
        await self.broker.close()
        await self.store.close()
        logger.info("shutdown: complete")

    # -- documents --------------------------------------------------------------------

    async def acquire(self, name: str, peer: Peer) -> Room:
        """Return the loaded room with ``peer`` joined; one load is shared by concurrent joiners."""
        if not self.accepting:
            raise HubStopping
        if self.lifecycle.is_deleted(name):
            raise DocumentDeleted(f"{name!r} is deleted")
        room = self.rooms.get(name)
        if room is None:
            future = self._loading.get(name)
            if future is None:
                self._make_space()
                future = asyncio.get_running_loop().create_future()
                self._loading[name] = future
                assert self._task_group is not None
                self._task_group.create_task(self._load(name, future), name=f"load:{name}")
            room = await asyncio.shield(future)
        if len(room.peers) >= self.settings.max_connections_per_document:
            raise TooManyConnections(name)
        room.join(peer)
        return room

    @contextlib.asynccontextmanager
    async def using(self, name: str) -> AsyncIterator[Room]:
        """Hold a document loaded while the server itself works on it (HTTP edits, restore)."""
        peer = SilentPeer(f"server:{name}")
        room = await self.acquire(name, peer)
        try:
            yield room
        finally:
            room.leave(peer)

    def _make_space(self) -> None:
        if len(self.rooms) + len(self._loading) < self.settings.max_documents:
            return
        idle = [r for r in self.rooms.values() if not r.peers and not self.writer.document_pending(r.name)]
        if not idle:
            raise DocumentUnavailable(f"{self.settings.max_documents} documents are loaded (max_documents)")
        self._unload(min(idle, key=lambda r: r.last_activity))

    async def _load(self, name: str, future: asyncio.Future[Room]) -> None:
        started = time.perf_counter()
        try:
            # Follow the document's stream before reading the store: nothing published while
            # the load runs can fall into a gap (it is replayed; applying twice is a no-op).
            self._early_remote[name] = []
            await self.broker.follow(name)
            stored = await self.store.load(name)
            # Deleted items are kept (skip_gc) so old versions can be rebuilt for rebasing edits.
            doc: pycrdt.Doc[Any] = pycrdt.Doc(skip_gc=True)
            parts = ([stored.snapshot] if stored.snapshot is not None else []) + list(stored.tail)
            stored_parts = len(parts)
            if crdt_core.BACKEND == "rust" and len(parts) > _MERGE_BEFORE_LOAD:
                # One linear merge off the loop, then one apply, instead of thousands of applies.
                try:
                    parts = [await asyncio.to_thread(crdt_core.merge_updates, parts)]
                except ProtocolError as exc:
                    raise CorruptDocument(f"stored updates of {name!r} do not decode: {exc}") from exc
            for part in parts:
                try:
                    doc.apply_update(part)
                except ValueError as exc:
                    raise CorruptDocument(f"stored update of {name!r} does not decode: {exc}") from exc
            room = Room(
                name,
                doc,
                writer=self.writer,
                node_id=self.node_id,
                strict=self.settings.durability == "strict",
                awareness_window_seconds=self.settings.awareness_flush_ms / 1000.0,
                metrics=self.metrics,
                on_empty=self._room_empty,
                broker=self.broker,
                max_bytes=self.settings.max_document_bytes,
                relay_window_seconds=self.settings.relay_window_ms / 1000.0,
                relay_window_min_peers=self.settings.relay_window_min_peers,
                load=self.cpu_load,
                presence_limits=PresenceLimits(
                    max_state_bytes=self.settings.max_awareness_state_bytes,
                    max_clients_per_owner=self.settings.max_awareness_clients_per_connection,
                    max_entries=self.settings.max_awareness_entries_per_document,
                    max_bytes=self.settings.max_awareness_bytes_per_document,
                ),
                pending_limits=PendingLimits(
                    per_connection=self.settings.max_pending_bytes_per_connection,
                    per_document=self.settings.max_pending_bytes_per_document,
                ),
            )
            self._stored_since_compaction[name] = len(stored.tail)
            self.rooms[name] = room
            for early in self._early_remote.pop(name, []):
                self._apply_remote(room, early)
            self.metrics.documents_loaded.set(len(self.rooms))
            logger.info(
                "loaded document %r: %d stored parts in %.1f ms",
                name,
                stored_parts,
                (time.perf_counter() - started) * 1000,
            )
            future.set_result(room)
        except Exception as exc:
            self.metrics.load_failures.inc()
            logger.error("document %r failed to load: %s", name, exc)
            self._early_remote.pop(name, None)
            self.broker.unfollow(name)
            future.set_exception(DocumentUnavailable(f"failed to load: {exc}"))
            # Waiters retrieve the exception; mark it retrieved in case there are none.
            future.exception()
        finally:
            self._loading.pop(name, None)

    def _room_empty(self, room: Room) -> None:
        logger.debug(
            "document %r has no connections; unloading after %.0fs idle",
            room.name,
            self.settings.idle_unload_seconds,
        )

    def _count_changes(self, room: Room) -> None:
        self._stored_since_compaction[room.name] = (
            self._stored_since_compaction.get(room.name, 0) + room.changes
        )
        room.changes = 0

    def _unload(self, room: Room) -> None:
        self._count_changes(room)
        room.close()
        self.rooms.pop(room.name, None)
        self.broker.unfollow(room.name)
        self.writer.forget(room.name)
        with contextlib.suppress(KeyError):
            self.metrics.last_persisted.remove(room.name)
        self.metrics.documents_loaded.set(len(self.rooms))
        logger.info("unloaded idle document %r", room.name)
        self._maybe_compact(room.name, force=True)

    async def evict(self, name: str) -> None:
        """Close a deleted document here: its connections get 4410, its pending updates are
        written, the room is dropped without a compaction."""
        for session in list(self.sessions):
            if session.document == name:
                session.request_close(CloseCode.DOCUMENT_DELETED)
        room = self.rooms.pop(name, None)
        if room is not None:
            room.close()  # stops observing the document: nothing more reaches the writer
            self.broker.unfollow(name)
            self.metrics.documents_loaded.set(len(self.rooms))
        await self.writer.wait_document(name)
        self.writer.forget(name)
        self._stored_since_compaction.pop(name, None)
        # A compaction still running cannot write a checkpoint after an erase: each store's
        # erase takes (or voids) the document's compaction lock.

    def _maybe_compact(self, name: str, *, force: bool = False) -> None:
        pending = self._stored_since_compaction.get(name, 0)
        if name in self._compacting or pending == 0 or self.lifecycle.is_deleted(name):
            return
        if not force and pending < self.settings.compact_after_updates:
            return
        if self._task_group is None or not self.accepting:
            return
        self._compacting.add(name)
        self._task_group.create_task(self._compact(name), name=f"compact:{name}")

    async def _compact(self, name: str) -> None:
        try:
            await self.writer.wait_document(name)
            upto = await self.compaction_limit(name) if self.compaction_limit is not None else None
            result = await self.store.compact(name, crdt_core.merge_updates, upto)
            if result is not None:
                self._stored_since_compaction[name] = 0
                self.metrics.compactions.inc()
                logger.info(
                    "compacted %r: %d entries into %d bytes (up to seq %d)",
                    name,
                    result.merged_entries,
                    result.snapshot_bytes,
                    result.covered_seq,
                )
        except (StoreError, OSError, ValueError) as exc:
            logger.warning("compaction of %r failed, will retry later: %s", name, exc)
        finally:
            self._compacting.discard(name)

    # -- maintenance ------------------------------------------------------------------

    async def _maintenance(self) -> None:
        last_ping = 0.0
        while True:
            await asyncio.sleep(_MAINTENANCE_INTERVAL)
            now = time.monotonic()
            self.agent_presence.expire()
            self._close_expired_sessions()
            for room in list(self.rooms.values()):
                room.expire_presence(self.settings.awareness_timeout_seconds)
                idle_for = now - room.last_activity
                if (
                    not room.peers
                    and idle_for >= self.settings.idle_unload_seconds
                    and not self.writer.document_pending(room.name)
                ):
                    self._unload(room)
                else:
                    self._count_changes(room)
                    self._maybe_compact(room.name)
                    persisted = self.writer.last_persisted.get(room.name)
                    if persisted is not None:
                        self.metrics.last_persisted.labels(document=room.name).set(persisted.at)
            self.metrics.persist_backlog.set(self.writer.backlog)
            self.metrics.persist_healthy.set(1 if self.writer.healthy else 0)
            if now - last_ping >= 2.0:
                last_ping = now
                await self._check_store()

    async def _check_store(self) -> None:
        try:
            async with asyncio.timeout(2.0):
                await self.store.ping()
        except (StoreError, OSError, TimeoutError) as exc:
            if self.store_reachable:
                logger.warning("store unreachable: %s", exc)
            self.store_reachable = False
        else:
            self.store_reachable = True

    @property
    def ready(self) -> bool:
        return self.accepting and self.store_reachable and self.writer.healthy and self.broker.healthy

    async def _run_search(self, location: str) -> None:
        """Serve search from an index opened only once there is something to index or search:
        chromadb and the model cost ~200 MB, which an idle hub does not pay. A failure to
        open disables search (503 from /api/search), never the hub."""
        interval = self.settings.search_interval_seconds
        sealer = text_sealer(self.store, asyncio.get_running_loop())  # encryption at rest: sealed text

        def open_index() -> SearchIndexer:
            from persistence.index.factory import open_search_index  # heavy: chromadb + model

            settings = IndexerSettings(interval_seconds=interval)
            return open_search_index(self.store, location, settings, sealer=sealer)

        index = LazySearchIndex(self.store, open_index, interval, location)
        self.search_index = index
        try:
            await index.run()
        finally:
            self.search_index = None

    # -- sessions: quotas, expiry, revocation ---------------------------------------------

    def admit(self, session: Session) -> None:
        """Register a session; raise QuotaExceeded (nothing registered) when a quota is hit.

        Quotas count real identities only: a subject when auth is on (without auth every
        socket is "anonymous", and counting that would cap the hub), an address when it
        names one client (see client_address.py).
        """
        subject = session.principal.subject if self.auth.enabled else None
        address = session.quota_ip
        settings = self.settings
        if subject is not None and self._by_subject[subject] >= settings.max_connections_per_subject:
            raise QuotaExceeded(f"{settings.max_connections_per_subject} connections for {subject!r}")
        if address is not None and self._by_ip[address] >= settings.max_connections_per_ip:
            raise QuotaExceeded(f"{settings.max_connections_per_ip} connections from one address")
        if subject is not None:
            documents = self._documents_by_subject.setdefault(subject, Counter())
            if session.document not in documents and len(documents) >= settings.max_documents_per_subject:
                raise QuotaExceeded(f"{settings.max_documents_per_subject} documents open for {subject!r}")
            documents[session.document] += 1
            self._by_subject[subject] += 1
        if address is not None:
            self._by_ip[address] += 1
        self.sessions.add(session)

    def release(self, session: Session) -> None:
        if session not in self.sessions:
            return
        self.sessions.discard(session)
        subject = session.principal.subject if self.auth.enabled else None
        address = session.quota_ip
        if subject is not None:
            _decrement(self._by_subject, subject)
            documents = self._documents_by_subject.get(subject)
            if documents is not None:
                _decrement(documents, session.document)
                if not documents:
                    del self._documents_by_subject[subject]
        if address is not None:
            _decrement(self._by_ip, address)

    def revoke(self, token_id: str, *, by: str | None = None, propagate: bool = True) -> int:
        """Revoke a token here (and on every node); returns how many local sessions closed."""
        self.auth.revoke(token_id)
        if propagate:
            self.broker.publish_revocation(token_id)
            self.audit.record("revoke", by, None, f"token {token_id}")
        closed = 0
        for session in list(self.sessions):
            if session.principal.token_id == token_id:
                session.request_close(CloseCode.TOKEN_EXPIRED, "revoked")
                closed += 1
        return closed

    def on_revoked(self, token_id: str) -> None:
        self.revoke(token_id, propagate=False)

    def _close_expired_sessions(self) -> None:
        now = time.time()
        for session in list(self.sessions):
            expires_at = session.principal.expires_at
            if expires_at is not None and expires_at <= now:
                session.request_close(CloseCode.TOKEN_EXPIRED, "expired")

    # -- BrokerListener: messages from other hub nodes --------------------------------------

    def on_remote_update(self, message: RemoteUpdate) -> None:
        self._route_remote(message)

    def on_remote_presence(self, message: RemotePresence) -> None:
        self._route_remote(message)

    def _route_remote(self, message: RemoteUpdate | RemotePresence) -> None:
        room = self.rooms.get(message.document)
        if room is not None:
            self._apply_remote(room, message)
            return
        early = self._early_remote.get(message.document)
        if early is not None and len(early) < _MAX_EARLY_REMOTE:
            early.append(message)

    def _apply_remote(self, room: Room, message: RemoteUpdate | RemotePresence) -> None:
        try:
            if isinstance(message, RemoteUpdate):
                room.apply_remote_update(message.update)
            else:
                room.apply_remote_presence(list(message.entries), message.node)
        except ProtocolError as exc:
            logger.warning("document %r: skipping bad message from node %s: %s", room.name, message.node, exc)

    def on_state_request(self, message: StateRequest) -> None:
        room = self.rooms.get(message.document)
        if room is None:
            return
        try:
            missing = room.doc.get_update(message.state_vector)
        except ValueError as exc:
            logger.warning("document %r: bad state request from %s: %s", room.name, message.node, exc)
            return
        if missing not in (b"\x00\x00", b""):
            self.broker.publish_update(room.name, missing)

    def on_node_gone(self, node: str) -> None:
        for room in self.rooms.values():
            room.remove_node(node)

    def on_broker_recovered(self) -> None:
        for room in self.rooms.values():
            self.broker.request_state(room.name, room.state_vector())
            # Also offer everything this node holds: the others may have missed it.
            self.broker.publish_update(room.name, room.doc.get_update())

    async def documents(self) -> list[DocumentSummary]:
        """Loaded documents and stored ones, with live connection counts."""
        summaries: dict[str, DocumentSummary] = {}
        with contextlib.suppress(StoreError, OSError):
            for info in await self.store.list_documents():
                summaries[info.name] = DocumentSummary(info.name, 0, 0, info.updated_at, False)
        for room in self.rooms.values():
            summaries[room.name] = DocumentSummary(
                room.name, len(room.peers), len(room.presence), room.updated_at, True
            )
        return sorted(summaries.values(), key=lambda s: s.updated_at, reverse=True)
