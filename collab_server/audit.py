"""Audit trail writer: events are recorded without blocking and written in batches.

The queue is bounded; if the store stays down long enough to fill it, the oldest events
are dropped and the count is logged and exposed (never an unbounded buffer).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque

from persistence.base import AuditEvent, Store

logger = logging.getLogger(__name__)


class AuditLog:
    def __init__(self, store: Store, node: str, *, max_queued: int = 100_000, interval: float = 0.2) -> None:
        self._store = store
        self._node = node
        self._queue: deque[AuditEvent] = deque(maxlen=max_queued)
        self._interval = interval
        self._wakeup = asyncio.Event()
        # One flush at a time: the shutdown's final flush can start while the writer task's
        # is waiting on the store, and both would pop the same batch.
        self._flushing = asyncio.Lock()
        self.dropped = 0

    def record(self, action: str, subject: str | None, document: str | None, detail: str = "") -> None:
        if len(self._queue) == self._queue.maxlen:
            self.dropped += 1
        self._queue.append(AuditEvent(time.time(), action, subject, document, self._node, detail))
        self._wakeup.set()

    async def flush(self) -> None:
        async with self._flushing:
            while self._queue:
                batch = list(self._queue)
                await self._store.append_audit(batch)
                for _ in batch:
                    self._queue.popleft()

    async def run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            try:
                await self.flush()
            except Exception as exc:  # retried on the next round; the queue is bounded
                logger.warning(
                    "audit write failed (%d queued, %d dropped): %s", len(self._queue), self.dropped, exc
                )
                self._wakeup.set()
            await asyncio.sleep(self._interval)
