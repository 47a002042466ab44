"""Benchmark of crdt_core: native crate vs pure-Python (pycrdt) fallback vs yjs in node.

    python load_tests/bench_crdt_core.py            # all traces, full sizes
    python load_tests/bench_crdt_core.py --quick    # small sizes, for a smoke run

Cases (in-process backends: best of up to 5 runs after a warm-up; node: one run):
- merge: all per-keystroke updates of a trace into one. pycrdt's and yjs's merges are
  quadratic, so on the long sequential traces they get a prefix (``--prefix``, default
  20,000 updates) and the native merge is shown on that prefix and on the whole trace.
- diff / state vector: the whole document's update against the state vector of the
  document halfway through the trace.
- frames: parse and re-frame 1M y-websocket messages (``--messages``), in batches of 1,000.
- awareness: coalesce 100k awareness updates from 1,500 clients (``--awareness``, ``--clients``).

Peak memory is the rise of the process's peak RSS during the call (reset via
/proc/self/clear_refs). "GIL hold" is the longest time a Python ticker thread could not
run during the call (measured in a separate run: the ticker slows the call down).
Node cases run in their own processes (load_tests/node/crdt).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pycrdt

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import crdt_core
from crdt_core import AwarenessEntry, Message
from load_tests.bench_crdt_traces import CONCURRENT, SEQUENTIAL, trace_updates

NODE_DIR = Path(__file__).resolve().parent / "node" / "crdt"
NODE_TIMEOUT_SECONDS = 900
BATCH = 1000
MAX_TIMED_RUNS = 5
TIME_BUDGET_SECONDS = 3.0


@dataclass
class Row:
    case: str
    impl: str
    items: int
    seconds: float
    peak_bytes: int
    output_bytes: int
    gil_ms: float | None = None
    note: str = ""


def _status_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) * 1024
    return 0


class GilTicker:
    """Measures the longest stretch a Python thread could not run."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        last = time.perf_counter()
        while not self._stop.is_set():
            now = time.perf_counter()
            self.longest = max(self.longest, now - last)
            last = now
            time.sleep(0)

    def __enter__(self) -> GilTicker:
        self._thread.start()
        time.sleep(0.01)
        self.longest = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def measure(case: str, impl: str, items: int, fn: Callable[[], bytes | int], note: str = "") -> Row:
    """Best time of a few runs (after a warm-up); then one more run for peak memory
    and the GIL hold, since the ticker thread itself slows the call down."""
    out = fn()  # warm-up (also checks it works)
    best = float("inf")
    spent = 0.0
    for _ in range(MAX_TIMED_RUNS):
        start = time.perf_counter()
        fn()
        took = time.perf_counter() - start
        best, spent = min(best, took), spent + took
        if spent > TIME_BUDGET_SECONDS:
            break
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    before = _status_bytes("VmRSS:")
    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)
    with GilTicker() as ticker:
        fn()
    sys.setswitchinterval(old_interval)
    peak = max(0, _status_bytes("VmHWM:") - before)
    size = out if isinstance(out, int) else len(out)
    return Row(case, impl, items, best, peak, size, ticker.longest * 1000, note)


def pack(blobs: list[bytes], path: Path) -> Path:
    path.write_bytes(b"".join(struct.pack("<I", len(b)) + b for b in blobs))
    return path


def node_case(label: str, case: str, *inputs: Path, note: str = "") -> Row | None:
    if shutil.which("node") is None or not (NODE_DIR / "node_modules" / "yjs").is_dir():
        return None
    result = subprocess.run(
        ["node", "--max-old-space-size=8192", str(NODE_DIR / "bench.mjs"), case, *map(str, inputs)],
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT_SECONDS,
        check=False,
    )
    if result.returncode != 0:
        return Row(label, "yjs", 0, float("nan"), 0, 0, None, f"failed: {result.stderr.strip()[-120:]}")
    data: dict[str, Any] = json.loads(result.stdout)
    seconds, peak, size = data["seconds"], data["peak_rss_bytes"], data["output_bytes"]
    return Row(label, "yjs", data["items"], seconds, peak, size, None, note)


def bench_trace(name: str, prefix: int, tmp: Path, rs: Any, py: Any) -> list[Row]:
    updates = trace_updates(name)
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    for update in updates:
        doc.apply_update(update)
    own = len(doc.get_update())
    rows: list[Row] = []
    cut = min(prefix, len(updates))
    part = updates[:cut]
    label = f"merge {name}"
    if cut < len(updates):
        rows.append(measure(label, "native", len(updates), lambda: rs.merge_updates(updates), f"doc {own} B"))
    note = f"first {cut:,}" if cut < len(updates) else f"doc {own} B"
    rows.append(measure(label, "native", cut, lambda: rs.merge_updates(part), note))
    rows.append(measure(label, "python", cut, lambda: py.merge_updates(part), note))
    row = node_case(label, "merge", pack(part, tmp / f"{name}-part.bin"), note=note)
    if row:
        rows.append(row)

    merged = rs.merge_updates(updates)
    half: pycrdt.Doc[Any] = pycrdt.Doc()
    for update in updates[: len(updates) // 2]:
        half.apply_update(update)
    sv = half.get_state()
    label = f"diff {name} @mid"
    rows.append(measure(label, "native", 1, lambda: rs.diff_update(merged, sv)))
    rows.append(measure(label, "python", 1, lambda: py.diff_update(merged, sv)))
    row = node_case(
        label, "diff", pack([merged], tmp / f"{name}-merged.bin"), pack([sv], tmp / f"{name}-sv.bin")
    )
    if row:
        rows.append(row)
    label = f"state vector {name}"
    rows.append(measure(label, "native", 1, lambda: rs.state_vector(merged)))
    rows.append(measure(label, "python", 1, lambda: py.state_vector(merged)))
    row = node_case(label, "state_vector", tmp / f"{name}-merged.bin")
    if row:
        rows.append(row)
    return rows


def protocol_frames(count: int, updates: list[bytes], rng: random.Random) -> list[bytes]:
    awareness = crdt_core.encode_awareness(
        [AwarenessEntry(rng.getrandbits(53), 7, '{"user":{"name":"ada","color":"#ffaa00"},"cursor":null}')]
    )
    sv = b"\x01\xd4\x8d\xa4\xb1\xe9\x03\x85\x01"
    templates: list[bytes] = []
    for i in range(1000):
        roll = rng.random()
        if roll < 0.7:
            templates.append(crdt_core.frame_update(updates[i % len(updates)]))
        elif roll < 0.9:
            templates.append(crdt_core.frame_awareness(awareness))
        elif roll < 0.95:
            templates.append(crdt_core.frame_sync_step1(sv))
        else:
            templates.append(crdt_core.frame_query_awareness())
    return [templates[i % len(templates)] for i in range(count)]


def parse_and_frame(core: Any, frames: list[bytes]) -> int:
    size = 0
    for start in range(0, len(frames), BATCH):
        messages: list[Message] = core.parse_messages(frames[start : start + BATCH])
        size += sum(map(len, core.frame_messages(messages)))
    return size


def awareness_updates(count: int, clients: int, rng: random.Random) -> list[bytes]:
    ids = [rng.getrandbits(53) for _ in range(clients)]
    clocks = dict.fromkeys(ids, 0)
    out = []
    for i in range(count):
        client = ids[rng.randrange(clients)]
        clocks[client] += 1
        state = (
            "null"
            if rng.random() < 0.05
            else json.dumps(
                {"user": {"name": f"user-{client % 1000}", "color": "#30bced"}, "cursor": {"anchor": i}}
            )
        )
        out.append(crdt_core.encode_awareness([AwarenessEntry(client, clocks[client], state)]))
    return out


def fmt_bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def print_table(rows: list[Row]) -> None:
    header = (
        f"{'case':<34} {'impl':<7} {'items':>9} {'time':>10} {'per item':>10} "
        f"{'throughput':>14} {'peak mem':>10} {'output':>10} {'GIL hold':>9}  note"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        per = r.seconds / r.items if r.items else float("nan")
        thr = r.items / r.seconds if r.seconds else float("nan")
        gil = f"{r.gil_ms:.1f} ms" if r.gil_ms is not None else "-"
        print(
            f"{r.case:<34} {r.impl:<7} {r.items:>9,} {r.seconds * 1000:>8.1f}ms {per * 1e6:>8.2f}µs "
            f"{thr:>12,.0f}/s {fmt_bytes(r.peak_bytes):>10} {fmt_bytes(r.output_bytes):>10} "
            f"{gil:>9}  {r.note}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--traces", default=",".join(SEQUENTIAL + CONCURRENT))
    parser.add_argument("--prefix", type=int, default=20_000, help="updates given to the quadratic merges")
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--awareness", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=1_500)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()
    if args.quick:
        args.traces, args.prefix, args.messages, args.awareness = "friendsforever", 2_000, 20_000, 5_000

    rs = crdt_core.backend_functions("rust")
    py = crdt_core.backend_functions("python")
    rng = random.Random(7)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-crdt-") as tmpdir:
        tmp = Path(tmpdir)
        for name in args.traces.split(","):
            print(f"# {name} ...", file=sys.stderr, flush=True)
            rows += bench_trace(name, args.prefix, tmp, rs, py)

        print("# protocol frames ...", file=sys.stderr, flush=True)
        frames = protocol_frames(args.messages, trace_updates("friendsforever"), rng)
        label = f"parse+frame {args.messages:,} msgs"
        rows.append(
            measure(label, "native", len(frames), lambda: parse_and_frame(rs, frames), f"batches of {BATCH}")
        )
        rows.append(
            measure(label, "python", len(frames), lambda: parse_and_frame(py, frames), f"batches of {BATCH}")
        )
        row = node_case(label, "frames", pack(frames, tmp / "frames.bin"), note="lib0 decoding/encoding")
        if row:
            rows.append(row)

        print("# awareness ...", file=sys.stderr, flush=True)
        updates = awareness_updates(args.awareness, args.clients, rng)
        label = f"coalesce {args.awareness:,} awareness/{args.clients:,}"
        rows.append(measure(label, "native", len(updates), lambda: rs.coalesce_awareness(updates)))
        rows.append(measure(label, "python", len(updates), lambda: py.coalesce_awareness(updates)))
        row = node_case(
            label, "awareness", pack(updates, tmp / "awareness.bin"), note="y-protocols applyAwarenessUpdate"
        )
        if row:
            rows.append(row)

    print(
        f"crdt_core benchmark ({os.cpu_count()} cores; native = _crdt_core_native, python = pycrdt fallback)"
    )
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ for r in rows], indent=1))


if __name__ == "__main__":
    main()
