"""One live document: apply updates, persist them, fan them out, and track presence.

All decisions about an incoming update are made here, in one place:
- it is validated and applied to the in-memory pycrdt document (bad bytes: nothing changes);
- only its effective part (what the document did not have yet) is logged and relayed;
- in strict durability it is relayed once its commit is written (a kill of the hub cannot
  lose it; the fsync that makes it survive power loss follows, and acknowledgements, joiners
  and other nodes wait for that), in relaxed mode right away;
- updates that become ready in the same loop turn leave as one merged frame, encoded once
  and shared by every recipient (server frames are not masked, so the bytes are identical);
- updates from other nodes (already stored by the node that received them) are relayed to
  this node's peers as they came, without being integrated: they wait, bounded, until this
  node needs the document's state (a joiner, a read, an edit, a local update) and are then
  integrated in one merged step. A node pays for the updates of a document only in
  proportion to its own clients of it (docs/architecture.md, "Scale-out").
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import pycrdt

import crdt_core
from awareness.batcher import PresenceBatcher
from awareness.catch_up import PresenceCatchUp
from awareness.flush_window import FlushWindow
from awareness.identity import Identity
from awareness.registry import PresenceLimits, PresenceRegistry, Refusal
from collab_server.broker import Broker, LocalBroker
from collab_server.closecodes import CloseCode
from collab_server.metrics import HubMetrics
from collab_server.pending import PendingLedger, PendingLimitExceeded, PendingLimits
from collab_server.ydoc import apply_update, missing_since
from crdt_core import AwarenessEntry, ProtocolError
from persistence.base import LogEntry
from persistence.group_commit import BacklogFull, GroupCommitWriter

logger = logging.getLogger(__name__)

# Weight of the newest gap in the running mean of the gaps between updates to relay: a fact
# of the estimator (how fast it follows a change of pace, ~4 updates), not a limit to tune.
_GAP_WEIGHT = 0.25
# The mean gap of a room that has been quiet (gaps are capped here): any gap longer than the
# largest window means "nothing to merge" alike, so this only has to exceed every window.
_QUIET_GAP_SECONDS = 0.25


@dataclass(frozen=True, slots=True)
class RelayPacing:
    """When the relay window opens (settings ``relay_idle_load``, ``relay_busy_load``, ``relay_lagging_ms``)."""

    idle_load: float = 0.35  # share of a core used by the hub below which updates leave at once
    busy_load: float = 0.7  # ... from which the window is at its full size
    lagging_seconds: float = 0.005  # a relay this late after its planned time: the loop has a backlog


class DocumentTooLarge(Exception):
    """Applying the update would grow the document past its size limit; nothing was applied."""


class JoinWaitExpired(Exception):
    """A joiner waited `join_wait_seconds` for the document's pending commits (close 1013)."""


class Peer(Protocol):
    """Anything that receives a document's traffic: a WebSocket connection, an agent session."""

    @property
    def peer_id(self) -> str: ...

    def __hash__(self) -> int: ...

    def deliver(self, frame: bytes, update: bytes | None) -> None:
        """Queue a document frame (``update`` is its unframed update, when mergeable)."""

    def deliver_presence(self, frame: bytes) -> None:
        """Queue a framed awareness message: the same bytes object goes to every peer."""

    def request_close(self, code: CloseCode, detail: str | None = None) -> None:
        """Leave with a named close code (a connection closes its socket; others just leave)."""


class SilentPeer:
    """A member that receives nothing: the hub working on a document, or an HTTP agent."""

    def __init__(self, peer_id: str) -> None:
        self.peer_id = peer_id

    def deliver(self, frame: bytes, update: bytes | None) -> None:
        return None

    def deliver_presence(self, frame: bytes) -> None:
        return None

    def request_close(self, code: CloseCode, detail: str | None = None) -> None:
        return None


class Room:
    def __init__(
        self,
        name: str,
        doc: pycrdt.Doc[Any],
        *,
        writer: GroupCommitWriter,
        node_id: str,
        strict: bool,
        awareness_window_seconds: float,
        metrics: HubMetrics,
        on_empty: Callable[[Room], None],
        broker: Broker | None = None,
        max_bytes: int = 2**62,
        relay_window_seconds: float = 0.0,
        relay_window_min_peers: int = 32,
        relay_pacing: RelayPacing | None = None,
        join_wait_seconds: float = 10.0,
        off_loop_diff_bytes: int = 1 << 20,
        load: Callable[[], float] = lambda: 1.0,
        clock: Callable[[], float] = time.monotonic,
        presence_limits: PresenceLimits | None = None,
        pending_limits: PendingLimits | None = None,
        max_unapplied_remote_bytes: int = 1 << 20,
    ) -> None:
        self.name = name
        self._doc = doc
        # Other nodes' updates relayed but not yet integrated into ``_doc`` (see ``settle``).
        self._unapplied: list[bytes] = []
        self._unapplied_bytes = 0
        self._max_unapplied_bytes = max_unapplied_remote_bytes
        self.peers: set[Peer] = set()
        self.presence = PresenceRegistry(limits=presence_limits)
        # What a peer that fell behind on presence gets instead of its backlog (shared).
        self.presence_catch_up = PresenceCatchUp(self.presence.snapshot)
        self.last_activity = time.monotonic()
        self.updated_at = time.time()
        self._writer = writer
        self._node_id = node_id
        self._strict = strict
        self._metrics = metrics
        self._on_empty = on_empty
        self._broker: Broker = broker if broker is not None else LocalBroker()
        self._presence_window = awareness_window_seconds
        self._batcher = PresenceBatcher(self._local_presence_window, self._broadcast_presence)
        # Presence changes of this node's own peers, coalesced for the other nodes.
        self._remote_batcher = PresenceBatcher(awareness_window_seconds, self._publish_presence)
        self._single_node = isinstance(self._broker, LocalBroker)
        self._ready: list[tuple[bytes, Peer | None, float]] = []
        self._relay = FlushWindow(self._relay_window, self._flush_relay)
        self._max_window = relay_window_seconds
        self._window_min_peers = relay_window_min_peers
        self._pacing = relay_pacing or RelayPacing()
        self._join_wait = join_wait_seconds
        self._off_loop_bytes = off_loop_diff_bytes
        self._load = load
        self._clock = clock
        # Running mean of the gaps between updates to relay: how many would one window merge.
        self._arrival_gap = _QUIET_GAP_SECONDS
        self._last_arrival = float("-inf")
        self._full_state: tuple[bytes, bytes] | None = None
        self._captured: list[bytes] = []
        self._subscription = doc.observe(self._capture)
        self.closed = False
        self.max_bytes = max_bytes
        # Updates pycrdt holds back until their dependencies arrive: counted and capped.
        self.pending = PendingLedger(pending_limits or PendingLimits())
        # Encoded size, kept approximately (load size plus every effective update since).
        self.size_bytes = len(doc.get_update())

    # -- document updates -------------------------------------------------------------

    @property
    def doc(self) -> pycrdt.Doc[Any]:
        """The document with everything this node has received integrated (see ``settle``)."""
        self.settle()
        return self._doc

    def settle(self) -> None:
        """Integrate the other nodes' updates relayed since the last time, in one merged step.

        They were stored by the node that received them and already sent on to this node's
        peers; only this node's own copy of the document lags until something needs it.
        """
        if not self._unapplied:
            return
        updates, self._unapplied, self._unapplied_bytes = self._unapplied, [], 0
        try:
            merged = updates[0] if len(updates) == 1 else crdt_core.merge_updates(updates)
        except (ValueError, ProtocolError) as exc:  # one bad message: integrate the others alone
            logger.warning("document %r: merging other nodes' updates failed (%s)", self.name, exc)
            for update in updates:
                self._integrate_remote(update)
        else:
            self._integrate_remote(merged)
        self._metrics.remote_updates_applied.inc(len(updates))

    def _integrate_remote(self, update: bytes) -> list[bytes]:
        """Apply another node's update to this node's copy; return its effective part."""
        self._captured.clear()
        try:
            apply_update(self._doc, update, "remote update")
        except ProtocolError as exc:
            logger.warning("document %r: skipping a bad update from another node: %s", self.name, exc)
            return []
        effective = self._captured[:]
        self._captured.clear()
        if effective:
            self._full_state = None
            self.size_bytes += sum(len(change) for change in effective)
        self._hold_back(update, None, changed=bool(effective))
        over = self.pending.over_limit(None)
        if over is not None:
            logger.warning("document %r: dropping updates from other nodes held back: %s", self.name, over)
            self._drop_held_back(None)
        return effective

    def _capture(self, event: pycrdt.TransactionEvent) -> None:
        self._captured.append(event.update)

    def apply_update(self, update: bytes, origin: Peer | None, actor: str | None) -> bool:
        """Apply a client's update; return True if it changed the document.

        Raises ProtocolError (nothing applied), BacklogFull (nothing applied: the store is
        behind and the client must retry later), DocumentTooLarge (nothing applied; what is
        held back counts too) or PendingLimitExceeded (what the document integrated is kept;
        the sender's held-back part is dropped when it leaves).
        """
        if not self._writer.has_room():
            raise BacklogFull(f"{self._writer.backlog} updates waiting for the store")
        self.settle()  # the update may build on what other nodes sent: integrate that first
        held = self.pending.total_bytes
        if self.size_bytes + held + len(update) > self.max_bytes:
            raise DocumentTooLarge(
                f"{self.size_bytes} + {held} held back + {len(update)} bytes > {self.max_bytes}"
            )
        received_at = time.perf_counter()
        self._captured.clear()
        apply_update(self._doc, update)
        effective = self._captured[:]
        self._captured.clear()
        accepted = self._accept(effective, origin, actor, received_at)
        # Fast path: the document took the update exactly as sent, so nothing waits.
        if self.pending.records or effective != [update]:
            self._hold_back(update, origin, changed=bool(effective))
        over = self.pending.over_limit(origin)
        if over is not None:
            raise PendingLimitExceeded(f"held back: {over}")
        return accepted

    def _hold_back(self, update: bytes, origin: Peer | None, *, changed: bool) -> None:
        """Count what of ``update`` (just applied) waits for missing dependencies."""
        state_vector = self._doc.get_state()
        if changed and self.pending.records:
            self.pending.recheck(state_vector)  # the change may have been what they waited for
        held = self.pending.record(update, origin, state_vector)
        if held:
            logger.debug("document %r: %d bytes held back for missing dependencies", self.name, held)

    def _drop_held_back(self, owner: Peer | None) -> None:
        """Forget ``owner``'s held-back updates: rebuild the document from its integrated state.

        pycrdt cannot drop pending structs, so the document is re-made from its own encoding
        (which leaves them out) and the others' held-back parts are applied to it again.
        """
        if not self.pending.drop(owner):
            return
        started = time.perf_counter()
        doc: pycrdt.Doc[Any] = pycrdt.Doc(skip_gc=True)
        doc.apply_update(self._doc.get_update())
        self._doc.unobserve(self._subscription)
        self._doc = doc
        for held in self.pending.records:
            doc.apply_update(held.update)
        self._subscription = doc.observe(self._capture)
        self._captured.clear()
        self.pending.recheck(doc.get_state())
        logger.info(
            "document %r: dropped held-back updates of %s (rebuilt in %.1f ms)",
            self.name,
            getattr(owner, "peer_id", "other nodes"),
            (time.perf_counter() - started) * 1000,
        )

    def edit(self, mutate: Callable[[pycrdt.Doc[Any]], object], actor: str | None) -> bool:
        """Apply a server-side edit (HTTP API, restore, agents) as one transaction.

        It is logged with ``actor`` and relayed to every peer like a client's update.
        """
        if not self._writer.has_room():
            raise BacklogFull(f"{self._writer.backlog} updates waiting for the store")
        self.settle()
        received_at = time.perf_counter()
        self._captured.clear()
        with self._doc.transaction():
            mutate(self._doc)
        effective = self._captured[:]
        self._captured.clear()
        return self._accept(effective, None, actor, received_at)

    def apply_remote_update(self, update: bytes, *, repair: bool = False) -> None:
        """An update another node received and stored: relay it here, never store it again.

        It goes to this node's peers as it came and waits to be integrated until the state
        is needed (``settle``), bounded by ``max_unapplied_remote_bytes``. A ``repair`` (a
        node's answer in the state exchange after a broker outage) may repeat much of what
        this node has: it is integrated at once and only its effective part is relayed.
        """
        received_at = time.perf_counter()
        self._metrics.remote_updates_in.inc()
        self.updated_at = time.time()
        if repair:
            self.settle()
            for change in self._integrate_remote(update):
                self._queue_relay(change, None, received_at)
            return
        self._full_state = None
        self._unapplied.append(update)
        self._unapplied_bytes += len(update)
        if self.peers:
            self._queue_relay(update, None, received_at)
        if self._unapplied_bytes > self._max_unapplied_bytes:
            self.settle()

    def _accept(
        self, effective: list[bytes], origin: Peer | None, actor: str | None, received_at: float
    ) -> bool:
        self.last_activity = time.monotonic()
        if not effective:
            return False
        self._full_state = None
        self.size_bytes += sum(len(change) for change in effective)
        self.updated_at = time.time()
        self._metrics.updates_in.inc()
        for change in effective:
            entry = LogEntry(self.name, change, actor, self._node_id, self.updated_at)
            if self._strict:
                self._writer.submit(
                    entry,
                    on_committed=None if self._single_node else self._publish_after_commit(change),
                    on_written=self._relay_after_write(change, origin, received_at),
                )
            else:
                self._writer.submit(entry)
                self._queue_relay(change, origin, received_at)
                self._broker.publish_update(self.name, change)
        return True

    def _relay_after_write(
        self, update: bytes, origin: Peer | None, received_at: float
    ) -> Callable[[int], None]:
        def written(_seq: int) -> None:
            self._queue_relay(update, origin, received_at)

        return written

    def _publish_after_commit(self, update: bytes) -> Callable[[int], None]:
        """Other nodes get only what is durable (their streams are trimmed, never re-stored)."""

        def committed(_seq: int) -> None:
            if not self.closed:
                self._broker.publish_update(self.name, update)

        return committed

    def _queue_relay(self, update: bytes, origin: Peer | None, received_at: float) -> None:
        if self.closed:
            return
        self._ready.append((update, origin, received_at))
        now = self._clock()
        gap = min(now - self._last_arrival, _QUIET_GAP_SECONDS)
        self._arrival_gap += _GAP_WEIGHT * (gap - self._arrival_gap)
        self._last_arrival = now
        self._relay.request()

    def _relay_window(self) -> float:
        """How long updates may gather before one merged frame goes to every peer.

        Each frame costs a write per peer; in a busy room merging a few milliseconds of
        updates cuts that cost several times. That is worth a delay only when the CPU is
        needed (the process busy, or the loop running this relay late because the machine's
        CPU is short): the window grows from zero at ``idle_load`` of a core to its full size
        (0.2 ms per peer, at most ``relay_window_ms``) at ``busy_load`` (``RelayPacing``). A small room, or a
        process with CPU to spare, relays at once. So does a room whose updates come further
        apart than the window: holding one would merge nothing and only delay it.
        """
        if len(self.peers) < self._window_min_peers:
            return 0.0
        pacing = self._pacing
        load = self._load()
        if self._relay.lag > pacing.lagging_seconds:  # the loop is behind: the CPU is short, whoever uses it
            load = max(load, pacing.busy_load)
        if load <= pacing.idle_load:
            return 0.0
        full = min(self._max_window, len(self.peers) * 0.0002)
        window = full * min(1.0, (load - pacing.idle_load) / (pacing.busy_load - pacing.idle_load))
        return window if self._arrival_gap < window else 0.0

    def _flush_relay(self) -> None:
        items, self._ready = self._ready, []
        if not items or not self.peers:
            return
        if len(items) == 1:
            update = items[0][0]
        else:
            update = crdt_core.merge_updates([item[0] for item in items])
        origins = {item[1] for item in items}
        # A sender gets its own update back only inside a batch that has others' updates
        # too; applying it again is a no-op for every Yjs client.
        skip = next(iter(origins)) if len(origins) == 1 else None
        frame = crdt_core.frame_update(update)
        sent = 0
        for peer in list(self.peers):
            if peer is not skip:
                peer.deliver(frame, update)
                sent += 1
        now = time.perf_counter()
        for _, _, received_at in items:
            self._metrics.fanout_seconds.observe(now - received_at)
        self._metrics.updates_out.inc(sent)
        self._metrics.bytes_out.inc(sent * len(frame))

    async def sync_step2_for(self, state_vector: bytes) -> bytes:
        """The framed sync step 2 a client with ``state_vector`` needs (only durable changes).

        A join storm is served from one cached encoding: new clients (empty state vector)
        share the very same frame; others get a diff of it, computed off the event loop
        by the native backend when the document is large.
        """
        if self._strict:
            await self.wait_durable()
        full = self._full_state_frame()
        if state_vector in (b"", b"\x00"):
            return full[1]
        try:
            if crdt_core.BACKEND == "rust" and len(full[0]) >= self._off_loop_bytes:
                missing = await asyncio.to_thread(crdt_core.diff_update, full[0], state_vector)
            else:
                missing = missing_since(self._doc, state_vector)
        except ValueError as exc:
            raise ProtocolError(f"invalid state vector: {exc}") from exc
        return crdt_core.frame_sync_step2(missing)

    async def wait_durable(self) -> None:
        """Wait until every update of this document accepted so far is stored (or set aside).

        Bounded by `join_wait_seconds`: raises JoinWaitExpired when the store is that far behind.
        """
        try:
            async with asyncio.timeout(self._join_wait):
                while self._writer.document_pending(self.name):
                    await self._writer.wait_document(self.name)
        except TimeoutError:
            raise JoinWaitExpired(f"commits of {self.name!r} pending for {self._join_wait:.0f}s") from None

    def _full_state_frame(self) -> tuple[bytes, bytes]:
        """(encoded state, framed sync step 2 of it), cached until the document changes."""
        if self._full_state is None:
            update = self.doc.get_update()
            self._full_state = (update, crdt_core.frame_sync_step2(update))
        return self._full_state

    def state_vector(self) -> bytes:
        return self.doc.get_state()

    # -- presence ---------------------------------------------------------------------

    def apply_presence(
        self, awareness_update: bytes, owner: Peer, identity: Identity | None = None
    ) -> list[Refusal]:
        """Apply an awareness update from ``owner``; return the entries it was refused.

        ``owner`` may only set and remove the client ids it introduced, within the limits;
        with ``identity`` (auth on) every state is stamped with it. Raises ProtocolError on
        bad bytes.
        """
        applied = self.presence.apply(awareness_update, owner, identity=identity)
        self._metrics.awareness_in.inc()
        self._presence_changed(applied.changed)
        return applied.refused

    def apply_presence_entries(
        self, entries: list[AwarenessEntry], owner: Peer, identity: Identity | None = None
    ) -> list[Refusal]:
        """Presence set by the hub on behalf of ``owner`` (an HTTP agent)."""
        applied = self.presence.apply_entries(entries, owner, identity=identity)
        self._presence_changed(applied.changed)
        return applied.refused

    def _presence_changed(self, changed: list[AwarenessEntry]) -> None:
        if changed:
            self._broadcast_later(changed)
            if not self._single_node:
                self._remote_batcher.add(changed)

    def apply_remote_presence(self, entries: list[AwarenessEntry], node: str) -> None:
        applied = self.presence.apply_entries(entries, ("node", node), limit_owner=False)
        if applied.changed:
            self._broadcast_later(applied.changed)
        if applied.refused:
            logger.debug(
                "document %r: node %s presence refused: %s", self.name, node, applied.refused[0].reason
            )

    def remove_node(self, node: str) -> None:
        self.remove_presence(self.presence.remove_owner(("node", node)))

    def _publish_presence(self, awareness_update: bytes) -> None:
        self._broker.publish_presence(self.name, crdt_core.decode_awareness(awareness_update))

    def presence_snapshot(self) -> bytes | None:
        entries = self.presence.snapshot()
        return crdt_core.encode_awareness(entries) if entries else None

    def presence_snapshot_frame(self) -> bytes | None:
        """Every live state as a framed awareness message (for a joiner, or a query)."""
        snapshot = self.presence_snapshot()
        return crdt_core.frame_awareness(snapshot) if snapshot is not None else None

    def remove_presence(self, entries: list[AwarenessEntry]) -> None:
        if entries:
            self._broadcast_later(entries)

    def _broadcast_later(self, entries: list[AwarenessEntry]) -> None:
        self.presence_catch_up.note(entries)
        self._batcher.add(entries)

    def expire_presence(self, timeout_seconds: float) -> None:
        self.remove_presence(self.presence.expire(timeout_seconds))

    def _local_presence_window(self) -> float:
        """Presence batches: the configured window, stretched in crowded rooms (0.25 ms per peer,
        at most 250 ms) so a presence storm costs a bounded number of sends per second."""
        return max(self._presence_window, min(0.25, len(self.peers) * 0.00025))

    def _broadcast_presence(self, awareness_update: bytes) -> None:
        # Framed once; every peer queues the same bytes object.
        frame = crdt_core.frame_awareness(awareness_update)
        self.presence_catch_up.invalidate()
        for peer in list(self.peers):
            peer.deliver_presence(frame)

    # -- membership -------------------------------------------------------------------

    def join(self, peer: Peer) -> None:
        self.peers.add(peer)
        self.last_activity = time.monotonic()

    def leave(self, peer: Peer) -> None:
        self.peers.discard(peer)
        self._drop_held_back(peer)
        removals = self.presence.remove_owner(peer)
        self.remove_presence(removals)
        if removals and not self._single_node:
            self._remote_batcher.add(removals)
        self.last_activity = time.monotonic()
        if not self.peers:
            self._on_empty(self)

    def close_peers(self, code: CloseCode, detail: str) -> None:
        for peer in list(self.peers):
            peer.request_close(code, detail)

    def close(self) -> None:
        self.closed = True
        self._batcher.close()
        self._remote_batcher.close()
        self._relay.cancel()
        self._doc.unobserve(self._subscription)
