"""gRPC against HTTP on the same hub, same run: Edit round trip and sequential throughput,
then Subscribe delivery latency under fan-out load.

    python load_tests/bench_grpc.py [--edits 400] [--rounds 3] [--subscribers 50] [--writers 10]

One hub with default settings (embedded SQLite, strict durability: every answer comes after
the commit) plus its gRPC port. Edits: one agent, one request at a time, each an insertion
against the live text; HTTP (keep-alive httpx) and gRPC (one channel) rounds interleaved.
Subscribe: S gRPC subscribers follow one document while W WebSocket writers each type 10
tokens/s; latency is from a writer's keystroke to the event at a subscriber (same clock).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from collab_server.client import YClient  # noqa: E402
from collab_server.rpc.client import CollabClient  # noqa: E402
from tests.support.hub import HubProcess, free_port  # noqa: E402

TOKEN = re.compile(rb"<(\d+)>")


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def http_round(hub: HubProcess, count: int) -> tuple[list[float], float]:
    latencies = []
    async with httpx.AsyncClient(base_url=hub.http, timeout=30) as http:
        await http.post("/api/documents/bench-http/edits", json={"text": "start"})
        started = time.perf_counter()
        for _ in range(count):
            sent = time.perf_counter()
            reply = await http.post(
                "/api/documents/bench-http/edits",
                json={"actor": "agent:bench", "edits": [{"start": 0, "end": 0, "text": "x"}]},
            )
            latencies.append((time.perf_counter() - sent) * 1000)
            reply.raise_for_status()
        return latencies, count / (time.perf_counter() - started)


async def grpc_round(target: str, count: int) -> tuple[list[float], float]:
    latencies = []
    async with CollabClient(target) as client:
        await client.edit("bench-grpc", text="start")
        started = time.perf_counter()
        for _ in range(count):
            sent = time.perf_counter()
            await client.edit("bench-grpc", [{"start": 0, "end": 0, "text": "x"}], actor="agent:bench")
            latencies.append((time.perf_counter() - sent) * 1000)
        return latencies, count / (time.perf_counter() - started)


async def subscribe_latency(
    hub: HubProcess, target: str, subscribers: int, writers: int, seconds: float
) -> tuple[list[float], int]:
    sent_at: dict[int, float] = {}
    latencies: list[float] = []
    counter = iter(range(1, 10**9))
    expected: list[int] = []  # events due, known once the writers stop
    arrived = asyncio.Event()  # set when that many have arrived
    async with CollabClient(target) as client:
        await client.edit("bench-sub", text="start")
        calls = [client.subscribe("bench-sub") for _ in range(subscribers)]

        async def follow(call: object) -> None:
            async for event in call:  # type: ignore[attr-defined]
                now = time.perf_counter()
                for match in TOKEN.findall(event.update):
                    sent = sent_at.get(int(match))
                    if sent is not None:
                        latencies.append((now - sent) * 1000)
                if expected and len(latencies) >= expected[0]:
                    arrived.set()

        followers = [asyncio.create_task(follow(call)) for call in calls]
        clients = [YClient(hub.url("bench-sub")) for _ in range(writers)]
        for writer in clients:
            await writer.__aenter__()
            await writer.wait_synced()
        try:
            deadline = time.perf_counter() + seconds
            while time.perf_counter() < deadline:
                for writer in clients:
                    number = next(counter)
                    sent_at[number] = time.perf_counter()
                    writer.text.insert(0, f"<{number}>")
                await asyncio.sleep(0.1)  # each writer: 10 tokens per second
            expected.append(len(sent_at) * subscribers)
            if len(latencies) >= expected[0]:
                arrived.set()
            # Every sent token's event at every subscriber, or a bound: a lost one must not hang the
            # run (the caller reports delivered against expected).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(arrived.wait(), 30)
        finally:
            for writer in clients:
                await writer.__aexit__(None, None, None)
            for call in calls:
                call.cancel()
            await asyncio.gather(*followers, return_exceptions=True)
    return latencies, len(sent_at) * subscribers


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--edits", type=int, default=400, help="edits per round (400)")
    parser.add_argument("--rounds", type=int, default=3, help="HTTP/gRPC rounds, interleaved (3)")
    parser.add_argument("--subscribers", type=int, default=50, help="Subscribe streams (50)")
    parser.add_argument("--writers", type=int, default=10, help="WebSocket writers, 10 tokens/s each (10)")
    parser.add_argument("--seconds", type=float, default=10.0, help="Subscribe phase length (10)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nova-bench-grpc-") as tmp:
        grpc_port = free_port()
        hub = HubProcess(Path(tmp), store=None, grpc_port=grpc_port).start()
        target = f"127.0.0.1:{grpc_port}"
        hub_process = psutil.Process(hub.process.pid) if hub.process else None
        try:
            results: dict[str, list[tuple[list[float], float]]] = {"http": [], "grpc": []}
            for _ in range(args.rounds):
                results["http"].append(asyncio.run(http_round(hub, args.edits)))
                results["grpc"].append(asyncio.run(grpc_round(target, args.edits)))
            print(
                f"Edit round trip, sequential, {args.rounds} interleaved rounds of {args.edits} (strict, SQLite):"
            )
            rates = {}
            for name, rounds in results.items():
                latencies = [value for round_latencies, _ in rounds for value in round_latencies]
                rates[name] = statistics.median(rate for _, rate in rounds)
                print(
                    f"  {name:5s} p50 {quantile(latencies, 0.5):6.2f} ms  p99 {quantile(latencies, 0.99):6.2f} ms"
                    f"  {rates[name]:7.0f} edits/s (median of rounds)"
                )
            print(f"  gRPC / HTTP throughput: {rates['grpc'] / rates['http']:.2f}x")
            cpu_before = hub_process.cpu_times() if hub_process else None
            phase_started = time.perf_counter()
            latencies, expected = asyncio.run(
                subscribe_latency(hub, target, args.subscribers, args.writers, args.seconds)
            )
            cpu = ""
            if hub_process and cpu_before:
                after = hub_process.cpu_times()
                used = (after.user - cpu_before.user) + (after.system - cpu_before.system)
                cpu = f", hub CPU {used / (time.perf_counter() - phase_started):.2f} cores"
            print(
                f"Subscribe under fan-out: {args.subscribers} streams, {args.writers} writers x 10/s for "
                f"{args.seconds:.0f} s: {len(latencies)}/{expected} deliveries, p50 {quantile(latencies, 0.5):.1f} ms, "
                f"p99 {quantile(latencies, 0.99):.1f} ms{cpu}"
            )
        finally:
            hub.stop()


if __name__ == "__main__":
    main()
