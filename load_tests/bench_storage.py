"""Storage benchmark: group-commit throughput, large-document load time, write amplification.

Run from the repository root (PostgreSQL: a throwaway server is started unless a DSN is given)::

    python -m load_tests.bench_storage                     # sqlite and postgres
    python -m load_tests.bench_storage --store sqlite --seconds 5
    python -m load_tests.bench_storage --postgres-dsn postgresql://user:pw@host/db

What it prints, per store:

- updates persisted per second at 1, 10 and 100 concurrent writers. A small batcher in
  front of the store collects for ``--window-ms`` (2 ms, then 0 ms: the next commit
  starts as soon as the previous one ends) and writes everything it has in one
  ``append`` (group commit). Each writer is a client with up to ``--inflight``
  updates sent and not yet durable: 1 = it waits for each update's commit before
  sending the next (throughput then bounded by writers / (window + commit)); 16 = a
  client streaming keystrokes while earlier ones are being committed.
- load time of a large document built by replaying the automerge-paper editing trace
  into a pycrdt Text, one update per edit (259,778 updates): snapshot only, and
  snapshot + a 10,000-update tail; both the store read alone and read + apply.
- write amplification, per throughput run: bytes the database wrote per byte of client
  updates (PostgreSQL: WAL bytes, and table growth; SQLite: bytes the process passed
  to write(2), from /proc/self/io, and file growth).
- encryption at rest (``--encryption both``, the default): every store is measured without
  and with the envelope-encryption layer (persistence/encryption) in the same run, on fresh
  databases, and the cost of each figure is printed as a ratio (on / off).

The editing trace is by Joseph Gentle and contributors (automerge-paper prepared by
Martin Kleppmann), CC BY 4.0; a copy ships in ``tests/data/editing-traces`` (attribution in
``tests/data/README.md``).
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import itertools
import json
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pycrdt

from load_tests.traces import trace_path
from persistence.base import LogEntry, MergeFunction, Store
from persistence.encryption.keys import StaticKeyProvider, new_key_entry
from persistence.encryption.store import EncryptedStore
from persistence.postgres import PostgresStore
from persistence.sqlite import SqliteStore

TRACE_NAME = "automerge-paper.json.gz"
TAIL_UPDATES = 10_000
LOAD_REPEATS = 5
APPEND_CHUNK = 2_000  # updates per append when bulk-loading the large document


# -- group commit ---------------------------------------------------------------------------


@dataclass
class Batcher:
    """Collect entries for ``window`` seconds, then write them all in one append."""

    store: Store
    window: float
    queue: list[tuple[LogEntry, asyncio.Future[int]]] = field(default_factory=list)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    batch_sizes: list[int] = field(default_factory=list)
    commit_seconds: list[float] = field(default_factory=list)
    stopping: bool = False

    async def submit(self, entry: LogEntry) -> int:
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.queue.append((entry, future))
        self.wakeup.set()
        return await future

    async def run(self) -> None:
        while not (self.stopping and not self.queue):
            if not self.queue:
                self.wakeup.clear()
                await self.wakeup.wait()
                continue
            await asyncio.sleep(self.window)
            batch, self.queue = self.queue, []
            started = time.perf_counter()
            try:
                seqs = await self.store.append([entry for entry, _ in batch])
            except Exception as exc:
                for _, future in batch:
                    future.set_exception(exc)
                raise
            self.commit_seconds.append(time.perf_counter() - started)
            self.batch_sizes.append(len(batch))
            for (_, future), seq in zip(batch, seqs, strict=True):
                future.set_result(seq)

    def stop(self) -> None:
        self.stopping = True
        self.wakeup.set()


def typing_updates(count: int, seed: int) -> list[bytes]:
    """Real Yjs updates: one typed character each, as an editor sends them."""
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    text = doc.get("content", type=pycrdt.Text)
    updates: list[bytes] = []
    subscription = doc.observe(lambda event: updates.append(event.update))
    rng = random.Random(seed)
    for _ in range(count):
        text.insert(rng.randint(0, len(text)), rng.choice("abcdefghij klmnop\n"))
    doc.unobserve(subscription)
    return updates


@dataclass
class Throughput:
    writers: int
    updates: int
    seconds: float
    update_bytes: int
    batch_sizes: list[int]
    commit_seconds: list[float]

    @property
    def per_second(self) -> float:
        return self.updates / self.seconds


async def run_writers(
    store: Store, writers: int, inflight: int, *, seconds: float, window: float, pool: list[bytes]
) -> Throughput:
    """``writers`` clients, each with up to ``inflight`` updates sent and not yet durable."""
    batcher = Batcher(store, window)
    flusher = asyncio.create_task(batcher.run())
    deadline = time.perf_counter() + seconds
    counts = [0] * writers
    sizes = [0] * writers

    async def writer(index: int, lane: int) -> None:
        document = f"bench-{writers}x{inflight}-{index}"
        position = index * 997 + lane * 131
        while time.perf_counter() < deadline:
            update = pool[position % len(pool)]
            position += 1
            await batcher.submit(LogEntry(document, update, f"user-{index}", "bench-node", time.time()))
            counts[index] += 1
            sizes[index] += len(update)

    started = time.perf_counter()
    try:
        await asyncio.gather(*(writer(i, lane) for i in range(writers) for lane in range(inflight)))
    finally:
        batcher.stop()
        await flusher
    elapsed = time.perf_counter() - started
    return Throughput(writers, sum(counts), elapsed, sum(sizes), batcher.batch_sizes, batcher.commit_seconds)


# -- write accounting ---------------------------------------------------------------------------


class WriteMeter:
    """Bytes the database wrote between ``start`` and ``stop``."""

    async def start(self) -> None: ...

    async def stop(self) -> dict[str, int]:
        return {}


class PostgresWriteMeter(WriteMeter):
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.before: tuple[str, int] = ("0/0", 0)

    async def _sample(self) -> tuple[str, int]:
        import asyncpg

        connection = await asyncpg.connect(self.dsn)
        try:
            lsn = await connection.fetchval("SELECT pg_current_wal_lsn()::text")
            size = await connection.fetchval(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c"
                " WHERE c.relname IN ('updates', 'checkpoints') AND c.relkind = 'r'"
            )
            return str(lsn), int(size)
        finally:
            await connection.close()

    async def start(self) -> None:
        self.before = await self._sample()

    async def stop(self) -> dict[str, int]:
        after = await self._sample()
        wal = lsn_bytes(after[0]) - lsn_bytes(self.before[0])
        return {"WAL": wal, "table growth": after[1] - self.before[1]}


def lsn_bytes(lsn: str) -> int:
    high, low = lsn.split("/")
    return (int(high, 16) << 32) + int(low, 16)


class SqliteWriteMeter(WriteMeter):
    def __init__(self, path: Path) -> None:
        self.path = path
        self.before: tuple[int, int] = (0, 0)

    def _sample(self) -> tuple[int, int]:
        io = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
        files = [self.path, self.path.with_name(self.path.name + "-wal")]
        return int(io["wchar"]), sum(f.stat().st_size for f in files if f.exists())

    async def start(self) -> None:
        self.before = self._sample()

    async def stop(self) -> dict[str, int]:
        after = self._sample()
        return {
            "bytes written (write(2))": after[0] - self.before[0],
            "file growth": after[1] - self.before[1],
        }


# -- the large document -------------------------------------------------------------------------


def trace_patches() -> tuple[str, Iterator[tuple[int, int, str]], str | None]:
    path = trace_path(TRACE_NAME.removesuffix(".json.gz"))
    if path.exists():
        with gzip.open(path, "rt", encoding="utf-8") as stream:
            trace = json.load(stream)
        patches = (tuple(p) for txn in trace["txns"] for p in txn["patches"])
        return f"{TRACE_NAME} (CC BY 4.0, Gentle et al.)", patches, trace["endContent"]
    rng = random.Random(7)

    def generated() -> Iterator[tuple[int, int, str]]:
        length = 0
        for _ in range(260_000):
            if length and rng.random() < 0.3:
                yield rng.randrange(length), 1, ""
                length -= 1
            else:
                yield rng.randint(0, length), 0, rng.choice("abcdefgh \n")
                length += 1

    return "generated 260,000 edits", generated(), None


def replay_trace() -> tuple[str, list[bytes], str]:
    """One update per edit, as an editor that sends every keystroke."""
    label, patches, expected = trace_patches()
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    text = doc.get("content", type=pycrdt.Text)
    updates: list[bytes] = []
    subscription = doc.observe(lambda event: updates.append(event.update))
    for position, delete, insert in patches:
        with doc.transaction():
            if delete:
                del text[position : position + delete]
            if insert:
                text.insert(position, insert)
    doc.unobserve(subscription)
    final = str(text)
    if expected is not None and final != expected:
        raise RuntimeError("trace replay does not reproduce the trace's final text")
    return label, updates, final


async def bulk_append(store: Store, document: str, updates: list[bytes]) -> None:
    now = time.time()
    for start in range(0, len(updates), APPEND_CHUNK):
        chunk = updates[start : start + APPEND_CHUNK]
        await store.append([LogEntry(document, u, "trace-author", "bench-node", now) for u in chunk])


def median_seconds(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:.1f} ms (min {min(samples) * 1000:.1f})"


def merge_through_doc(parts: Sequence[bytes]) -> bytes:
    """Snapshot + tail merged by applying them to a Doc: linear, unlike pycrdt.merge_updates,
    which is quadratic in the number of updates (40k updates: 10 s; 260k: minutes)."""
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    for part in parts:
        doc.apply_update(part)
    return doc.get_update()


async def prepare_large_document(store: Store, updates: list[bytes]) -> tuple[float, float]:
    """Store the trace twice: compacted into a snapshot, and snapshot + a tail. (bulk s, compaction s)"""
    merge: MergeFunction = merge_through_doc
    started = time.perf_counter()
    await bulk_append(store, "paper-snapshot", updates)
    await bulk_append(store, "paper-tail", updates[:-TAIL_UPDATES])
    bulk = time.perf_counter() - started
    started = time.perf_counter()
    await store.compact("paper-snapshot", merge)
    await store.compact("paper-tail", merge)
    compaction = (time.perf_counter() - started) / 2
    await bulk_append(store, "paper-tail", updates[-TAIL_UPDATES:])
    return bulk, compaction


async def load_once(store: Store, document: str, final: str) -> tuple[float, float, int]:
    """(store read s, read + apply s, stored bytes) of one load of ``document``."""
    started = time.perf_counter()
    stored = await store.load(document)
    middle = time.perf_counter()
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    text = doc.get("content", type=pycrdt.Text)
    if stored.snapshot is not None:
        doc.apply_update(stored.snapshot)
    for update in stored.tail:
        doc.apply_update(update)
    finished = time.perf_counter()
    if str(text) != final:
        raise RuntimeError(f"{document} did not load back to the trace's final text")
    size = len(stored.snapshot or b"") + sum(len(u) for u in stored.tail)
    return middle - started, finished - started, size


async def bench_large_document(
    stores: dict[str, Store], updates: list[bytes], final: str
) -> dict[str, dict[str, float]]:
    figures: dict[str, dict[str, float]] = {mode: {} for mode in stores}
    for mode, store in stores.items():
        bulk, compaction = await prepare_large_document(store, updates)
        figures[mode]["compaction s"] = compaction
        print(
            f"  [{mode}] bulk append of {2 * len(updates) - TAIL_UPDATES:,} updates: {bulk:.1f} s;"
            f" compaction of {len(updates):,} updates: {compaction:.2f} s"
        )
    for document, label in [
        ("paper-snapshot", "snapshot only"),
        ("paper-tail", f"snapshot + {TAIL_UPDATES:,} tail"),
    ]:
        reads: dict[str, list[float]] = {mode: [] for mode in stores}
        applies: dict[str, list[float]] = {mode: [] for mode in stores}
        sizes: dict[str, int] = {}
        for _ in range(LOAD_REPEATS):  # modes interleaved: machine noise hits both alike
            for mode, store in stores.items():
                read, applied, sizes[mode] = await load_once(store, document, final)
                reads[mode].append(read)
                applies[mode].append(applied)
        for mode in stores:
            print(
                f"  [{mode}] load {label} ({sizes[mode] / 1e6:.2f} MB): store read {median_seconds(reads[mode])};"
                f" read + apply into a pycrdt Doc {median_seconds(applies[mode])}"
            )
            figures[mode][f"load {label}: read s"] = statistics.median(reads[mode])
            figures[mode][f"load {label}: read + apply s"] = statistics.median(applies[mode])
    return figures


# -- driver ----------------------------------------------------------------------------------------


async def bench_store(
    name: str,
    stores: dict[str, Store],
    meters: dict[str, WriteMeter],
    args: argparse.Namespace,
    trace: tuple[str, list[bytes], str],
) -> dict[str, dict[str, float]]:
    """Every figure for each variant of the store (encryption off / on), runs interleaved
    round by round so that load from elsewhere on the machine hits every variant alike;
    medians over ``--rounds``. Returns the figures by variant and label."""
    print(f"\n== {name}; variants: {', '.join(stores)}; median of {args.rounds} interleaved rounds")
    figures: dict[str, dict[str, float]] = {mode: {} for mode in stores}
    pool = typing_updates(5_000, seed=1)
    for store in stores.values():
        await run_writers(store, 10, 1, seconds=0.5, window=0, pool=pool)  # warm up
    print(
        "  writers x in flight: updates/s persisted | mean batch | commit p50 / p99"
        " | bytes written per update byte"
    )
    for window_ms, inflight, writers in itertools.product(args.window_ms, args.inflight, args.writers):
        if inflight == args.inflight[0] and writers == args.writers[0]:
            print(f"  -- group commit window {window_ms:g} ms")
        runs: dict[str, list[tuple[Throughput, dict[str, int]]]] = {mode: [] for mode in stores}
        for _ in range(args.rounds):
            for mode, store in stores.items():
                await meters[mode].start()
                result = await run_writers(
                    store, writers, inflight, seconds=args.seconds, window=window_ms / 1000, pool=pool
                )
                runs[mode].append((result, await meters[mode].stop()))
        for mode, results in runs.items():
            rate = statistics.median(result.per_second for result, _ in results)
            commits = sorted(c for result, _ in results for c in result.commit_seconds)
            p50 = statistics.median(commits) * 1000
            p99 = commits[min(len(commits) - 1, int(len(commits) * 0.99))] * 1000
            update_bytes = sum(result.update_bytes for result, _ in results)
            written: dict[str, int] = {}
            for _, meter in results:
                for label, value in meter.items():
                    written[label] = written.get(label, 0) + value
            amplification = ", ".join(
                f"{label} {value / update_bytes:.1f}" for label, value in written.items()
            )
            batches = [size for result, _ in results for size in result.batch_sizes]
            print(
                f"  [{mode}] {writers:>3} x {inflight:<3}: {rate:>9,.0f} updates/s"
                f" | batch {statistics.mean(batches):>6.1f} | {p50:5.2f} / {p99:5.2f} ms | {amplification}"
            )
            figures[mode][f"{writers} x {inflight} @ {window_ms:g} ms: updates/s"] = rate
            figures[mode][f"{writers} x {inflight} @ {window_ms:g} ms: commit p50 ms"] = p50
    if not args.skip_load:
        for mode, found in (await bench_large_document(stores, trace[1], trace[2])).items():
            figures[mode].update(found)
    return figures


def print_encryption_cost(name: str, off: dict[str, float], on: dict[str, float]) -> None:
    """Same run, fresh databases: the cost of encryption at rest per figure (on / off)."""
    print(f"\n== {name}: encryption at rest, on / off (same run)")
    for label, plain in off.items():
        if label in on and plain > 0:
            ratio = on[label] / plain
            # Throughput: a cost is a drop; times: a cost is a rise.
            cost = (1 - ratio) if label.endswith("updates/s") else (ratio - 1)
            print(f"  {label:<48} off {plain:>10,.3f}  on {on[label]:>10,.3f}  cost {cost * 100:+6.1f} %")


BENCH_KEYS = StaticKeyProvider(new_key_entry("bench"))


async def bench_modes(
    name: str,
    make: Callable[[str], Store],
    meter: Callable[[str], WriteMeter],
    args: argparse.Namespace,
    trace: tuple[str, list[bytes], str],
) -> None:
    """The store without and/or with encryption, each on a fresh database (``make(mode)``)."""
    stores: dict[str, Store] = {}
    for mode in args.encryption:
        store = make(mode)
        stores[mode] = EncryptedStore(store, BENCH_KEYS) if mode == "on" else store
    try:
        for store in stores.values():
            await store.open()
        results = await bench_store(name, stores, {mode: meter(mode) for mode in stores}, args, trace)
    finally:
        for store in stores.values():
            await store.close()
    if "off" in results and "on" in results:
        print_encryption_cost(name, results["off"], results["on"])


async def main(args: argparse.Namespace) -> None:
    trace: tuple[str, list[bytes], str] = ("", [], "")
    if not args.skip_load:
        started = time.perf_counter()
        trace = replay_trace()
        print(
            f"large document: {trace[0]}: {len(trace[1]):,} updates,"
            f" {sum(len(u) for u in trace[1]) / 1e6:.1f} MB, final text {len(trace[2]):,} characters"
            f" (replayed in {time.perf_counter() - started:.1f} s)"
        )
    print(f"{args.seconds} s per throughput run; {os.cpu_count()} CPUs")
    with ExitStack() as stack:
        if "sqlite" in args.store:
            directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="nova-bench-")))
            await bench_modes(
                "SQLite (WAL, synchronous=FULL)",
                lambda mode: SqliteStore(directory / f"bench-{mode}.db"),
                lambda mode: SqliteWriteMeter(directory / f"bench-{mode}.db"),
                args,
                trace,
            )
        if "postgres" in args.store:
            dsn = args.postgres_dsn
            if dsn is None:
                from tests.support.services import PostgresServer

                dsn = stack.enter_context(PostgresServer()).dsn
            dsns = {mode: await fresh_database(dsn, f"nova_bench_{mode}") for mode in args.encryption}
            await bench_modes(
                "PostgreSQL (fsync=on, synchronous_commit=on)",
                lambda mode: PostgresStore(dsns[mode], max_connections=4),
                lambda mode: PostgresWriteMeter(dsns[mode]),
                args,
                trace,
            )


async def fresh_database(dsn: str, name: str) -> str:
    """An empty database beside the one ``dsn`` names (dropped first if it exists)."""
    import asyncpg

    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{name}"))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--store", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of each throughput run")
    parser.add_argument("--writers", type=lambda s: [int(n) for n in s.split(",")], default=[1, 10, 100])
    parser.add_argument(
        "--inflight",
        type=lambda s: [int(n) for n in s.split(",")],
        default=[1, 16],
        help="updates each writer may have sent and not yet durable (1 = wait for each ack)",
    )
    parser.add_argument(
        "--window-ms",
        type=lambda s: [float(n) for n in s.split(",")],
        default=[2.0, 0.0],
        help="group commit collection windows to try (0 = next commit as soon as the last one ends)",
    )
    parser.add_argument("--postgres-dsn", help="use this database instead of a throwaway server")
    parser.add_argument("--skip-load", action="store_true", help="skip the large-document load benchmark")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per throughput figure")
    parser.add_argument(
        "--encryption",
        choices=["off", "on", "both"],
        default="both",
        help="encryption at rest: both (default) measures off and on in the same run and prints the cost",
    )
    args = parser.parse_args()
    args.encryption = ["off", "on"] if args.encryption == "both" else [args.encryption]
    args.store = ["sqlite", "postgres"] if args.store == "both" else [args.store]
    return args


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
