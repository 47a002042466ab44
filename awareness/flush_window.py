"""FlushWindow: run a flush at most once per window, at once after a quiet period.

The one scheduler behind every coalescing sender of the hub (the presence batcher and
the room's relay of document updates): the first request after a quiet period flushes on
the next loop turn, adding no latency; requests that follow within the window wait for
its end and are served by one flush. The window is a function, read at each scheduling,
so it can follow the load (zero while the process has CPU to spare).

It lives in ``awareness`` because that is the lowest package that needs it; it knows
nothing about presence.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

Window = Callable[[], float]


class FlushWindow:
    def __init__(self, window_seconds: float | Window, flush: Callable[[], None]) -> None:
        self._window: Window = window_seconds if callable(window_seconds) else (lambda: window_seconds)
        self._flush = flush
        self._handle: asyncio.TimerHandle | asyncio.Handle | None = None
        self._last_flush = float("-inf")
        self._due = 0.0
        self.flushes = 0
        # How late the last flush ran after its planned time: a loop with a backlog of ready
        # work runs callbacks late, which process CPU alone does not show on a shared machine.
        self.lag = 0.0

    @property
    def scheduled(self) -> bool:
        return self._handle is not None

    def request(self) -> None:
        """Something is pending: flush it now-ish, or at the end of the current window."""
        if self._handle is not None:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        wait = self._last_flush + self._window() - now
        if wait <= 0:
            self._due = now
            self._handle = loop.call_soon(self._run)
        else:
            self._due = now + wait
            self._handle = loop.call_later(wait, self._run)

    def _run(self) -> None:
        self._handle = None
        self._last_flush = asyncio.get_running_loop().time()
        self.lag = max(0.0, self._last_flush - self._due)
        self.flushes += 1
        self._flush()

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
