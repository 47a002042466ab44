"""The HTTP edit API for stateless agents: round trip p50/p99 and edits per second.

    python load_tests/bench_edits.py [--edits 300]

Each request is a find-and-replace against the version the agent read before, while a
person keeps typing at the top of the document (so every edit is rebased onto live text).
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


async def run(hub: HubProcess, count: int) -> tuple[list[float], float]:
    body = "".join(f"line {i}: the value is old\n" for i in range(count))
    async with (
        httpx.AsyncClient(base_url=hub.http, timeout=30) as http,
        YClient(hub.url("agent-bench")) as human,
    ):
        await human.wait_synced()
        response = await http.post("/api/documents/agent-bench/edits", json={"text": body})
        response.raise_for_status()
        latencies = []
        started = time.perf_counter()
        for i in range(count):
            version = (await http.get("/api/documents/agent-bench/text")).json()["version"]
            human.text.insert(0, "typing ")  # a person edits before the agent's target meanwhile
            await asyncio.sleep(0)
            sent = time.perf_counter()
            edit = {"find": f"line {i}: the value is old", "replace": f"line {i}: the value is new"}
            reply = await http.post(
                "/api/documents/agent-bench/edits",
                json={"version": version, "actor": "agent:bench", "edits": [edit]},
            )
            latencies.append((time.perf_counter() - sent) * 1000)
            reply.raise_for_status()
        elapsed = time.perf_counter() - started
        text = (await http.get("/api/documents/agent-bench/text")).json()["text"]
        assert text.count("is new") == count, "an edit did not land"
        return latencies, count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--edits", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        hub = HubProcess(Path(tmp)).start()
        try:
            latencies, rate = asyncio.run(run(hub, args.edits))
        finally:
            hub.stop()
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    print(
        f"{args.edits} rebased edits: round trip p50 {statistics.median(latencies):.2f} ms, p99 {p99:.2f} ms;"
        f" {rate:.0f} read+edit cycles/s (one agent, sequential, SQLite strict)"
    )


if __name__ == "__main__":
    main()
