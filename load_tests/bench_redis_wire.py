"""What a node's paced Redis round trips cost in CPU: the broker's RedisWire against redis-py.

    python load_tests/bench_redis_wire.py [--round-trips 1000] [--rounds 3]

A hub node in a cluster makes up to one read and one publish per `--redis-window-ms` whatever
its own clients do, so their CPU per round trip is a fixed cost of belonging to a cluster.
Against a throwaway Redis on loopback, in one process on the event loop the hub uses (uvloop
when installed), alternating the two clients round by round: a pipelined XADD of one entry
(the publish), and an XREAD of two streams returning three entries (the read). Prints the
process CPU (user + system) per round trip, the lowest of the rounds, and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import redis.asyncio as aioredis

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from collab_server.redis_wire import RedisWire  # noqa: E402
from tests.support.services import RedisServer  # noqa: E402

PAYLOAD = b"\x01\x01" + b"x" * 24  # about a one-character Yjs update


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def per_round_trip(action: Callable[[], Awaitable[object]], count: int) -> float:
    started = cpu_seconds()
    for _ in range(count):
        await action()
    return (cpu_seconds() - started) / count


async def measure(url: str, count: int, rounds: int) -> dict[str, float]:
    wire = RedisWire(url)
    library = aioredis.Redis.from_url(url)
    try:
        await wire.command("DEL", "bench:read")
        for _ in range(3):
            await wire.command("XADD", "bench:read", "*", "n", b"node1", "k", b"u", "d", PAYLOAD)

        async def wire_publish() -> object:
            command = (
                "XADD",
                "bench:pub",
                "MAXLEN",
                "~",
                10_000,
                "*",
                "n",
                b"node1",
                "k",
                b"u",
                "d",
                PAYLOAD,
            )
            return await wire.pipeline([command])

        async def library_publish() -> object:
            async with library.pipeline(transaction=False) as pipe:
                pipe.xadd(
                    "bench:pub", {"n": b"node1", "k": b"u", "d": PAYLOAD}, maxlen=10_000, approximate=True
                )
                return await pipe.execute()

        async def wire_read() -> object:
            streams = ("bench:read", "bench:none", "0-0", "0-0")
            return await wire.command("XREAD", "COUNT", 1000, "BLOCK", 100, "STREAMS", *streams)

        async def library_read() -> object:
            return await library.xread({"bench:read": "0-0", "bench:none": "0-0"}, count=1000, block=100)

        actions = {
            "publish, RedisWire": wire_publish,
            "publish, redis-py": library_publish,
            "read, RedisWire": wire_read,
            "read, redis-py": library_read,
        }
        best = dict.fromkeys(actions, float("inf"))
        for _ in range(rounds):
            for name, action in actions.items():
                best[name] = min(best[name], await per_round_trip(action, count))
        return best
    finally:
        await wire.aclose()
        await library.aclose()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--round-trips", type=int, default=1000, help="round trips per client and round (1000)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; the lowest counts (3)")
    args = parser.parse_args()
    try:
        import uvloop

        run = uvloop.run
    except ImportError:
        run = asyncio.run
    with RedisServer() as redis:
        best = run(measure(redis.url, args.round_trips, args.rounds))
    for name, seconds in best.items():
        print(f"{name:22s} {seconds * 1e6:7.1f} µs CPU per round trip")
    for what in ("publish", "read"):
        ratio = best[f"{what}, redis-py"] / best[f"{what}, RedisWire"]
        print(f"{what}: redis-py costs {ratio:.1f}× RedisWire")
    return 0


if __name__ == "__main__":
    sys.exit(main())
