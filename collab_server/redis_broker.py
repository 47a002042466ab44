"""RedisBroker: hub nodes share documents through Redis Streams, one stream per document.

- Publishing is pipelined from one bounded queue (one XADD per document per round trip, no
  round trip waited for by the update's path); streams are trimmed by length (their content
  is already stored).
- One consumer task reads every followed stream with a single blocking XREAD.
- Round trips are paced: at most one read and one publish per ``window_seconds``. A message
  after a quiet spell goes at once; in a busy stream the messages of a window travel
  together, so a node's Redis work grows with windows, not with updates (on a loaded
  machine a round trip costs several hundred µs of CPU, far more than relaying an update).
- The round trips go through ``RedisWire`` (a lean RESP connection): a node's paced reads and
  publishes are a fixed cost every node pays whatever its own clients do, so their CPU per
  round trip decides how much a node pays for belonging to a cluster.
- Each node refreshes a heartbeat key; a node whose key expires is reported gone, so its
  clients' presence is removed everywhere within a few seconds.
- Redis down: publishing drops (bounded), the node reports not healthy and keeps serving
  its own clients; when Redis is back the hub runs a state-vector exchange per document.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

import crdt_core
from collab_server.broker import (
    BrokerListener,
    BrokerUnavailable,
    RemotePresence,
    RemoteUpdate,
    StateRequest,
)
from collab_server.redis_wire import RedisReplyError, RedisWire
from crdt_core import AwarenessEntry, ProtocolError
from persistence.redaction import redact_url

logger = logging.getLogger(__name__)

STREAM_PREFIX = "nova:doc:"
NODE_PREFIX = "nova:node:"
KIND_UPDATE = b"u"
KIND_REPAIR = b"f"  # an update of the state exchange after an outage (may repeat known content)
KIND_PRESENCE = b"p"
KIND_STATE_REQUEST = b"s"
KIND_REVOKE = b"r"
CONTROL_STREAM = "nova:control"  # node-wide messages (revocations), followed by every node
# What a Redis call can fail with: an error reply, or the connection (refused, lost, timed out, TLS).
RedisError = (RedisReplyError, OSError)


class RedisBroker:
    def __init__(
        self,
        url: str,
        node_id: str,
        *,
        stream_max_len: int = 10_000,
        publish_queue_max: int = 50_000,
        heartbeat_seconds: float = 1.0,
        node_timeout_seconds: float = 3.0,
        block_ms: int = 100,
        window_seconds: float = 0.0,
        connect_options: dict[str, Any] | None = None,
    ) -> None:
        self._url = url
        # TLS options for rediss:// (collab_server.tls.redis_tls_options).
        self._connect_options = connect_options or {}
        self._node = node_id
        self._node_bytes = node_id.encode()
        self._stream_max_len = stream_max_len
        self._queue: deque[tuple[str, bytes, bytes]] = deque()
        self._queue_max = publish_queue_max
        self._queue_ready = asyncio.Event()
        self._heartbeat = heartbeat_seconds
        self._node_timeout = node_timeout_seconds
        self._block_ms = block_ms
        self._window = window_seconds
        self._following: dict[str, str] = {}
        self._control_position = "$"
        self._remote_nodes: set[str] = set()
        self._listener: BrokerListener | None = None
        self._redis: RedisWire | None = None
        self._reader: RedisWire | None = None
        self.healthy = True
        self.dropped = 0
        self.published = 0
        self.round_trips = 0

    # -- lifetime ---------------------------------------------------------------------

    async def open(self, listener: BrokerListener) -> None:
        self._listener = listener
        try:
            self._redis = RedisWire(self._url, connect_options=self._connect_options)
            # Its calls wait up to a blocking read's time (plus a margin), set per call.
            self._reader = RedisWire(self._url, reply_timeout=None, connect_options=self._connect_options)
        except ValueError as exc:
            raise BrokerUnavailable(f"bad Redis URL {redact_url(self._url)}: {exc}") from None
        try:
            await self._redis.command("PING")
            await self._beat()
            newest: Any = await self._redis.command("XREVRANGE", CONTROL_STREAM, "+", "-", "COUNT", 1)
            self._control_position = newest[0][0].decode() if newest else "0-0"
        except RedisError as exc:
            await self.close()
            raise BrokerUnavailable(f"cannot reach Redis at {redact_url(self._url)}: {exc}") from None

    async def close(self) -> None:
        for client in (self._redis, self._reader):
            if client is not None:
                await client.aclose()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._consume(), name="broker-consume")
            tasks.create_task(self._publish_loop(), name="broker-publish")
            tasks.create_task(self._heartbeat_loop(), name="broker-heartbeat")

    # -- following --------------------------------------------------------------------

    async def follow(self, document: str) -> str:
        assert self._redis is not None
        position = "0-0"
        try:
            newest: Any = await self._redis.command(
                "XREVRANGE", STREAM_PREFIX + document, "+", "-", "COUNT", 1
            )
            if newest:
                position = newest[0][0].decode()
        except RedisError as exc:
            # Not fatal: the state exchange after recovery repairs what this node misses.
            self._mark_unhealthy(exc)
            position = "$"
        self._following[document] = position
        return position

    def unfollow(self, document: str) -> None:
        self._following.pop(document, None)

    # -- publishing -------------------------------------------------------------------

    def _enqueue(self, document: str, kind: bytes, data: bytes) -> None:
        self._enqueue_key(STREAM_PREFIX + document, kind, data)

    def _enqueue_key(self, key: str, kind: bytes, data: bytes) -> None:
        if len(self._queue) >= self._queue_max or not self.healthy:
            self.dropped += 1
            return
        self._queue.append((key, kind, data))
        self._queue_ready.set()

    def publish_update(self, document: str, update: bytes, *, repair: bool = False) -> None:
        self._enqueue(document, KIND_REPAIR if repair else KIND_UPDATE, update)

    def publish_presence(self, document: str, entries: Sequence[AwarenessEntry]) -> None:
        self._enqueue(document, KIND_PRESENCE, crdt_core.encode_awareness(entries))

    def request_state(self, document: str, state_vector: bytes) -> None:
        self._enqueue(document, KIND_STATE_REQUEST, state_vector)

    def publish_revocation(self, token_id: str) -> None:
        self._enqueue_key(CONTROL_STREAM, KIND_REVOKE, token_id.encode())

    async def _paced(self, last: float) -> float:
        """Wait until ``window_seconds`` after ``last`` (a round trip's start); return the new start."""
        loop = asyncio.get_running_loop()
        wait = last + self._window - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        return loop.time()

    async def _publish_loop(self) -> None:
        assert self._redis is not None
        started = float("-inf")
        while True:
            if not self._queue:
                self._queue_ready.clear()
                await self._queue_ready.wait()
                continue
            started = await self._paced(started)
            batch = [self._queue.popleft() for _ in range(min(len(self._queue), 1000))]
            commands = [
                (
                    "XADD",
                    key,
                    "MAXLEN",
                    "~",
                    self._stream_max_len,
                    "*",
                    "n",
                    self._node_bytes,
                    "k",
                    kind,
                    "d",
                    data,
                )
                for key, kind, data in coalesced(batch)
            ]
            try:
                await self._redis.pipeline(commands)
                self.round_trips += 1
                self.published += len(batch)
            except RedisError as exc:
                self.dropped += len(batch)
                self._mark_unhealthy(exc)
                await asyncio.sleep(0.2)

    # -- consuming --------------------------------------------------------------------

    async def _consume(self) -> None:
        assert self._reader is not None
        backoff = 0.1
        started = float("-inf")
        while True:
            started = await self._paced(started)
            keys = [STREAM_PREFIX + doc for doc in self._following]
            positions = list(self._following.values())
            keys.append(CONTROL_STREAM)
            positions.append(self._control_position)
            try:
                replies: Any = await self._reader.command(
                    "XREAD", "COUNT", 1000, "BLOCK", self._block_ms, "STREAMS", *keys, *positions,
                    timeout=self._block_ms / 1000 + 5.0,
                )  # fmt: skip
            except RedisError as exc:
                self._mark_unhealthy(exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            backoff = 0.1
            self._mark_healthy()
            for raw_key, entries in replies or []:
                if raw_key.decode() == CONTROL_STREAM:
                    self._control(entries)
                    continue
                document = raw_key.decode()[len(STREAM_PREFIX) :]
                if document not in self._following:
                    continue
                for entry_id, flat in entries:
                    self._following[document] = entry_id.decode()
                    self._dispatch(document, entry_id, _fields(flat))

    def _control(self, entries: list[list[Any]]) -> None:
        assert self._listener is not None
        for entry_id, flat in entries:
            fields = _fields(flat)
            self._control_position = entry_id.decode()
            if fields.get(b"n") == self._node_bytes:
                continue
            if fields.get(b"k") == KIND_REVOKE and fields.get(b"d"):
                self._listener.on_revoked(fields[b"d"].decode(errors="replace"))
            else:
                logger.warning("skipping malformed control entry %s", entry_id)

    def _dispatch(self, document: str, entry_id: bytes, fields: dict[bytes, bytes]) -> None:
        assert self._listener is not None
        node_raw = fields.get(b"n")
        kind = fields.get(b"k")
        data = fields.get(b"d")
        if node_raw is None or kind is None or data is None:
            logger.warning(
                "skipping malformed stream entry %s of document %r: fields %s",
                entry_id,
                document,
                sorted(fields),
            )
            return
        if node_raw == self._node_bytes:
            return
        node = node_raw.decode(errors="replace")
        self._remote_nodes.add(node)
        try:
            if kind in (KIND_UPDATE, KIND_REPAIR):
                self._listener.on_remote_update(RemoteUpdate(document, data, node, kind == KIND_REPAIR))
            elif kind == KIND_PRESENCE:
                entries = crdt_core.decode_awareness(data)
                self._listener.on_remote_presence(RemotePresence(document, entries, node))
            elif kind == KIND_STATE_REQUEST:
                self._listener.on_state_request(StateRequest(document, data, node))
            else:
                logger.warning("skipping stream entry %s of %r: unknown kind %r", entry_id, document, kind)
        except ProtocolError as exc:
            logger.warning("skipping stream entry %s of %r from %s: %s", entry_id, document, node, exc)

    # -- node liveness ----------------------------------------------------------------

    def _beat_command(self) -> tuple[str | int, ...]:
        return ("SET", NODE_PREFIX + self._node, str(time.time()), "PX", int(self._node_timeout * 1000))

    async def _beat(self) -> None:
        assert self._redis is not None
        await self._redis.command(*self._beat_command())

    async def _heartbeat_loop(self) -> None:
        assert self._redis is not None and self._listener is not None
        while True:
            await asyncio.sleep(self._heartbeat)
            # One round trip: this node's beat and whether each known node still beats.
            nodes = list(self._remote_nodes)
            try:
                replies = await self._redis.pipeline(
                    [self._beat_command(), *(("EXISTS", NODE_PREFIX + node) for node in nodes)]
                )
            except RedisError as exc:
                self._mark_unhealthy(exc)
                continue
            for node, alive in zip(nodes, replies[1:], strict=True):
                if not alive:
                    self._remote_nodes.discard(node)
                    logger.info("node %s stopped heart-beating: removing its presence", node)
                    self._listener.on_node_gone(node)
            self._mark_healthy()

    def _mark_unhealthy(self, exc: BaseException) -> None:
        if self.healthy:
            logger.warning("Redis unreachable (%s): serving local clients only", exc)
        self.healthy = False

    def _mark_healthy(self) -> None:
        if not self.healthy:
            self.healthy = True
            logger.info("Redis reachable again: re-syncing documents with other nodes")
            assert self._listener is not None
            self._listener.on_broker_recovered()


def _fields(flat: list[bytes]) -> dict[bytes, bytes]:
    """A stream entry's fields as a dict (Redis sends them as a flat list)."""
    return dict(zip(flat[::2], flat[1::2], strict=True))


def coalesced(batch: list[tuple[str, bytes, bytes]]) -> list[tuple[str, bytes, bytes]]:
    """One entry per document for the updates of one round trip: every node that reads the
    stream parses and relays one merged update instead of several (a CRDT merge does not
    depend on order). Repairs, presence and control messages stay as they are."""
    update_at: dict[str, int] = {}
    out: list[tuple[str, bytes, list[bytes]]] = []
    for key, kind, data in batch:
        if kind == KIND_UPDATE and key in update_at:
            out[update_at[key]][2].append(data)
            continue
        if kind == KIND_UPDATE:
            update_at[key] = len(out)
        out.append((key, kind, [data]))
    return [
        (key, kind, parts[0] if len(parts) == 1 else crdt_core.merge_updates(parts))
        for key, kind, parts in out
    ]
