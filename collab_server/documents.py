"""The document registry: live documents by name, one shared load per document, unloading.

Concurrent joiners of a document that is not in memory share one load. A load follows the
document's broker stream *before* reading the store (messages published meanwhile are
buffered and applied after it, so nothing falls into the gap), rebuilds the document from
the store's parts and registers its room. Idle documents (no peers, nothing unsaved) are
unloaded after `idle_unload_seconds`, or earlier when `max_documents` are in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import crdt_core
from awareness.registry import PresenceLimits
from collab_server.broker import Broker, RemotePresence, RemoteUpdate
from collab_server.closecodes import CloseCode
from collab_server.compaction import CompactionScheduler
from collab_server.load_gauge import CpuGauge
from collab_server.metrics import HubMetrics
from collab_server.pending import PendingLimits
from collab_server.room import Peer, RelayPacing, Room, SilentPeer
from collab_server.settings import Settings
from collab_server.ydoc import doc_from_parts
from crdt_core import ProtocolError
from persistence.base import CorruptDocument, Store, StoreError
from persistence.group_commit import GroupCommitWriter

logger = logging.getLogger(__name__)

RemoteMessage = RemoteUpdate | RemotePresence


class DocumentUnavailable(Exception):
    """The document cannot be served now (load failed, set aside, or the document limit is reached)."""

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


@dataclass(frozen=True, slots=True)
class DocumentStatus:
    document: str
    loaded: bool
    connections: int
    presence: dict[int, str]
    last_persisted_seq: int | None
    last_persisted_at: float | None
    unsaved: bool


class DocumentRegistry:
    def __init__(
        self,
        settings: Settings,
        *,
        store: Store,
        writer: GroupCommitWriter,
        broker: Broker,
        metrics: HubMetrics,
        compactions: CompactionScheduler,
    ) -> None:
        self._settings = settings
        self._store = store
        self._writer = writer
        self._broker = broker
        self._metrics = metrics
        self._compactions = compactions
        self.rooms: dict[str, Room] = {}
        self._loading: dict[str, asyncio.Future[Room]] = {}
        # Remote messages for documents still loading: applied once the load is done.
        self._early_remote: dict[str, list[RemoteMessage]] = {}
        self._tasks: asyncio.TaskGroup | None = None
        self.accepting = False
        # Set by the hub to the lifecycle's check: deleted documents are never loaded.
        self.is_deleted: Callable[[str], bool] = lambda _name: False
        self._cpu_load = CpuGauge()  # the relay window opens only when the process is busy

    def held(self) -> set[str]:
        """Documents loaded or loading on this node (never tiered out from under it)."""
        return set(self.rooms) | set(self._loading)

    def start(self, tasks: asyncio.TaskGroup) -> None:
        """Loads run as tasks of ``tasks`` (the hub's group); joins are accepted from now on."""
        self._tasks = tasks
        self.accepting = True

    def stop_accepting(self) -> None:
        self.accepting = False

    # -- joining ----------------------------------------------------------------------

    async def acquire(self, name: str, peer: Peer) -> Room:
        """Return the loaded room with ``peer`` joined; one load is shared by concurrent joiners."""
        if not self.accepting or self._tasks is None:
            raise HubStopping
        if self.is_deleted(name):
            raise DocumentDeleted(f"{name!r} is deleted")
        if self._writer.set_aside(name):
            raise DocumentUnavailable("set aside: the store refused its updates; try again later")
        room = self.rooms.get(name)
        if room is None:
            future = self._loading.get(name)
            if future is None:
                self._make_space()
                future = asyncio.get_running_loop().create_future()
                self._loading[name] = future
                self._tasks.create_task(self._load(name, future), name=f"load:{name}")
            room = await asyncio.shield(future)
        if len(room.peers) >= self._settings.max_connections_per_document:
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
        if len(self.rooms) + len(self._loading) < self._settings.max_documents:
            return
        idle = [r for r in self.rooms.values() if not r.peers and not self._writer.document_pending(r.name)]
        if not idle:
            raise DocumentUnavailable(f"{self._settings.max_documents} documents are loaded (max_documents)")
        self.unload(min(idle, key=lambda r: r.last_activity))

    async def _load(self, name: str, future: asyncio.Future[Room]) -> None:
        started = time.perf_counter()
        try:
            self._early_remote[name] = []
            await self._broker.follow(name)
            stored = await self._store.load(name)
            parts = stored.parts
            if crdt_core.BACKEND == "rust" and len(parts) > self._settings.merge_on_load_parts:
                # One linear merge off the loop, then one apply, instead of thousands of applies.
                parts = [await asyncio.to_thread(crdt_core.merge_updates, parts)]
            # Deleted items are kept (skip_gc) so old versions can be rebuilt for rebasing edits.
            doc = doc_from_parts(parts, skip_gc=True)
            room = self._new_room(name, doc)
            self._compactions.loaded(name, len(stored.tail), sum(len(part) for part in stored.tail))
            self.rooms[name] = room
            for early in self._early_remote.pop(name, []):
                apply_remote(room, early)
            self._metrics.documents_loaded.set(len(self.rooms))
            logger.info(
                "loaded document %r: %d stored parts in %.1f ms",
                name,
                len(stored.parts),
                (time.perf_counter() - started) * 1000,
            )
            future.set_result(room)
        except (StoreError, ProtocolError, OSError) as exc:
            if isinstance(exc, ProtocolError):
                exc = CorruptDocument(f"stored updates of {name!r} do not decode: {exc}")
            self._metrics.load_failures.inc()
            logger.error("document %r failed to load: %s", name, exc)
            self._early_remote.pop(name, None)
            self._broker.unfollow(name)
            future.set_exception(DocumentUnavailable(f"failed to load: {exc}"))
            # Waiters retrieve the exception; mark it retrieved in case there are none.
            future.exception()
        finally:
            self._loading.pop(name, None)

    def _new_room(self, name: str, doc: Any) -> Room:
        settings = self._settings
        return Room(
            name,
            doc,
            writer=self._writer,
            node_id=settings.node_id,
            strict=settings.durability == "strict",
            awareness_window_seconds=settings.awareness_flush_ms / 1000.0,
            metrics=self._metrics,
            on_empty=self._room_empty,
            broker=self._broker,
            max_bytes=settings.max_document_bytes,
            relay_window_seconds=settings.relay_window_ms / 1000.0,
            relay_window_min_peers=settings.relay_window_min_peers,
            relay_pacing=RelayPacing(
                idle_load=settings.relay_idle_load,
                busy_load=settings.relay_busy_load,
                lagging_seconds=settings.relay_lagging_ms / 1000.0,
            ),
            join_wait_seconds=settings.join_wait_seconds,
            off_loop_diff_bytes=settings.off_loop_diff_bytes,
            load=self._cpu_load,
            presence_limits=PresenceLimits(
                max_state_bytes=settings.max_awareness_state_bytes,
                max_clients_per_owner=settings.max_awareness_clients_per_connection,
                max_entries=settings.max_awareness_entries_per_document,
                max_bytes=settings.max_awareness_bytes_per_document,
            ),
            pending_limits=PendingLimits(
                per_connection=settings.max_pending_bytes_per_connection,
                per_document=settings.max_pending_bytes_per_document,
            ),
            max_unapplied_remote_bytes=settings.max_unapplied_remote_bytes,
        )

    def _room_empty(self, room: Room) -> None:
        logger.debug(
            "document %r has no connections; unloading after %.0fs idle",
            room.name,
            self._settings.idle_unload_seconds,
        )

    # -- leaving memory -----------------------------------------------------------------

    def unload(self, room: Room, *, compact: bool = True) -> None:
        room.close()
        self.rooms.pop(room.name, None)
        self._broker.unfollow(room.name)
        self._writer.forget(room.name)
        with contextlib.suppress(KeyError):  # a document never persisted has no series
            self._metrics.last_persisted.remove(room.name)
        self._metrics.documents_loaded.set(len(self.rooms))
        logger.info("unloaded %sdocument %r", "idle " if compact else "", room.name)
        if compact:
            self._compactions.unloaded(room.name)

    def unload_idle(self, now: float) -> None:
        """Unload documents with no peers and nothing unsaved, idle for `idle_unload_seconds`."""
        for room in list(self.rooms.values()):
            if (
                not room.peers
                and now - room.last_activity >= self._settings.idle_unload_seconds
                and not self._writer.document_pending(room.name)
            ):
                self.unload(room)

    def set_aside(self, name: str, reason: str) -> None:
        """The store refused this document's updates: close its clients and drop it from memory.

        Its clients still hold the refused changes and re-send them when they reconnect.
        """
        self._metrics.documents_set_aside.inc()
        room = self.rooms.get(name)
        if room is None:
            return
        room.close_peers(CloseCode.DOCUMENT_SET_ASIDE, reason)
        self.unload(room, compact=False)

    async def evict(self, name: str) -> None:
        """Close a deleted document here: its connections get 4410, its pending updates are
        written, the room is dropped without a compaction."""
        room = self.rooms.pop(name, None)
        if room is not None:
            room.close_peers(CloseCode.DOCUMENT_DELETED, "deleted")
            room.close()  # stops observing the document: nothing more reaches the writer
            self._broker.unfollow(name)
            self._metrics.documents_loaded.set(len(self.rooms))
        await self._writer.wait_document(name)
        self._writer.forget(name)
        self._compactions.forget(name)
        # A compaction still running cannot write a checkpoint after an erase: each store's
        # erase takes (or voids) the document's compaction lock.

    def close_all(self) -> None:
        for room in list(self.rooms.values()):
            room.close()
        self.rooms.clear()

    # -- messages from other nodes ----------------------------------------------------------

    def route_remote(self, message: RemoteMessage) -> None:
        room = self.rooms.get(message.document)
        if room is not None:
            apply_remote(room, message)
            return
        early = self._early_remote.get(message.document)
        if early is not None and len(early) < self._settings.max_early_remote_messages:
            early.append(message)

    # -- reading ------------------------------------------------------------------------

    async def exists(self, name: str) -> bool:
        return name in self.rooms or not (await self._store.load(name)).is_empty

    async def encoded_state(self, name: str) -> bytes | None:
        """The document's full state as one v1 update, live if loaded, else from the store."""
        room = self.rooms.get(name)
        if room is not None:
            return room.doc.get_update()
        stored = await self._store.load(name)
        if stored.is_empty:
            return None
        try:
            doc = await asyncio.to_thread(doc_from_parts, stored.parts)
        except ProtocolError as exc:
            raise CorruptDocument(f"stored updates of {name!r} do not decode: {exc}") from exc
        return doc.get_update()

    async def summaries(self) -> list[DocumentSummary]:
        """Loaded documents and stored ones, with live connection counts."""
        summaries: dict[str, DocumentSummary] = {}
        try:
            stored = await self._store.list_documents()
        except (StoreError, OSError) as exc:
            logger.warning("listing stored documents failed, listing the loaded ones only: %s", exc)
            stored = []
        for info in stored:
            summaries[info.name] = DocumentSummary(info.name, 0, 0, info.updated_at, False)
        for room in self.rooms.values():
            summaries[room.name] = DocumentSummary(
                room.name, len(room.peers), len(room.presence), room.updated_at, True
            )
        return sorted(summaries.values(), key=lambda s: s.updated_at, reverse=True)

    def status(self, name: str) -> DocumentStatus:
        room = self.rooms.get(name)
        persisted = self._writer.last_persisted.get(name)
        return DocumentStatus(
            document=name,
            loaded=room is not None,
            connections=len(room.peers) if room else 0,
            presence=room.presence.states() if room else {},
            last_persisted_seq=persisted.seq if persisted else None,
            last_persisted_at=persisted.at if persisted else None,
            unsaved=self._writer.document_pending(name),
        )


def apply_remote(room: Room, message: RemoteMessage) -> None:
    try:
        if isinstance(message, RemoteUpdate):
            room.apply_remote_update(message.update, repair=message.repair)
        else:
            room.apply_remote_presence(list(message.entries), message.node)
    except ProtocolError as exc:
        logger.warning("document %r: skipping bad message from node %s: %s", room.name, message.node, exc)
