"""Fan-out benchmark: this hub against pycrdt-websocket on the same load.

Each run starts one server on a free loopback port, runs the node load generator
(``node/loadgen.mjs``: N clients in one document, W writers inserting every
``--interval`` ms), samples the server's CPU and RSS with psutil, and stops the
server. Runs interleave the servers (A B A B) because the machine is noisy.

    python load_tests/fanout.py                      # N = 10, 100, 500; both servers
    python load_tests/fanout.py --clients 100 --servers hub --repeats 3

Prints a table and writes every run's figures as JSON to ``--out``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from load_tests.peers import (  # noqa: E402
    drive_loadgen,
    ensure_node_modules,
    free_port,
    tree_cpu_and_rss,
    versions,
    wait_healthy,
)

HERE = Path(__file__).resolve().parent
LOADGEN = HERE / "node" / "loadgen.mjs"
HOST = "127.0.0.1"
STOP_TIMEOUT_S = 15.0
SAMPLE_INTERVAL_S = 0.1
BASELINE = "pycrdt"


def hub_command(port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "collab_server",
        "serve",
        "--host",
        HOST,
        "--port",
        str(port),
        "--store",
        "memory",
    ]


def pycrdt_command(port: int) -> list[str]:
    return [
        sys.executable,
        str(HERE / "servers" / "pycrdt_ws_server.py"),
        "--host",
        HOST,
        "--port",
        str(port),
    ]


SERVERS: dict[str, Callable[[int], list[str]]] = {"hub": hub_command, "pycrdt": pycrdt_command}


@dataclass
class ServerStats:
    """CPU and memory of one server process tree, sampled during a run."""

    cpu_window_s: float = 0.0
    cpu_total_s: float = 0.0
    rss_peak_bytes: int = 0
    rss_at_measure_end_bytes: int = 0
    exit_code: int | None = None


@dataclass
class RunResult:
    server: str
    clients: int
    repeat: int
    loadgen: dict[str, Any] = field(default_factory=dict)
    server_stats: ServerStats = field(default_factory=ServerStats)
    error: str | None = None

    def figure(self, key: str) -> float | None:
        """A derived figure for the table, or None when the run produced none."""
        lg = self.loadgen
        if not lg:
            return None
        arrivals = lg.get("arrivals_in_window") or 0
        measure_s = lg.get("measure_s") or 0
        derived: dict[str, float | None] = {
            "delivered_per_s": lg.get("arrivals_per_s"),
            "delivered_pct": None if lg.get("delivered_share") is None else 100 * lg["delivered_share"],
            "p50_ms": lg["latency_ms"].get("p50"),
            "p99_ms": lg["latency_ms"].get("p99"),
            "max_ms": lg["latency_ms"].get("max"),
            "cpu_us_per_delivery": (1e6 * self.server_stats.cpu_window_s / arrivals if arrivals else None),
            "server_cores": self.server_stats.cpu_window_s / measure_s if measure_s else None,
            "rss_mb": self.server_stats.rss_peak_bytes / 2**20,
            "loadgen_cores": lg.get("loadgen_cpu_cores"),
        }
        return derived[key]


async def stop(proc: asyncio.subprocess.Process) -> int:
    """SIGTERM, then SIGKILL after STOP_TIMEOUT_S; returns the exit code."""
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            proc.kill()
            await proc.wait()
    return proc.returncode if proc.returncode is not None else -1


async def sample(ps: psutil.Process, stats: ServerStats, done: asyncio.Event) -> None:
    while not done.is_set():
        with contextlib.suppress(psutil.NoSuchProcess):
            _, rss = tree_cpu_and_rss(ps)
            stats.rss_peak_bytes = max(stats.rss_peak_bytes, rss)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), SAMPLE_INTERVAL_S)


async def run_loadgen(
    args: argparse.Namespace, port: int, clients: int, ps: psutil.Process, stats: ServerStats
) -> dict[str, Any]:
    """Run the node load generator; snapshot server CPU at its measure_start/measure_end lines."""
    cmd = [args.node, str(LOADGEN), "--url", f"ws://{HOST}:{port}", "--clients", str(clients)]
    cmd += ["--writers", str(args.writers), "--interval", str(args.interval), "--warmup", str(args.warmup)]
    cmd += ["--duration", str(args.duration), "--drain", str(args.drain)]
    if args.deflate:
        cmd.append("--deflate")
    cpu_start = 0.0

    async def on_event(event: dict[str, Any]) -> None:
        nonlocal cpu_start
        kind = event.get("event")
        if kind == "measure_start":
            cpu_start, _ = tree_cpu_and_rss(ps)
        elif kind == "measure_end":
            cpu_end, rss = tree_cpu_and_rss(ps)
            stats.cpu_window_s = cpu_end - cpu_start
            stats.rss_at_measure_end_bytes = rss
        elif kind in ("joined", "error"):
            print(f"    loadgen: {json.dumps(event)}", file=sys.stderr)

    return await drive_loadgen(cmd, on_event, 60 + args.warmup + args.duration + args.drain + 60)


async def one_run(
    args: argparse.Namespace, server: str, clients: int, repeat: int, log_dir: Path
) -> RunResult:
    run = RunResult(server=server, clients=clients, repeat=repeat)
    port = free_port()
    log_path = log_dir / f"{server}-n{clients}-r{repeat}.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log_path.open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            *SERVERS[server](port), stdout=log, stderr=subprocess.STDOUT, cwd=HERE.parent, env=env
        )
        done = asyncio.Event()
        sampler: asyncio.Task[None] | None = None
        try:
            await wait_healthy(port, proc)
            ps = psutil.Process(proc.pid)
            sampler = asyncio.create_task(sample(ps, run.server_stats, done))
            run.loadgen = await run_loadgen(args, port, clients, ps, run.server_stats)
            run.server_stats.cpu_total_s, _ = tree_cpu_and_rss(ps)
        except (RuntimeError, TimeoutError, OSError, ValueError) as exc:
            run.error = f"{type(exc).__name__}: {exc} (server log: {log_path.name})"
        finally:
            done.set()
            if sampler is not None:
                await sampler
            run.server_stats.exit_code = await stop(proc)
    return run


def median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


COLUMNS: list[tuple[str, str, str]] = [
    # (figure key, header, format)
    ("delivered_per_s", "deliv/s", "{:.0f}"),
    ("delivered_pct", "deliv%", "{:.1f}"),
    ("p50_ms", "p50 ms", "{:.1f}"),
    ("p99_ms", "p99 ms", "{:.1f}"),
    ("max_ms", "max ms", "{:.0f}"),
    ("cpu_us_per_delivery", "CPU µs/deliv", "{:.1f}"),
    ("server_cores", "srv cores", "{:.2f}"),
    ("rss_mb", "RSS MB", "{:.0f}"),
    ("loadgen_cores", "lg cores", "{:.2f}"),
]
RATIOS = [("delivered_per_s", "deliv/s /py"), ("p99_ms", "p99 /py"), ("cpu_us_per_delivery", "µs/deliv /py")]


def summarize(runs: list[RunResult]) -> list[dict[str, Any]]:
    """Median of each figure per (server, N), with ratios against pycrdt-websocket."""
    rows: list[dict[str, Any]] = []
    keys = sorted({(r.clients, r.server) for r in runs}, key=lambda k: (k[0], k[1] != "hub", k[1]))
    for clients, server in keys:
        group = [r for r in runs if (r.clients, r.server) == (clients, server) and not r.error]
        row: dict[str, Any] = {"server": server, "clients": clients, "runs": len(group)}
        for key, _, _ in COLUMNS:
            row[key] = median([r.figure(key) for r in group])
        rows.append(row)
    for row in rows:
        base = next((b for b in rows if b["server"] == BASELINE and b["clients"] == row["clients"]), None)
        for key, _ in RATIOS:
            ours, theirs = row[key], base[key] if base else None
            row[f"{key}_ratio"] = ours / theirs if ours is not None and theirs else None
    return rows


def render(rows: list[dict[str, Any]]) -> str:
    header = ["server", "N", "runs"] + [h for _, h, _ in COLUMNS] + [h for _, h in RATIOS]
    table = [header]
    for row in rows:
        cells = [row["server"], str(row["clients"]), str(row["runs"])]
        cells += ["-" if row[k] is None else fmt.format(row[k]) for k, _, fmt in COLUMNS]
        cells += ["-" if row[f"{k}_ratio"] is None else f"{row[f'{k}_ratio']:.3g}" for k, _ in RATIOS]
        table.append(cells)
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    lines = [" | ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in table]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", default="10,100,500", help="comma-separated client counts (10,100,500)")
    parser.add_argument("--writers", type=int, default=10, help="writing clients per run (10)")
    parser.add_argument("--interval", type=int, default=50, help="ms between one writer's inserts (50)")
    parser.add_argument("--warmup", type=float, default=5, help="seconds of load before measuring (5)")
    parser.add_argument("--duration", type=float, default=10, help="measure window in seconds (10)")
    parser.add_argument("--drain", type=float, default=10, help="max seconds for late deliveries (10)")
    parser.add_argument("--servers", default="hub,pycrdt", help=f"comma-separated, from {sorted(SERVERS)}")
    parser.add_argument("--repeats", type=int, default=1, help="runs per server and N, interleaved (1)")
    parser.add_argument("--deflate", action="store_true", help="clients offer permessage-deflate")
    parser.add_argument("--node", default="node", help="node executable (node)")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="JSON results path (default: load_tests/results/fanout-<time>.json)",
    )
    args = parser.parse_args(argv)
    args.client_counts = [int(n) for n in args.clients.split(",") if n]
    args.server_names = [s for s in args.servers.split(",") if s]
    unknown = set(args.server_names) - set(SERVERS)
    if unknown:
        parser.error(f"unknown servers {sorted(unknown)}; choose from {sorted(SERVERS)}")
    if args.out is None:
        args.out = HERE / "results" / time.strftime("fanout-%Y%m%d-%H%M%S.json")
    return args


async def main_async(args: argparse.Namespace) -> list[RunResult]:
    log_dir = Path(tempfile.mkdtemp(prefix="fanout-logs-"))
    runs: list[RunResult] = []
    for clients in args.client_counts:
        for repeat in range(args.repeats):
            for server in args.server_names:
                print(f"run: {server} N={clients} repeat={repeat + 1}/{args.repeats}", file=sys.stderr)
                run = await one_run(args, server, clients, repeat, log_dir)
                if run.error:
                    print(f"    failed: {run.error}", file=sys.stderr)
                else:
                    figures = {key: run.figure(key) for key, _, _ in COLUMNS}
                    print(
                        f"    {json.dumps({k: v and round(v, 2) for k, v in figures.items()})}",
                        file=sys.stderr,
                    )
                runs.append(run)
    print(f"server logs: {log_dir}", file=sys.stderr)
    return runs


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    ensure_node_modules()
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    runs = asyncio.run(main_async(args))
    rows = summarize(runs)
    print(render(rows))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    settings = {k: v for k, v in vars(args).items() if k not in ("out", "node")}
    report = {
        "benchmark": "fanout",
        "started": started,
        "settings": settings,
        "machine": {"cpus": os.cpu_count(), "versions": versions(args.node)},
        "summary": rows,
        "runs": [asdict(r) for r in runs],
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"results: {args.out}", file=sys.stderr)
    return 1 if any(r.error for r in runs) else 0


if __name__ == "__main__":
    raise SystemExit(main())
