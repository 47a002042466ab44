"""How long the hub takes to load a large document: snapshot only, and snapshot + 10k-update tail.

    python load_tests/bench_load.py            # SQLite and PostgreSQL (throwaway server)

The document is the automerge-paper editing trace (259,778 keystrokes; see
tests/data/README.md — Joseph Gentle and contributors, CC BY 4.0) replayed into one
update per keystroke. Figures come from the hub's own "loaded document" log line (store read,
merge of the tail off the event loop, apply) and from the first HTTP read that triggers it.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import pycrdt

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import crdt_core  # noqa: E402
from load_tests.traces import trace_path  # noqa: E402
from persistence.base import LogEntry, Store  # noqa: E402
from persistence.factory import store_from_url  # noqa: E402
from tests.support.hub import HubProcess  # noqa: E402
from tests.support.services import PostgresServer  # noqa: E402

TRACE = trace_path("automerge-paper")
TAIL = 10_000


def keystroke_updates() -> list[bytes]:
    trace = json.loads(gzip.decompress(TRACE.read_bytes()))
    doc: pycrdt.Doc[Any] = pycrdt.Doc(client_id=1)
    text = doc.get("content", type=pycrdt.Text)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    current = ""
    for txn in trace["txns"]:
        for position, deleted, inserted in txn["patches"]:
            start = len(current[:position].encode())
            if deleted:
                del text[start : start + len(current[position : position + deleted].encode())]
            if inserted:
                text.insert(start, inserted)
            current = current[:position] + inserted + current[position + deleted :]
    return updates


async def fill(store: Store, updates: list[bytes], tail: int) -> None:
    await store.open()
    head = updates[: len(updates) - tail]
    await store.append([LogEntry("snapshot-only", crdt_core.merge_updates(updates), "bench", "bench", 1.0)])
    await store.compact("snapshot-only", crdt_core.merge_updates)
    await store.append([LogEntry("with-tail", crdt_core.merge_updates(head), "bench", "bench", 1.0)])
    await store.compact("with-tail", crdt_core.merge_updates)
    for i in range(len(head), len(updates), 1000):
        await store.append([LogEntry("with-tail", u, "bench", "bench", 1.0) for u in updates[i : i + 1000]])
    await store.close()


def measure(workdir: Path, url: str) -> dict[str, tuple[float, float]]:
    results = {}
    for document in ("snapshot-only", "with-tail"):
        hub = HubProcess(workdir, store=url).start()
        try:
            started = time.perf_counter()
            response = httpx.get(f"{hub.http}/api/documents/{document}/text", timeout=120)
            first_read = (time.perf_counter() - started) * 1000
            response.raise_for_status()
            match = re.search(rf"loaded document '{document}': \d+ stored parts in ([0-9.]+) ms", hub.log())
            assert match, hub.log()
            results[document] = (float(match.group(1)), first_read)
        finally:
            hub.stop()
    return results


def main() -> None:
    updates = keystroke_updates()
    print(f"{len(updates)} keystroke updates; tail {TAIL}; backend {crdt_core.BACKEND}")
    with tempfile.TemporaryDirectory() as tmp, PostgresServer() as postgres:
        work = Path(tmp)
        stores = {"sqlite": f"sqlite:///{work / 'load.sqlite3'}", "postgresql": postgres.dsn}
        print(f"{'store':<11} {'document':<14} {'hub load ms':>12} {'first read ms':>14}")
        for label, url in stores.items():
            asyncio.run(fill(store_from_url(url), updates, TAIL))
            for document, (load_ms, read_ms) in measure(work, url).items():
                print(f"{label:<11} {document:<14} {load_ms:>12.1f} {read_ms:>14.1f}")


if __name__ == "__main__":
    main()
