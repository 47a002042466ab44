"""CpuGauge: how busy this hub process is, as a share of one core over the last moments.

The relay holds updates back to merge them only when that saves CPU the process needs:
with a core to spare, every update leaves at once. Reading the gauge is cheap (a clock
read); it is resampled at most every ``period_seconds`` from the process's CPU time.
"""

from __future__ import annotations

import time


class CpuGauge:
    def __init__(self, period_seconds: float = 0.1) -> None:
        self._period = period_seconds
        self._wall = time.monotonic()
        self._cpu = time.process_time()
        self.load = 0.0  # CPU seconds per wall second (1.0: one core busy) in the last sample

    def __call__(self) -> float:
        now = time.monotonic()
        elapsed = now - self._wall
        if elapsed >= self._period:
            cpu = time.process_time()
            self.load = (cpu - self._cpu) / elapsed
            self._wall, self._cpu = now, cpu
        return self.load
