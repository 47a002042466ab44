"""Coalesces presence changes of one document into at most one broadcast per window.

The first change after a quiet period goes out on the next loop turn (no added latency);
changes that follow within the window wait for its end and leave as one message holding
the newest state of each client. A presence storm thus costs a bounded number of
broadcasts per second, whatever the number of clients.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

import crdt_core
from crdt_core import AwarenessEntry

Broadcast = Callable[[bytes], None]
Window = Callable[[], float]


class PresenceBatcher:
    def __init__(self, window_seconds: float | Window, broadcast: Broadcast) -> None:
        """``window_seconds`` may be a function, read at each scheduling (a window that grows with load)."""
        self._window: Window = window_seconds if callable(window_seconds) else (lambda: window_seconds)
        self._broadcast = broadcast
        self._pending: dict[int, AwarenessEntry] = {}
        self._timer: asyncio.TimerHandle | asyncio.Handle | None = None
        self._last_flush = float("-inf")
        self.flushes = 0

    def add(self, entries: Iterable[AwarenessEntry]) -> None:
        for entry in entries:
            self._pending[entry.client_id] = entry
        if not self._pending or self._timer is not None:
            return
        loop = asyncio.get_running_loop()
        wait = self._last_flush + self._window() - loop.time()
        if wait <= 0:
            self._timer = loop.call_soon(self.flush)
        else:
            self._timer = loop.call_later(wait, self.flush)

    def flush(self) -> None:
        self._timer = None
        if not self._pending:
            return
        entries = list(self._pending.values())
        self._pending.clear()
        self._last_flush = asyncio.get_running_loop().time()
        self.flushes += 1
        self._broadcast(crdt_core.encode_awareness(entries))

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._pending.clear()
