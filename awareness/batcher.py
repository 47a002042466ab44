"""Coalesces presence changes of one document into at most one broadcast per window.

The first change after a quiet period goes out on the next loop turn (no added latency);
changes that follow within the window wait for its end and leave as one message holding
the newest state of each client. A presence storm thus costs a bounded number of
broadcasts per second, whatever the number of clients. The scheduling is FlushWindow's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import crdt_core
from awareness.flush_window import FlushWindow, Window
from crdt_core import AwarenessEntry

Broadcast = Callable[[bytes], None]


class PresenceBatcher:
    def __init__(self, window_seconds: float | Window, broadcast: Broadcast) -> None:
        """``window_seconds`` may be a function, read at each scheduling (a window that grows with load)."""
        self._broadcast = broadcast
        self._pending: dict[int, AwarenessEntry] = {}
        self._window = FlushWindow(window_seconds, self.flush)

    @property
    def flushes(self) -> int:
        return self._window.flushes

    def add(self, entries: Iterable[AwarenessEntry]) -> None:
        for entry in entries:
            self._pending[entry.client_id] = entry
        if self._pending:
            self._window.request()

    def flush(self) -> None:
        if not self._pending:
            return
        entries = list(self._pending.values())
        self._pending.clear()
        self._broadcast(crdt_core.encode_awareness(entries))

    def close(self) -> None:
        self._window.cancel()
        self._pending.clear()
