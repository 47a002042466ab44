"""What strict durability costs: relay latency of one update, strict against relaxed, per store.

    python load_tests/bench_durability.py [--updates 400]

One writer and one reader on loopback; the writer sends one update, waits until the reader
has it, and repeats. Strict relays after the commit, relaxed before it; the difference is what
strict durability adds. Stores: SQLite (embedded default) and PostgreSQL (throwaway server),
each also with encryption at rest on (a master key file; fresh database): the last lines give
what encryption adds to the strict relay latency, from the same run.
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
from load_tests.bench_storage import fresh_database  # noqa: E402
from persistence.encryption.keys import new_key_entry  # noqa: E402
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
        keys = work / "master-keys"
        keys.write_text(new_key_entry("bench") + "\n")
        encrypted_dsn = asyncio.run(fresh_database(postgres.dsn, "bench_encrypted"))
        stores = {
            "memory": ("memory", {}),
            "sqlite": (f"sqlite:///{work / 'd.sqlite3'}", {}),
            "sqlite+enc": (f"sqlite:///{work / 'e.sqlite3'}", {"master_key_file": keys}),
            "postgresql": (postgres.dsn, {}),
            "postgres+enc": (encrypted_dsn, {"master_key_file": keys}),
        }
        rows = {}
        for label, (url, options) in stores.items():
            for durability in ("relaxed", "strict"):
                hub = HubProcess(work, store=url, durability=durability, **options).start()
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
        for plain, encrypted in (("sqlite", "sqlite+enc"), ("postgresql", "postgres+enc")):
            off, on = rows[(plain, "strict")], rows[(encrypted, "strict")]
            print(
                f"encryption at rest, {plain} strict relay: p50 {off[0]:.2f} -> {on[0]:.2f} ms"
                f" ({(on[0] / off[0] - 1) * 100:+.1f} %), p99 {off[1]:.2f} -> {on[1]:.2f} ms"
            )


if __name__ == "__main__":
    main()
