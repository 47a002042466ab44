"""Archive throughput and full-store restore time (persistence/archive).

    python -m load_tests.bench_archive                   # 1,000 documents, S3Proxy and a directory
    python -m load_tests.bench_archive --documents 200 --target local

Builds a SQLite store of ``--documents`` documents (each: ``--updates`` typed updates of a
few hundred characters; every other one compacted into a checkpoint, so both kinds of
object are archived), then per target (S3Proxy on loopback, started from the jars
scripts/install_s3proxy.sh caches; and a local directory):

- a full archive pass: documents/s and MB/s of objects written;
- a second pass with nothing changed (what a scheduled pass costs on a quiet hub);
- a pass after 10 % of the documents changed (only those are written);
- ``restore_store`` into an empty SQLite store: the whole store rebuilt from the archive
  and every document checked equal to its archive (history included): seconds, documents/s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pycrdt

import crdt_core
from persistence.archive.archiver import Archiver, restore_store
from persistence.archive.base import ObjectStore
from persistence.archive.local import LocalObjectStore
from persistence.archive.s3 import S3ObjectStore
from persistence.base import LogEntry
from persistence.sqlite import SqliteStore

WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "zeta",
    "eta",
    "theta",
    "iota",
    "kappa",
    "lambda",
    "mu",
    "nu",
    "xi",
    "omicron",
    "pi",
]


def typed_updates(count: int, rng: random.Random) -> list[bytes]:
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    text = doc.get("content", type=pycrdt.Text)
    updates: list[bytes] = []
    subscription = doc.observe(lambda event: updates.append(event.update))
    for _ in range(count):
        text += " ".join(rng.choice(WORDS) for _ in range(40)) + "\n"
    doc.unobserve(subscription)
    return updates


async def build_store(path: Path, documents: int, updates: int) -> None:
    rng = random.Random(7)
    async with SqliteStore(path) as store:
        for n in range(documents):
            name = f"project/doc-{n:05d}.md"
            now = time.time()
            await store.append(
                [LogEntry(name, u, "writer", "bench", now) for u in typed_updates(updates, rng)]
            )
            if n % 2:
                await store.compact(name, crdt_core.merge_updates)


async def bench_target(label: str, objects: ObjectStore, source: Path, scratch: Path, documents: int) -> None:
    print(f"\n== {label}: {objects.describe()}")
    await objects.open()
    async with SqliteStore(source) as store:
        archiver = Archiver(store, objects)
        report = await archiver.run_pass()
        print(
            f"  full pass: {report.documents:,} documents, {report.objects:,} objects, "
            f"{report.bytes / 1e6:.1f} MB in {report.seconds:.2f} s: "
            f"{report.documents / report.seconds:,.0f} documents/s, {report.bytes / 1e6 / report.seconds:.2f} MB/s"
        )
        quiet = await archiver.run_pass()
        print(f"  pass with nothing changed: {quiet.seconds * 1000:.0f} ms ({quiet.unchanged:,} unchanged)")
        rng = random.Random(11)
        changed = [f"project/doc-{n:05d}.md" for n in rng.sample(range(documents), documents // 10)]
        for name in changed:
            await store.append([LogEntry(name, typed_updates(1, rng)[0], "writer", "bench", time.time())])
        partial = await archiver.run_pass()
        print(
            f"  pass after {len(changed)} documents changed: {partial.documents} archived, "
            f"{partial.objects} objects, {partial.bytes / 1e6:.2f} MB in {partial.seconds:.2f} s"
        )
    target = scratch / f"restored-{label.split(maxsplit=1)[0].lower()}.db"
    async with SqliteStore(target) as empty:
        started = time.perf_counter()
        restored = await restore_store(Archiver(empty, objects), empty)
        seconds = time.perf_counter() - started
    print(
        f"  full restore into an empty store: {restored.documents:,} documents ({restored.rows:,} rows) in "
        f"{seconds:.2f} s ({restored.documents / seconds:,.0f} documents/s); "
        f"{restored.verified:,} verified equal, {len(restored.mismatches)} different"
    )


async def main(args: argparse.Namespace) -> None:
    with ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="nova-bench-archive-")))
        source = scratch / "source.db"
        started = time.perf_counter()
        await build_store(source, args.documents, args.updates)
        print(
            f"store: {args.documents:,} documents x {args.updates} updates, every other one compacted "
            f"({source.stat().st_size / 1e6:.1f} MB SQLite) built in {time.perf_counter() - started:.1f} s; "
            f"{os.cpu_count()} CPUs"
        )
        if args.target in ("s3", "both"):
            from tests.support.services import S3ProxyServer

            server = stack.enter_context(S3ProxyServer())
            s3 = S3ObjectStore(
                endpoint=server.endpoint,
                bucket="bench",
                access_key=server.access_key,
                secret_key=server.secret_key,
            )
            await bench_target("S3Proxy (filesystem backend, loopback)", s3, source, scratch, args.documents)
        if args.target in ("local", "both"):
            local = LocalObjectStore(scratch / "archive")
            await bench_target("Local directory (fsync per object)", local, source, scratch, args.documents)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--documents", type=int, default=1_000)
    parser.add_argument("--updates", type=int, default=8, help="typed updates per document")
    parser.add_argument("--target", choices=["s3", "local", "both"], default="both")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
