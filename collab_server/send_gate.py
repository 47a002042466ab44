"""LargeFrameGate: a crowd joining a huge document never holds a copy of it per connection.

Sending a frame copies it into the socket's write buffer (uvicorn frames it, asyncio keeps
what the kernel has not taken yet). For a 20 MB document joined by 150 clients at once that
is 150 buffered copies, gigabytes. Through this gate at most ``slots`` connections at a
time send a frame of ``threshold_bytes`` or more; the others wait with nothing copied (their
outbox holds a reference to the one shared encoding). A slot is released once the frame
has left the process: uvicorn's send waits while a socket's buffer is above its high-water
mark, so a tiny no-op update sent right after the large frame returns only when the large
one has drained (or after ``drain_timeout_seconds``, so one stalled client cannot hold a slot).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import crdt_core

# An update with no structs and no deletions: every Yjs client applies it as a no-op.
DRAIN_BARRIER = crdt_core.frame_update(b"\x00\x00")


class LargeFrameGate:
    def __init__(self, threshold_bytes: int, slots: int, drain_timeout_seconds: float) -> None:
        self.threshold_bytes = threshold_bytes
        self._slots = asyncio.Semaphore(slots)
        self._drain_timeout = drain_timeout_seconds
        self.waiting = 0  # connections waiting for a slot (for tests and metrics)

    async def send(self, frame: bytes, send: Callable[[bytes], Awaitable[None]]) -> None:
        """Send ``frame`` with ``send``: at once if it is small, else through a slot."""
        if len(frame) < self.threshold_bytes:
            await send(frame)
            return
        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        try:
            await send(frame)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._drain_timeout):
                    await send(DRAIN_BARRIER)
        finally:
            self._slots.release()
