"""Change-event benchmark: publishing throughput, keystroke → Kafka consumer latency, and the
hub's CPU with publishing on vs off on the fan-out load, in the same run.

Starts its own single-node Kafka broker (scripts/install_kafka.sh puts the jars in the cache)
and hubs with their default settings (embedded SQLite store) on loopback.

1. Fan-out (load_tests/node/loadgen.mjs: 100 clients in one document, 10 writers × 20
   inserts/s), interleaved off / on / off / on: hub CPU (cores) in the measure window, the
   fan-out latency the clients see, and — while it runs — a probe writer typing into another
   document every 50 ms, timed from its insert to the moment a Kafka consumer in this process
   reads the event (p50/p99, only in the "on" runs).
2. Throughput: a backlog of stored updates is left by a hub whose Kafka is unreachable; a hub
   with Kafka then publishes it from the store: events/s until the consumer has read them all.

    python3 load_tests/bench_events.py                   # defaults: 2 repeats, 20 s windows
    python3 load_tests/bench_events.py --repeats 1 --duration 10 --backlog 10000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from aiokafka import AIOKafkaConsumer  # noqa: E402

from collab_server.client import YClient  # noqa: E402
from load_tests.fanout import ServerStats, ensure_node_modules, run_loadgen, stop  # noqa: E402
from load_tests.peers import free_port, tree_cpu_and_rss, wait_healthy  # noqa: E402
from tests.support.services import KafkaServer  # noqa: E402

HOST = "127.0.0.1"
PROBE_INTERVAL_S = 0.05
BACKLOG_DOCUMENTS = 10


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Consumer:
    """Reads the topic; records when each probe insert ("p<n>;") arrived."""

    def __init__(self, kafka: KafkaServer, topic: str) -> None:
        self.consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=kafka.bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            group_id=None,
            metadata_max_age_ms=500,
            fetch_max_wait_ms=10,
        )
        self.count = 0
        self.first_at: float | None = None
        self.last_at: float | None = None
        self.probe_arrivals: dict[int, float] = {}
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.consumer.start()
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.consumer:
            now = time.time()
            self.count += 1
            self.first_at = self.first_at or now
            self.last_at = now
            event = json.loads(message.value)
            if event["type"] != "document.changed" or event["document"] != "probe":
                continue
            for op in (event["data"].get("delta") or {}).get("content", []):
                for part in op.get("insert", "").split(";"):
                    if part.startswith("p"):
                        self.probe_arrivals[int(part[1:])] = now

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        await self.consumer.stop()


async def start_hub(workdir: Path, store: str, extra: list[str]) -> tuple[asyncio.subprocess.Process, int]:
    port = free_port()
    log = (workdir / f"hub-{port}.log").open("wb")
    command = [sys.executable, "-m", "collab_server", "serve", "--host", HOST, "--port", str(port)]
    command += ["--store", store, "--search", "off", *extra]
    proc = await asyncio.create_subprocess_exec(
        *command,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    await wait_healthy(port, proc)
    return proc, port


async def probe(port: int, sent: dict[int, float], stop_event: asyncio.Event) -> None:
    async with YClient(f"ws://{HOST}:{port}/probe?actor=probe") as client:
        await client.wait_synced()
        n = 0
        while not stop_event.is_set():
            sent[n] = time.time()
            client.text += f"p{n};"
            n += 1
            await asyncio.sleep(PROBE_INTERVAL_S)  # a typist's pace, not synchronisation


async def fanout_run(
    args: argparse.Namespace, kafka: KafkaServer, events_on: bool, repeat: int
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="nova-bench-events-") as tmp:
        workdir = Path(tmp)
        topic = f"bench-{int(time.time() * 1000)}"
        extra = (
            ["--events-kafka-brokers", kafka.bootstrap, "--events-kafka-topic", topic] if events_on else []
        )
        proc, port = await start_hub(workdir, f"sqlite:///{workdir / 'hub.sqlite3'}", extra)
        consumer = Consumer(kafka, topic) if events_on else None
        sent: dict[int, float] = {}
        stop_probe = asyncio.Event()
        stats = ServerStats()
        try:
            if consumer is not None:
                await consumer.start()
            prober = asyncio.create_task(probe(port, sent, stop_probe))
            broker = psutil.Process(kafka.pid)
            broker_cpu, _ = tree_cpu_and_rss(broker)
            load_started = time.monotonic()
            load = await run_loadgen(args, port, args.clients, psutil.Process(proc.pid), stats)
            broker_cpu = (tree_cpu_and_rss(broker)[0] - broker_cpu) / (time.monotonic() - load_started)
            stop_probe.set()
            await prober
            timings = await asyncio.to_thread(publisher_timings, port) if events_on else {}
            if consumer is not None:  # late arrivals of the probe: bounded wait
                late = consumer
                await wait_until(lambda: len(late.probe_arrivals) >= len(sent), 10)
        finally:
            if consumer is not None:
                await consumer.close()
            await stop(proc)
        measure_s = load.get("measure_s") or 0
        latencies = []
        if consumer is not None:
            latencies = [
                1000 * (consumer.probe_arrivals[n] - t)
                for n, t in sent.items()
                if n in consumer.probe_arrivals
            ]
        return {
            "events": "on" if events_on else "off",
            "repeat": repeat,
            "hub_cores": stats.cpu_window_s / measure_s if measure_s else None,
            "hub_cpu_us_per_delivery": (
                1e6 * stats.cpu_window_s / load["arrivals_in_window"]
                if load.get("arrivals_in_window")
                else None
            ),
            "broker_cores": broker_cpu,  # the Kafka JVM shares this machine's cores
            "fanout_p50_ms": load["latency_ms"].get("p50"),
            "fanout_p99_ms": load["latency_ms"].get("p99"),
            "delivered_per_s": load.get("arrivals_per_s"),
            "probe_sent": len(sent),
            "probe_received": len(latencies),
            "keystroke_to_consumer_p50_ms": percentile(latencies, 0.5),
            "keystroke_to_consumer_p99_ms": percentile(latencies, 0.99),
            "events_read": consumer.count if consumer is not None else None,
            **timings,
        }


async def throughput_run(args: argparse.Namespace, kafka: KafkaServer) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="nova-bench-events-") as tmp:
        workdir = Path(tmp)
        store = f"sqlite:///{workdir / 'hub.sqlite3'}"
        # Kafka unreachable while the backlog is written: the updates wait in the store (and
        # compaction leaves them alone), as after an outage.
        unreachable = f"{HOST}:{free_port()}"
        proc, port = await start_hub(workdir, store, ["--events-kafka-brokers", unreachable])
        try:
            per_document = args.backlog // BACKLOG_DOCUMENTS
            await asyncio.gather(
                *(write_backlog(port, f"backlog-{i}", per_document) for i in range(BACKLOG_DOCUMENTS))
            )
        finally:
            await stop(proc)
        topic = f"bench-backlog-{int(time.time() * 1000)}"
        consumer = Consumer(kafka, topic)
        started = time.monotonic()
        proc, port = await start_hub(
            workdir, store, ["--events-kafka-brokers", kafka.bootstrap, "--events-kafka-topic", topic]
        )
        ps = psutil.Process(proc.pid)
        cpu_start, _ = tree_cpu_and_rss(ps)
        try:
            await consumer.start()
            expected = per_document * BACKLOG_DOCUMENTS + BACKLOG_DOCUMENTS  # + one document.created each
            await wait_until(lambda: consumer.count >= expected, 300)
            took = time.monotonic() - started
            cpu_end, _ = tree_cpu_and_rss(ps)
        finally:
            await consumer.close()
            await stop(proc)
        return {
            "backlog": args.backlog,
            "events_read": consumer.count,
            "events_expected": expected,
            "seconds_from_hub_start": took,
            "events_per_s_from_hub_start": consumer.count / took if took else None,
            "events_per_s": (
                (consumer.count - 1) / (consumer.last_at - consumer.first_at)
                if consumer.first_at and consumer.last_at and consumer.last_at > consumer.first_at
                else None
            ),
            "hub_cpu_s": cpu_end - cpu_start,
        }


def publisher_timings(port: int) -> dict[str, float | None]:
    """Mean publishing round and mean Kafka confirmation time, from the hub's /metrics."""
    with urllib.request.urlopen(f"http://{HOST}:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    values = {}
    for line in text.splitlines():
        for name in ("nova_events_round_seconds", "nova_events_publish_seconds"):
            for part in ("sum", "count"):
                if line.startswith(f'{name}_{part}{{sink="kafka"}}'):
                    values[f"{name}_{part}"] = float(line.rsplit(" ", 1)[1])

    def mean(name: str) -> float | None:
        count = values.get(f"{name}_count")
        return 1000 * values[f"{name}_sum"] / count if count else None

    return {
        "round_mean_ms": mean("nova_events_round_seconds"),
        "kafka_confirm_mean_ms": mean("nova_events_publish_seconds"),
        "rounds": values.get("nova_events_round_seconds_count"),
    }


async def write_backlog(port: int, document: str, count: int) -> None:
    """``count`` stored updates in ``document``, paced under the per-connection message rate limit."""
    async with YClient(f"ws://{HOST}:{port}/{document}?actor=writer") as client:
        await client.wait_synced()
        for n in range(count):
            client.text += f"{n};"
            if n % 50 == 49:
                await asyncio.sleep(0.08)  # ~600 messages/s: below the hub's 1000/s per connection
        expected = f"{count - 1};"
        if not await wait_until(lambda: str(client.text).endswith(expected), 60):
            raise TimeoutError(f"{document}: the client's own edits did not settle")
        if not await wait_until(lambda: _hub_text(port, document).endswith(expected), 60):
            raise TimeoutError(f"{document}: the backlog was not stored")


async def wait_until(predicate: Callable[[], bool], timeout: float) -> bool:
    """Poll ``predicate`` every 10 ms until it holds or ``timeout`` passes; return whether it held."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)


def _hub_text(port: int, document: str) -> str:
    with urllib.request.urlopen(
        f"http://{HOST}:{port}/api/documents/{document}/text", timeout=10
    ) as response:
        text: str = json.loads(response.read())["text"]
        return text


def median(values: list[Any]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    ensure_node_modules()
    with KafkaServer() as kafka:
        runs = []
        for repeat in range(args.repeats):
            for events_on in (False, True):  # interleaved: the machine is noisy
                print(
                    f"fan-out run {repeat + 1}/{args.repeats}, events {'on' if events_on else 'off'}...",
                    file=sys.stderr,
                )
                runs.append(await fanout_run(args, kafka, events_on, repeat))
                print(f"    {json.dumps(runs[-1])}", file=sys.stderr)
        print("throughput run...", file=sys.stderr)
        throughput = await throughput_run(args, kafka)
    return {"runs": runs, "throughput": throughput}


def report(result: dict[str, Any]) -> str:
    runs = result["runs"]
    lines = [
        "| events | hub cores | fan-out p50 / p99 ms | delivered/s | keystroke → consumer p50 / p99 ms"
        " | probe received | round / Kafka confirm mean ms | broker cores |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        k50, k99 = run["keystroke_to_consumer_p50_ms"], run["keystroke_to_consumer_p99_ms"]
        lines.append(
            f"| {run['events']} (#{run['repeat'] + 1}) | {run['hub_cores']:.3f} | {run['fanout_p50_ms']:.1f} / {run['fanout_p99_ms']:.1f}"
            f" | {run['delivered_per_s']:.0f} | {'-' if k50 is None else f'{k50:.1f} / {k99:.1f}'}"
            f" | {run['probe_received']}/{run['probe_sent'] if run['events'] == 'on' else '-'}"
            f" | {_ms(run.get('round_mean_ms'))} / {_ms(run.get('kafka_confirm_mean_ms'))}"
            f" | {run['broker_cores']:.2f} |"
        )
    off = median([r["hub_cores"] for r in runs if r["events"] == "off"])
    on = median([r["hub_cores"] for r in runs if r["events"] == "on"])
    if off and on:
        lines.append(
            f"\nhub CPU, publishing on / off (medians): {on:.3f} / {off:.3f} cores = {100 * (on / off - 1):+.1f}%"
        )
    off_us = median([r["hub_cpu_us_per_delivery"] for r in runs if r["events"] == "off"])
    on_us = median([r["hub_cpu_us_per_delivery"] for r in runs if r["events"] == "on"])
    if off_us and on_us:
        lines.append(
            f"hub CPU per delivered update, on / off (medians): {on_us:.1f} / {off_us:.1f} µs"
            f" = {100 * (on_us / off_us - 1):+.1f}%"
        )
    k50 = median([r["keystroke_to_consumer_p50_ms"] for r in runs if r["events"] == "on"])
    k99 = median([r["keystroke_to_consumer_p99_ms"] for r in runs if r["events"] == "on"])
    if k50 is not None and k99 is not None:
        lines.append(f"keystroke → consumer, medians of the on runs: p50 {k50:.1f} ms, p99 {k99:.1f} ms")
    t = result["throughput"]
    lines.append(
        f"throughput: {t['events_read']} events ({t['backlog']} stored updates + created) published from the store"
        f": {t['events_per_s']:.0f} events/s from first to last arrival"
        f" ({t['seconds_from_hub_start']:.1f} s from hub start incl. topic creation; hub CPU {t['hub_cpu_s']:.1f} s)"
    )
    return "\n".join(lines)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=100, help="clients in the fan-out document (100)")
    parser.add_argument("--writers", type=int, default=10, help="writing clients (10)")
    parser.add_argument("--interval", type=int, default=50, help="ms between one writer's inserts (50: 20/s)")
    parser.add_argument("--warmup", type=float, default=5)
    parser.add_argument("--duration", type=float, default=20, help="measure window in seconds (20)")
    parser.add_argument("--drain", type=float, default=10)
    parser.add_argument("--repeats", type=int, default=2, help="off/on pairs, interleaved (2)")
    parser.add_argument("--backlog", type=int, default=20_000, help="stored updates for the throughput run")
    parser.add_argument("--node", default="node")
    parser.add_argument("--deflate", action="store_true")
    parser.add_argument("--out", type=Path, default=None, help="JSON results path")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = asyncio.run(main_async(args))
    print(report(result))
    out = args.out or REPO_ROOT / "load_tests" / "results" / time.strftime("events-%Y%m%d-%H%M%S.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, **result}, indent=2))
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
