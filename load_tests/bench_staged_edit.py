"""What all-or-nothing HTTP edits cost: an edit through the HTTP edit API (staged on a copy
of the document and applied as one update, collab_server/staged_edit.py) against the same
one-character edit made directly by a y-websocket peer, per document size.

    python3 load_tests/bench_staged_edit.py [--repeat 20] [--sizes 10000,1000000,10000000]

Both go through a hub with default settings, like any client: each time is from making the
edit until another peer has it. Prints per document size the median of each way and their
ratio, measured in the same run, interleaved. The staged way grows with the document (the
copy is O(size)); the direct way does not.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from collab_server.client import YClient  # noqa: E402
from tests.support.hub import HubProcess  # noqa: E402

SIZES = (10_000, 1_000_000, 10_000_000)
LINE = "the quick brown fox jumps over the lazy dog\n"


async def direct(peer: YClient, observer: YClient) -> float:
    """A peer's own transaction: the hub relays and stores the update as it is."""
    seen = observer.received_updates
    started = time.perf_counter()
    peer.text.insert(len(peer.text), "x")
    await observer.wait_for(lambda c: c.received_updates > seen, timeout=120)
    return time.perf_counter() - started


async def staged(http: httpx.AsyncClient, name: str, turn: int, observer: YClient) -> float:
    """An HTTP edit: the hub stages it on a copy and applies the result as one update."""
    seen = observer.received_updates
    started = time.perf_counter()
    edit = {"find": f"edit {turn}\n", "replace": f"edit {turn + 1}\n"}
    reply = await http.post(f"/api/documents/{name}/edits", json={"actor": "agent:bench", "edits": [edit]})
    reply.raise_for_status()
    await observer.wait_for(lambda c: c.received_updates > seen, timeout=120)
    return time.perf_counter() - started


async def measure(hub: HubProcess, size: int, repeat: int) -> tuple[float, float]:
    name = f"staged-{size}"
    async with (
        httpx.AsyncClient(base_url=hub.http, timeout=300) as http,
        YClient(hub.url(name)) as peer,
        YClient(hub.url(name)) as observer,
    ):
        await peer.wait_synced(timeout=120)
        await observer.wait_synced(timeout=120)
        # Written by a peer: a WebSocket message may be far larger than an HTTP request body.
        body = "edit 0\n" + LINE * (size // len(LINE))
        peer.text += body
        await observer.wait_for(lambda c: len(c.text) == len(body), timeout=300)
        direct_times: list[float] = []
        staged_times: list[float] = []
        for turn in range(repeat):
            direct_times.append(await direct(peer, observer))
            staged_times.append(await staged(http, name, turn, observer))
    return statistics.median(direct_times) * 1000, statistics.median(staged_times) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--sizes", default=",".join(str(size) for size in SIZES))
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    print(f"{'document':>12} {'direct ms':>10} {'staged ms':>10} {'ratio':>7}")
    with tempfile.TemporaryDirectory() as tmp:
        hub = HubProcess(Path(tmp)).start()
        try:
            for size in sizes:
                d, s = asyncio.run(measure(hub, size, args.repeat))
                print(f"{size:>11,}c {d:>10.3f} {s:>10.3f} {s / d:>6.1f}x")
        finally:
            hub.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
