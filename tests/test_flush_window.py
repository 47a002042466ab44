"""FlushWindow: the one coalescing scheduler of the relay and the presence batcher."""

from __future__ import annotations

import asyncio
import time

import pytest

from awareness.flush_window import FlushWindow

pytestmark = pytest.mark.fast  # in-process: part of `scripts/test.sh --fast`


async def test_first_request_flushes_next_turn_and_later_ones_share_the_window_end() -> None:
    flushed: list[float] = []
    second = asyncio.Event()

    def flush() -> None:
        flushed.append(time.monotonic())
        if len(flushed) == 2:
            second.set()

    window = FlushWindow(0.2, flush)
    started = time.monotonic()
    window.request()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert len(flushed) == 1  # no added latency after a quiet period
    for _ in range(5):
        window.request()  # within the window: one flush at its end
    assert window.scheduled
    async with asyncio.timeout(5):
        await second.wait()
    assert len(flushed) == 2 and window.flushes == 2 and not window.scheduled
    assert flushed[1] - started >= 0.19


async def test_lag_shows_a_loop_that_runs_the_flush_late() -> None:
    window = FlushWindow(0.0, lambda: None)
    window.request()
    time.sleep(0.03)  # a busy loop: the ready callback waits behind this
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert window.lag >= 0.025
    window.request()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert window.lag < 0.025
