"""What the store path costs per update: the group-commit writer on SQLite at a steady pace.

    python load_tests/bench_group_commit.py                       # this checkout
    python load_tests/bench_group_commit.py --compare OTHER_CHECKOUT

Updates arrive one at a time, spread evenly (``--rate`` per second over ``--documents``
documents, as the suite's 200 x 5 case: 400/s over 200), each submitted to the hub's own
``GroupCommitWriter`` in front of a fresh ``SqliteStore`` (strict durability: written, then
fsynced) on the event loop the hub uses (uvloop). It prints the process CPU per update (the
pacing loop alone, measured first, is subtracted), the wall time until an update is written
(what a relay waits for) and the number of commits and fsyncs. ``--compare`` runs the same in
another checkout (e.g. main before a change), rounds interleaved, in child processes, so both
see the same machine.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


async def _pace(rate: float, count: int) -> float:
    """CPU seconds of the pacing loop alone."""
    started = time.process_time()
    for _ in range(count):
        await asyncio.sleep(1 / rate)
    return time.process_time() - started


async def _measure(rate: float, seconds: float, documents: int) -> dict[str, Any]:
    from persistence.base import LogEntry
    from persistence.group_commit import GroupCommitWriter
    from persistence.sqlite import SqliteStore

    count = int(rate * seconds)
    idle_cpu = await _pace(rate, count)
    with tempfile.TemporaryDirectory() as directory:
        store = SqliteStore(Path(directory) / "bench.sqlite3")
        await store.open()
        syncs = 0
        sync = store.sync

        async def counted_sync() -> None:
            nonlocal syncs
            syncs += 1
            await sync()

        store.sync = counted_sync  # type: ignore[method-assign]
        # The writer's defaults as the hub builds it (a checkout may predate a parameter).
        wanted = {"sync_interval_seconds": 0.02}
        accepted = inspect.signature(GroupCommitWriter).parameters
        writer = GroupCommitWriter(store, **{k: v for k, v in wanted.items() if k in accepted})
        runner = asyncio.create_task(writer.run())
        waits: list[float] = []
        started = time.process_time()
        for n in range(count):
            sent = time.perf_counter()

            def written(_seq: int, sent: float = sent) -> None:
                waits.append(time.perf_counter() - sent)

            entry = LogEntry(
                f"doc-{n % documents}", b"\x01\x01" + n.to_bytes(4, "big"), None, "n", time.time()
            )
            writer.submit(entry, on_written=written)
            await asyncio.sleep(1 / rate)
        await writer.flush()
        cpu = time.process_time() - started
        writer.stop()
        await runner
        await store.close()
    waits.sort()
    return {
        "cpu_us_per_update": (cpu - idle_cpu) / count * 1e6,
        "written_p50_ms": waits[len(waits) // 2] * 1e3,
        "written_p99_ms": waits[int(len(waits) * 0.99)] * 1e3,
        "commits": writer.commits,
        "fsyncs": syncs,
        "updates": count,
    }


def _child(checkout: Path, args: argparse.Namespace) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), "--checkout", str(checkout), "--json"]
    command += ["--rate", str(args.rate), "--seconds", str(args.seconds), "--documents", str(args.documents)]
    done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=args.seconds * 10 + 60)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=400.0, help="updates per second, evenly spread")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--documents", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per checkout")
    parser.add_argument("--compare", type=Path, help="another checkout measured in the same run")
    parser.add_argument("--checkout", type=Path, default=REPO, help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.json:  # one measurement of ``--checkout``, in this (child) process
        sys.path.insert(0, str(args.checkout.resolve()))
        import uvloop

        print(json.dumps(uvloop.run(_measure(args.rate, args.seconds, args.documents))))
        return
    checkouts = {"this checkout": REPO} | ({"compared": args.compare.resolve()} if args.compare else {})
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in checkouts}
    for _ in range(args.rounds):
        for name, checkout in checkouts.items():
            results[name].append(_child(checkout, args))
    print(
        f"{args.rate:g} updates/s over {args.documents} documents, {args.seconds:g} s, median of {args.rounds}"
    )
    medians: dict[str, dict[str, float]] = {}
    for name, runs in results.items():
        medians[name] = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
        m = medians[name]
        print(
            f"  {name:14s} CPU {m['cpu_us_per_update']:6.0f} µs/update | written p50 {m['written_p50_ms']:.2f}"
            f" / p99 {m['written_p99_ms']:.2f} ms | {m['commits']:.0f} commits, {m['fsyncs']:.0f} fsyncs"
        )
    if args.compare:
        ratio = medians["this checkout"]["cpu_us_per_update"] / medians["compared"]["cpu_us_per_update"]
        print(f"  CPU per update, this checkout ÷ compared: {ratio:.2f}")


if __name__ == "__main__":
    main()
