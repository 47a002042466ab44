"""What token checks cost: connect-to-synced latency with auth off, HS256 and ES256 tokens.

    python load_tests/bench_auth.py [--connections 300]

Each connection opens a socket, receives the hub's sync step 1, sends its own, and waits for
the sync step 2; the token is verified (signature, expiry, grants) before the first message.
Per message the hub checks one flag (read-only or not), which costs no measurable time.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from websockets.asyncio.client import connect

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import crdt_core  # noqa: E402
from collab_server.auth import mint  # noqa: E402
from tests.support.hub import HubProcess  # noqa: E402

SECRET = "bench-secret-long-enough-for-hs256-signatures"


async def connect_latencies(url: str, count: int) -> list[float]:
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        async with connect(url, compression=None) as ws:
            await ws.recv()  # the hub's sync step 1
            await ws.send(crdt_core.frame_sync_step1(b"\x00"))
            while crdt_core.parse_message(await ws.recv()).kind is not crdt_core.MessageKind.SYNC_STEP2:
                pass
            latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--connections", type=int, default=300)
    args = parser.parse_args()
    key = ec.generate_private_key(ec.SECP256R1())
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "public.pem").write_text(public_pem)
        setups = {
            "auth off": ({}, ""),
            "HS256": ({"auth_secret": SECRET}, mint(SECRET, "bench", [("*", "write")])),
            "ES256": (
                {"auth_public_key_file": str(work / "public.pem")},
                mint(private_pem, "bench", [("*", "write")], algorithm="ES256"),
            ),
        }
        results = {}
        for label, (options, token) in setups.items():
            hub = HubProcess(work, store="memory", **options).start()
            try:
                query = f"?token={token}" if token else ""
                results[label] = asyncio.run(
                    connect_latencies(hub.url("auth-bench") + query, args.connections)
                )
            finally:
                hub.stop()
    base = statistics.median(results["auth off"])
    print(f"{'mode':<9} {'p50 ms':>7} {'p99 ms':>7} {'added p50 ms':>13}")
    for label, values in results.items():
        ordered = sorted(values)
        p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
        print(
            f"{label:<9} {statistics.median(values):>7.2f} {p99:>7.2f} {statistics.median(values) - base:>13.2f}"
        )


if __name__ == "__main__":
    main()
