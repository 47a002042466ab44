"""What all-or-nothing HTTP edits cost: one edit made directly in a transaction against the
same edit staged on a copy and applied as one update (collab_server/staged_edit.py).

    python3 load_tests/bench_staged_edit.py [--repeat 20]

Prints per document size the median time of each way and their ratio, measured in the
same run, interleaved.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import pycrdt

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from collab_server.staged_edit import stage  # noqa: E402

SIZES = (10_000, 1_000_000, 10_000_000)


def document(chars: int) -> pycrdt.Doc[Any]:
    doc: pycrdt.Doc[Any] = pycrdt.Doc(skip_gc=True)
    text = doc.get("content", type=pycrdt.Text)
    line = "the quick brown fox jumps over the lazy dog\n"
    text += line * (chars // len(line))
    return doc


def insert(doc: pycrdt.Doc[Any]) -> None:
    doc.get("content", type=pycrdt.Text).insert(5, "x")


def direct(doc: pycrdt.Doc[Any]) -> float:
    started = time.perf_counter()
    with doc.transaction():
        insert(doc)
    return time.perf_counter() - started


def staged(doc: pycrdt.Doc[Any]) -> float:
    started = time.perf_counter()
    doc.apply_update(stage(doc, insert))
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    print(f"{'document':>12} {'direct ms':>10} {'staged ms':>10} {'ratio':>7}")
    for size in SIZES:
        doc = document(size)
        direct_times: list[float] = []
        staged_times: list[float] = []
        for _ in range(args.repeat):
            direct_times.append(direct(doc))
            staged_times.append(staged(doc))
        d = statistics.median(direct_times) * 1000
        s = statistics.median(staged_times) * 1000
        print(f"{size:>11,}c {d:>10.3f} {s:>10.3f} {s / d:>6.0f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
