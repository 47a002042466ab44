"""The publisher: one loop per sink that follows the committed log and publishes it in order.

Per sink, the store keeps a cursor per document (every row with seq <= cursor is
published). A round: find documents with rows past their cursor, build their events from
the stored rows (``ChangeSource``), publish, then advance the cursor. Nothing is published
that is not stored, and the cursor only moves after the sink confirmed, so a crash, a
sink outage or a restart replays from the cursor: events may repeat (same id), never go
missing. Audit-log events (restore, revoke, delete) follow their own cursor.

Several hub nodes: documents are split into ``partitions`` by a stable hash; a node
publishes only the partitions whose lease (in the store, with an expiry) it holds, so
each update is published by one node; a dead node's leases expire and are taken over.

Discovery: a scan of the log from a watermark (every unpublished row is above it), run
when this node committed something (cheap in-process signal) or every ``poll_seconds``
(other nodes' commits); every ``full_scan_seconds`` from 0, for a PostgreSQL row that
committed after a higher seq was scanned.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
import zlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from collab_server.events.envelope import AUDIT_EVENT_TYPES, Event
from collab_server.events.sink import EventSink, SinkUnavailable
from collab_server.events.source import ChangeSource
from persistence.base import AuditRecord, LogEntry, LoggedUpdate, PendingDocument, Store, StoreError

logger = logging.getLogger(__name__)

AUDIT_CURSOR = ("#audit", "audit")  # (sink suffix, document) of the audit log's cursor row
# Leases between hub nodes: a dead node's partitions move after LEASE_TTL_SECONDS; renewing
# every LEASE_RENEW_SECONDS leaves a live node two missed renewals of slack.
LEASE_TTL_SECONDS = 10.0
LEASE_RENEW_SECONDS = 3.0
MAX_BACKOFF_SECONDS = 10.0  # longest wait between rounds while a sink or the store fails
CURSOR_FLUSH_SECONDS = 0.5  # what a crash may re-publish (consumers dedupe by event id)
TAIL_LIMIT = 20_000  # committed rows kept in memory per sink; beyond, it reads the store again
# Seconds of one publishing round or confirmation: from a local broker's ms to an outage's seconds.
_ROUND_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)


class Committed(Protocol):
    @property
    def seq(self) -> int: ...


class CommitSignal(Protocol):
    """This node's store writer: lets the publisher wake on local commits instead of polling,
    and tells which documents it committed up to which seq (no store scan needed for those)."""

    commits: int

    @property
    def last_persisted(self) -> Mapping[str, Committed]: ...

    async def wait_for_commit(self, after: int) -> None: ...


@dataclass(frozen=True, slots=True)
class PublisherOptions:
    node_id: str
    window_seconds: float = 0.0
    poll_seconds: float = 0.1
    full_scan_seconds: float = 10.0
    partitions: int = 8
    max_backlog_per_document: int = 10_000
    text_fields: tuple[str, ...] = ("content",)


class EventMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.published = Counter(
            "nova_events_published_total", "Events published", ["sink", "type"], registry=registry
        )
        self.failures = Counter(
            "nova_events_publish_failures_total", "Failed publish rounds", ["sink"], registry=registry
        )
        self.lag_events = Gauge(
            "nova_events_lag_events", "Stored updates not yet published", ["sink"], registry=registry
        )
        self.lag_seconds = Gauge(
            "nova_events_lag_seconds", "Age of the oldest unpublished update", ["sink"], registry=registry
        )
        self.summaries = Counter(
            "nova_events_summaries_total",
            "Events that summarise updates compacted before publication",
            ["sink"],
            registry=registry,
        )
        self.round_seconds = Histogram(
            "nova_events_round_seconds",
            "One publishing round of a sink: scan, read, publish",
            ["sink"],
            buckets=_ROUND_BUCKETS,
            registry=registry,
        )
        self.publish_seconds = Histogram(
            "nova_events_publish_seconds",
            "Time a sink took to confirm one batch of events",
            ["sink"],
            buckets=_ROUND_BUCKETS,
            registry=registry,
        )
        self.dead_letters = Counter(
            "nova_events_dead_letters_total", "Webhook events given up on", ["sink"], registry=registry
        )


def partition_of(document: str, partitions: int) -> int:
    return zlib.crc32(document.encode()) % partitions


@dataclass
class SinkStatus:
    healthy: bool = True
    last_error: str | None = None
    lag_events: int = 0
    lag_seconds: float = 0.0
    partitions_held: int = 0
    published: int = 0
    last_published_at: float | None = None


class SinkRunner:
    """Publishes the log to one sink, in order per document, resuming from the store's cursor."""

    def __init__(
        self,
        sink: EventSink,
        store: Store,
        options: PublisherOptions,
        metrics: EventMetrics,
        commits: CommitSignal | None = None,
    ) -> None:
        self.sink = sink
        self._store = store
        self._options = options
        self._metrics = metrics
        self._commits = commits
        self._holder = f"{options.node_id}/{uuid.uuid4().hex[:8]}"
        self._source = ChangeSource(
            store, text_fields=options.text_fields, window_seconds=options.window_seconds
        )
        self._owned: set[int] = set()
        self._leases_renewed = 0.0
        self._watermark = 0
        self._last_full_scan = 0.0
        self._seen_commits = 0
        self._scanned_at = 0.0
        self._unpublished: dict[str, int] = {}  # per document, from the newest scan
        # Published positions, ahead of the store's cursors until the next flush (every
        # CURSOR_FLUSH_SECONDS, one transaction): a crash re-publishes at most that much,
        # with the same ids, instead of a store write per publication slowing the hub's commits.
        self._published: dict[str, int] = {}
        self._unflushed: dict[str, int] = {}
        self._flushed_at = 0.0
        self._audit_cursor: int | None = None
        # The committed log's tail as this node wrote it (single node only): rows of a document
        # past ``_tail_from[document]`` are all in ``_tail``, so publishing them needs no read.
        self.tail_enabled = False
        self._tail: dict[str, list[LoggedUpdate]] = {}
        self._tail_size = 0
        self._tail_from: dict[str, int] | None = None
        self._audit_read_at = 0.0
        self.status = SinkStatus()

    @property
    def name(self) -> str:
        return self.sink.name

    def owns(self, document: str) -> bool:
        return partition_of(document, self._options.partitions) in self._owned

    async def run(self) -> None:
        backoff = 0.1
        try:
            while True:
                started = time.perf_counter()
                try:
                    more = await self.round()
                    self._metrics.round_seconds.labels(sink=self.name).observe(time.perf_counter() - started)
                except (SinkUnavailable, StoreError, OSError) as exc:
                    self._failed(exc)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                    continue
                except Exception as exc:  # a bug or an unexpected driver error: keep publishing later
                    logger.exception("events: sink %s round failed unexpectedly", self.name)
                    self._failed(exc)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                    continue
                backoff = 0.1
                if not self.status.healthy:
                    logger.info("events: sink %s recovered", self.name)
                self.status.healthy, self.status.last_error = True, None
                if not more:
                    await self._idle()
        finally:
            await asyncio.shield(self._stop())

    async def _stop(self) -> None:
        with contextlib.suppress(StoreError, OSError):
            await self._flush_cursors()
        await self._release_leases()

    async def _flush_cursors(self) -> None:
        if self._unflushed:
            positions = dict(self._unflushed)
            await self._store.advance_event_cursors(self.name, positions)
            for document, seq in positions.items():
                if self._unflushed.get(document) == seq:
                    del self._unflushed[document]
        self._flushed_at = time.monotonic()

    def _failed(self, exc: BaseException) -> None:
        self._metrics.failures.labels(sink=self.name).inc()
        text = f"{type(exc).__name__}: {exc}"
        if self.status.healthy or text != self.status.last_error:
            logger.warning("events: sink %s failing, events stay in the store: %s", self.name, text)
        self.status.healthy, self.status.last_error = False, text
        self._watermark = 0  # rescan everything after an outage

    async def _idle(self) -> None:
        """Until this node commits something, or the poll interval passes."""
        wait = self._options.poll_seconds
        if self._commits is None:
            await asyncio.sleep(wait)
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                await self._commits.wait_for_commit(self._seen_commits)

    async def round(self) -> bool:
        """One pass; True when more is ready right away."""
        self._seen_commits = self._commits.commits if self._commits is not None else 0
        await self._maintain_leases()
        if not self._owned:
            self._report_lag([])
            return False
        now = time.time()
        local = self._local_changes() if now - self._scanned_at < self._options.poll_seconds else None
        if local is not None:
            pending = local  # only this node's commits since the last scan: no scan of the log
        else:
            if now - self._last_full_scan >= self._options.full_scan_seconds:
                self._watermark, self._last_full_scan = 0, now
            self._scanned_at = now
            scanned = await self._store.pending_events(self.name, self._watermark)
            if self._watermark == 0 and self._tail_from is None and self.tail_enabled:
                # Everything committed before the tail started is at or below these seqs.
                self._tail_from = {doc.document: doc.last_seq for doc in scanned}
            pending = [doc for doc in scanned if self.owns(doc.document)]
            self._report_lag(pending)
        more = False
        lowest_open = None
        highest = self._watermark
        for doc in pending:
            highest = max(highest, doc.last_seq)
            cursor = await self._publish_document(doc)
            if cursor < doc.last_seq:
                lowest_open = cursor if lowest_open is None else min(lowest_open, cursor)
                more = more or time.time() >= self._source.ready_at(doc.oldest_at)
        self._watermark = highest if lowest_open is None else min(highest, lowest_open)
        if 0 in self._owned and time.monotonic() - self._audit_read_at >= self._options.poll_seconds:
            more = await self._publish_audit() or more
        if time.monotonic() - self._flushed_at >= CURSOR_FLUSH_SECONDS:
            await self._flush_cursors()
        return more

    def _local_changes(self) -> list[PendingDocument] | None:
        """Documents this node committed past what it published, from the writer's bookkeeping;
        None when a store scan is needed (a document whose cursor is not known here yet, or a
        coalescing window, which needs the rows' times)."""
        if self._commits is None or self._options.window_seconds > 0:
            return None
        changed = []
        for document, committed in list(self._commits.last_persisted.items()):
            if not self.owns(document):
                continue
            published = self._published.get(document)
            if published is None:
                return None
            if committed.seq > published:
                changed.append(PendingDocument(document, published, committed.seq, 1, time.time()))
        return changed

    async def _publish_document(self, doc: PendingDocument) -> int:
        cursor = max(doc.cursor, self._published.get(doc.document, 0))
        if cursor >= doc.last_seq:
            return cursor  # published; the store's cursor catches up at the next flush
        committed = self._tail_rows(doc.document, cursor)
        batch = await self._source.next_batch(doc.document, cursor, committed)
        if batch is None:
            return cursor
        await self._send(batch.events)
        self._published[doc.document] = self._unflushed[doc.document] = batch.cursor
        self._trim_tail(doc.document, batch.cursor)
        return batch.cursor

    # -- the in-memory tail of this node's commits ----------------------------------------

    def tail_committed(self, entries: list[tuple[int, LogEntry]]) -> None:
        if not self.tail_enabled:
            return
        for seq, entry in entries:
            if self._tail_size >= TAIL_LIMIT:  # the sink is far behind: the store has it all
                logger.warning(
                    "events: sink %s is over %d updates behind; reading the store", self.name, TAIL_LIMIT
                )
                self.tail_enabled = False
                self._tail.clear()
                self._tail_size = 0
                return
            row = LoggedUpdate(seq, entry.update, entry.actor, entry.origin_node, entry.timestamp)
            self._tail.setdefault(entry.document, []).append(row)
            self._tail_size += 1

    def _tail_rows(self, document: str, cursor: int) -> list[LoggedUpdate] | None:
        """Every row of ``document`` after ``cursor``, when the tail is known to hold them all."""
        if not self.tail_enabled or self._tail_from is None or cursor < self._tail_from.get(document, 0):
            return None
        return [row for row in self._tail.get(document, []) if row.seq > cursor]

    def _trim_tail(self, document: str, cursor: int) -> None:
        rows = self._tail.get(document)
        if rows is None:
            return
        kept = [row for row in rows if row.seq > cursor]
        self._tail_size -= len(rows) - len(kept)
        if kept:
            self._tail[document] = kept
        else:
            del self._tail[document]

    async def _publish_audit(self) -> bool:
        """Audit-log events (restore, delete, revoke...): not latency-critical, read every poll."""
        self._audit_read_at = time.monotonic()
        cursor_sink = self.name + AUDIT_CURSOR[0]  # never a sink name, so never a document's cursor
        if self._audit_cursor is None:
            self._audit_cursor = await self._store.event_cursor(cursor_sink, AUDIT_CURSOR[1])
        records = await self._store.read_audit(self._audit_cursor, 500)
        if not records:
            return False
        events = [event for event in map(audit_event, records) if event is not None]
        await self._send(events)
        await self._store.advance_event_cursors(cursor_sink, {AUDIT_CURSOR[1]: records[-1].id})
        self._audit_cursor = records[-1].id
        return len(records) == 500

    async def _send(self, events: Sequence[Event]) -> None:
        wanted = [event for event in events if self.sink.wants(event)]
        if wanted:
            started = time.perf_counter()
            await self.sink.publish(wanted)
            self._metrics.publish_seconds.labels(sink=self.name).observe(time.perf_counter() - started)
        for event in wanted:
            self._metrics.published.labels(sink=self.name, type=event.type).inc()
            if event.data.get("summary"):
                self._metrics.summaries.labels(sink=self.name).inc()
        self.status.published += len(wanted)
        if wanted:
            self.status.last_published_at = time.time()

    def _report_lag(self, pending: Sequence[PendingDocument]) -> None:
        waiting = [doc for doc in pending if self._published.get(doc.document, 0) < doc.last_seq]
        self._unpublished = {doc.document: doc.pending for doc in waiting}
        self.status.lag_events = sum(doc.pending for doc in waiting)
        oldest = min((doc.oldest_at for doc in waiting), default=None)
        self.status.lag_seconds = max(0.0, time.time() - oldest) if oldest is not None else 0.0
        self._metrics.lag_events.labels(sink=self.name).set(self.status.lag_events)
        self._metrics.lag_seconds.labels(sink=self.name).set(self.status.lag_seconds)

    # -- leases -----------------------------------------------------------------------

    async def _maintain_leases(self) -> None:
        now = time.monotonic()
        if now - self._leases_renewed < LEASE_RENEW_SECONDS and self._owned:
            return
        self._leases_renewed = now
        owned = set()
        for partition in range(self._options.partitions):
            if await self._store.acquire_lease(self._lease(partition), self._holder, LEASE_TTL_SECONDS):
                owned.add(partition)
        if owned - self._owned:
            self._watermark = 0  # new partitions: their backlog may be anywhere in the log
            self._audit_cursor = None  # another node may have moved it meanwhile
            logger.info("events: sink %s publishes partitions %s on this node", self.name, sorted(owned))
        lost = self._owned - owned
        if lost:
            # Our positions there are true (flushing is monotonic); the new holder goes on from the store.
            await self._flush_cursors()
            for document in [d for d in self._published if partition_of(d, self._options.partitions) in lost]:
                self._published.pop(document, None)
                self._source.forget(document)
            logger.warning("events: sink %s lost partitions %s to another node", self.name, sorted(lost))
        self._owned = owned
        self.status.partitions_held = len(owned)

    def _lease(self, partition: int) -> str:
        return f"{self.name}/partition-{partition}"

    async def _release_leases(self) -> None:
        for partition in sorted(self._owned):
            with contextlib.suppress(StoreError, OSError):
                await self._store.release_lease(self._lease(partition), self._holder)
        self._owned = set()

    # -- compaction hold ----------------------------------------------------------------

    async def compaction_limit(self, document: str) -> int | None:
        """Newest seq compaction may cover without destroying what this sink has not published,
        or None once the document's backlog passed the bound (then it is summarised)."""
        cursor = max(await self._store.event_cursor(self.name, document), self._published.get(document, 0))
        if self._unpublished.get(document, 0) > self._options.max_backlog_per_document:
            logger.warning(
                "events: %r has over %d updates unpublished by %s; compacting them (summarised)",
                document,
                self._options.max_backlog_per_document,
                self.name,
            )
            return None
        return cursor


def audit_event(record: AuditRecord) -> Event | None:
    kind = AUDIT_EVENT_TYPES.get(record.event.action)
    if kind is None:
        return None
    event = record.event
    return Event(
        f"audit:{record.id}",
        kind,
        event.document,
        event.at,
        event.node,
        None,
        None,
        (event.subject,) if event.subject else (),
        {"action": event.action, "subject": event.subject, "detail": event.detail},
    )


class EventPublisher:
    """Every sink's runner, as one long-lived task owned by the hub's lifespan."""

    def __init__(
        self,
        store: Store,
        sinks: Sequence[EventSink],
        options: PublisherOptions,
        registry: CollectorRegistry,
        commits: CommitSignal | None = None,
    ) -> None:
        self.store = store
        self._metrics = EventMetrics(registry)
        self.runners = [SinkRunner(sink, store, options, self._metrics, commits) for sink in sinks]

    @property
    def enabled(self) -> bool:
        return bool(self.runners)

    async def unpublished_documents(self) -> set[str]:
        """Documents with stored updates some sink has not published (kept from tiering)."""
        documents: set[str] = set()
        for runner in self.runners:
            documents |= {doc.document for doc in await self.store.pending_events(runner.name, 0)}
        return documents

    def follow_local_commits(self) -> None:
        """Publish this node's commits from memory (only valid when no other node writes the store)."""
        for runner in self.runners:
            runner.tail_enabled = True

    def on_committed(self, entries: list[tuple[int, LogEntry]]) -> None:
        for runner in self.runners:
            runner.tail_committed(entries)

    async def run(self) -> None:
        try:
            async with asyncio.TaskGroup() as group:
                for runner in self.runners:
                    group.create_task(runner.run(), name=f"events:{runner.name}")
        finally:
            for runner in self.runners:
                with contextlib.suppress(Exception):
                    await asyncio.shield(runner.sink.close())

    async def compaction_limit(self, document: str) -> int | None:
        """What compaction of ``document`` may cover: the lowest cursor among sinks within bounds."""
        limits = [await runner.compaction_limit(document) for runner in self.runners]
        held = [limit for limit in limits if limit is not None]
        return min(held) if held else None

    def status(self) -> dict[str, dict[str, object]]:
        return {
            runner.name: {
                "healthy": runner.status.healthy,
                "last_error": runner.status.last_error,
                "lag_events": runner.status.lag_events,
                "lag_seconds": round(runner.status.lag_seconds, 3),
                "partitions_held": runner.status.partitions_held,
                "published": runner.status.published,
            }
            for runner in self.runners
        }


CompactionLimit = Callable[[str], Awaitable[int | None]]
