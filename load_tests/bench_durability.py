"""What strict durability costs: relay latency of one update, strict against relaxed, per store.

    python load_tests/bench_durability.py [--updates 400]

One writer and one reader on loopback; the writer sends one update, waits until the reader
has it, and repeats. Strict relays after the commit, relaxed before it; the difference is what
strict durability adds. Stores: SQLite (embedded default) and PostgreSQL (throwaway server).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pycrdt
from websockets.asyncio.client import connect

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import crdt_core  # noqa: E402
from tests.support.hub import HubProcess  # noqa: E402
from tests.support.services import PostgresServer  # noqa: E402


async def relay_latencies(url: str, count: int) -> list[float]:
    async with connect(url, compression=None) as writer, connect(url, compression=None) as reader:
        for ws in (writer, reader):  # skip the hub's initial sync step 1
            await ws.recv()
        doc: pycrdt.Doc[Any] = pycrdt.Doc()
        text = doc.get("content", type=pycrdt.Text)
        updates: list[bytes] = []
        doc.observe(lambda event: updates.append(event.update))
        latencies = []
        for i in range(count):
            text += str(i % 10)
            started = time.perf_counter()
            await writer.send(crdt_core.frame_update(updates.pop()))
            while True:
                message = crdt_core.parse_message(await reader.recv())
                if message.kind is crdt_core.MessageKind.SYNC_UPDATE:
                    break
            latencies.append((time.perf_counter() - started) * 1000)
        return latencies


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--updates", type=int, default=400)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, PostgresServer() as postgres:
        work = Path(tmp)
        stores = {"memory": "memory", "sqlite": f"sqlite:///{work / 'd.sqlite3'}", "postgresql": postgres.dsn}
        rows = {}
        for label, url in stores.items():
            for durability in ("relaxed", "strict"):
                hub = HubProcess(work, store=url, durability=durability).start()
                try:
                    latencies = asyncio.run(relay_latencies(hub.url(f"bench-{durability}"), args.updates))
                finally:
                    hub.stop()
                rows[(label, durability)] = (statistics.median(latencies), percentile(latencies, 0.99))
        print(
            f"{'store':<11} {'relaxed p50/p99 ms':>20} {'strict p50/p99 ms':>19} {'strict adds p50/p99 ms':>24}"
        )
        for label in stores:
            relaxed, strict = rows[(label, "relaxed")], rows[(label, "strict")]
            print(
                f"{label:<11} {relaxed[0]:>9.2f} / {relaxed[1]:<8.2f} {strict[0]:>8.2f} / {strict[1]:<8.2f}"
                f" {strict[0] - relaxed[0]:>11.2f} / {strict[1] - relaxed[1]:<8.2f}"
            )


if __name__ == "__main__":
    main()
