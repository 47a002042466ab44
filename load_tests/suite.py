"""Side-by-side load-test suite: this hub against Hocuspocus, the y-websocket server and pycrdt-websocket.

    python load_tests/suite.py            # full run (tens of minutes)
    python load_tests/suite.py --quick    # a few minutes, smaller N and shorter windows

Scenarios (modelled on y/hub's benchmark set): fan-out in one document, 200 documents x 5
clients, 2,000 idle connections, a join storm on a large document built from a real
editing trace, a presence storm, one writer at full speed, and 1-3 hub nodes sharing
PostgreSQL + Redis. Each run starts one server on a free loopback port, runs the node load
generator (``node/loadgen.mjs``) against it, samples the server's CPU and RSS with psutil
and stops it; servers are interleaved run by run (A B C D A B C D). A failing or hanging
server is recorded as a failure with its reason and the suite goes on.

Writes ``results/<date>[-quick]/report.md``, ``results.json`` and PNG plots.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from load_tests import report  # noqa: E402
from load_tests.peers import (  # noqa: E402
    HUB_EXTRA_FLAGS,
    PEERS,
    ServerProcess,
    drive_loadgen,
    ensure_node_modules,
    tree_cpu_and_rss,
    versions,
)
from load_tests.traces import trace_path  # noqa: E402

LOADGEN = HERE / "node" / "loadgen.mjs"
BUILD_DOC = HERE / "node" / "build_doc.mjs"
TRACE = trace_path("automerge-paper")
CACHE = HERE / ".cache"
SAMPLE_INTERVAL_S = 0.1
LOADGEN_MARGIN_S = 60.0
DEFAULT_SERVERS = ("hub", "hub-hocuspocus", "hocuspocus", "y-websocket", "pycrdt")
SCENARIOS = report.ORDER  # the report lists the scenarios in the order they run
MULTI_NODE_SCENARIOS = ("multi-node", "multi-node-weak")


@dataclass(frozen=True)
class Case:
    """One scenario at one size: the load generator's arguments and how long it may take."""

    scenario: str
    key: str
    args: tuple[str, ...]
    limit_s: float
    nodes: int = 1


@dataclass
class Mark:
    """Server CPU seconds and RSS bytes (one entry per node) when the load generator printed an event."""

    t: float
    cpu_s: list[float]
    rss: list[int]
    redis_commands: int | None = None


@dataclass
class Run:
    scenario: str
    key: str
    server: str
    repeat: int
    loadgen: dict[str, Any] = field(default_factory=dict)
    marks: dict[str, Mark] = field(default_factory=dict)
    baseline_rss: list[int] = field(default_factory=list)
    rss_peak: int = 0
    rss_peak_by_phase: dict[str, int] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    exit_codes: list[int | None] = field(default_factory=list)


@dataclass(frozen=True)
class Profile:
    """Sizes and windows of one suite mode (full, quick, tiny)."""

    name: str
    fanout_clients: tuple[int, ...]
    warmup: float
    duration: float
    drain: float
    many_docs: tuple[int, int]  # documents, clients per document
    idle_clients: int
    join_doc_bytes: int
    join_clients: int
    storm_timeout: float
    presence_clients: int
    multi_node_clients: int
    multi_node_counts: tuple[int, ...]
    repeats: int
    # multi-node-weak: the same clients on every node (33 per node: 33, 66, 99 clients)
    multi_node_clients_per_node: int = 33


PROFILES = {
    "full": Profile(
        "full",
        (10, 100, 500, 1000, 2000),
        5,
        10,
        10,
        (200, 5),
        10_000,
        20_000_000,
        150,
        120,
        1500,
        100,
        (1, 2, 3),
        2,
    ),
    "quick": Profile(
        "quick", (10, 100, 500), 2, 5, 5, (200, 5), 2000, 5_000_000, 150, 60, 500, 100, (1, 2, 3), 1
    ),
    "tiny": Profile("tiny", (5,), 1, 2, 2, (4, 3), 20, 300_000, 5, 20, 10, 6, (1,), 1, 3),
}
WRITERS = 10
INTERVAL_MS = 50
MANY_DOCS_INTERVAL_MS = 500
FULL_SPEED_CLIENTS = 10


def cases(profile: Profile, scenarios: list[str], doc_file: Path | None) -> list[Case]:
    p = profile
    phases = ("--warmup", str(p.warmup), "--duration", str(p.duration), "--drain", str(p.drain))
    window = p.warmup + p.duration + p.drain
    out: list[Case] = []
    args: tuple[str, ...]
    if "fanout" in scenarios:
        for n in p.fanout_clients:
            args = ("--clients", str(n), "--writers", str(min(WRITERS, n)), "--interval", str(INTERVAL_MS))
            out.append(Case("fanout", f"N={n}", args + phases, window + 90))
    if "many-docs" in scenarios:
        docs, per_doc = p.many_docs
        args = ("--docs", str(docs), "--clients", str(docs * per_doc), "--writers", str(docs))
        args += ("--interval", str(MANY_DOCS_INTERVAL_MS))
        out.append(Case("many-docs", f"{docs}x{per_doc}", args + phases, window + 120))
    if "idle" in scenarios:
        # Joins run 50 at a time; on 2 busy cores a server may accept only ~100 a second.
        join_s = max(60, p.idle_clients // 25)
        args = ("--mode", "idle", "--clients", str(p.idle_clients), "--hold", str(max(2.0, p.duration / 2)))
        args += ("--join-timeout", str(join_s))
        out.append(Case("idle", f"N={p.idle_clients}", args, join_s + 90))
    if "join-storm" in scenarios and doc_file is not None:
        mb = p.join_doc_bytes / 1e6
        args = ("--mode", "join-storm", "--clients", str(p.join_clients + 1), "--doc-file", str(doc_file))
        args += ("--storm-timeout", str(p.storm_timeout))
        out.append(Case("join-storm", f"{p.join_clients} x {mb:g} MB", args, 3 * p.storm_timeout + 60))
    if "presence" in scenarios:
        args = ("--mode", "presence", "--clients", str(p.presence_clients), "--interval", str(INTERVAL_MS))
        out.append(Case("presence", f"N={p.presence_clients}", args + phases, window + 120))
    if "full-speed" in scenarios:
        args = ("--mode", "full-speed", "--clients", str(FULL_SPEED_CLIENTS), *phases)
        out.append(Case("full-speed", f"1 writer, {FULL_SPEED_CLIENTS - 1} readers", args, window + 60))
    # multi-node: a fixed total of clients spread over the nodes (the figure: each node
    # serves fewer clients as nodes are added, so its fixed costs weigh more per delivery);
    # multi-node-weak: the same clients per node at every size, the same writers (each node
    # then delivers the same updates/s; what grows is only what belonging to a cluster costs).
    for scenario in MULTI_NODE_SCENARIOS:
        if scenario not in scenarios:
            continue
        for nodes in p.multi_node_counts:
            n = p.multi_node_clients if scenario == "multi-node" else p.multi_node_clients_per_node * nodes
            args = ("--clients", str(n), "--writers", str(min(WRITERS, n)), "--interval", str(INTERVAL_MS))
            key = f"{nodes} node{'s' if nodes > 1 else ''}"
            out.append(Case(scenario, key, args + phases, window + 90, nodes))
    return out


# ---- measuring one run -----------------------------------------------------------------


async def sample_rss(procs: list[psutil.Process], run: Run, phase: list[str], done: asyncio.Event) -> None:
    while not done.is_set():
        total = 0
        for ps in procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                total += tree_cpu_and_rss(ps)[1]
        run.rss_peak = max(run.rss_peak, total)
        run.rss_peak_by_phase[phase[0]] = max(run.rss_peak_by_phase.get(phase[0], 0), total)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), SAMPLE_INTERVAL_S)


def snapshot(procs: list[psutil.Process], redis_commands: Callable[[], int | None] | None) -> Mark:
    cpu: list[float] = []
    rss: list[int] = []
    for ps in procs:
        try:
            c, r = tree_cpu_and_rss(ps)
        except psutil.NoSuchProcess:
            c, r = 0.0, 0
        cpu.append(c)
        rss.append(r)
    return Mark(time.monotonic(), cpu, rss, redis_commands() if redis_commands else None)


async def drive_and_sample(
    cmd: list[str],
    run: Run,
    procs: list[psutil.Process],
    limit_s: float,
    redis_commands: Callable[[], int | None] | None = None,
) -> None:
    """Run the load generator; snapshot the servers at each event line it prints."""
    done = asyncio.Event()
    phase = ["start"]
    run.baseline_rss = snapshot(procs, None).rss
    sampler = asyncio.create_task(sample_rss(procs, run, phase, done))

    async def on_event(event: dict[str, Any]) -> None:
        kind = str(event.get("event"))
        run.marks[kind] = await asyncio.to_thread(snapshot, procs, redis_commands)
        phase[0] = kind
        if kind in ("error", "join_failed") and kind not in run.loadgen.get("_logged", ()):
            print(f"    loadgen: {json.dumps(event)[:300]}", file=sys.stderr)

    try:
        run.loadgen = await drive_loadgen(cmd, on_event, limit_s)
    finally:
        done.set()
        await sampler
    if run.loadgen.get("error"):
        raise RuntimeError(str(run.loadgen["error"]))


def loadgen_command(args: argparse.Namespace, case: Case, urls: list[str], protocol: str) -> list[str]:
    doc = f"{case.scenario}-{int(time.time() * 1000)}"
    return [
        args.node,
        str(LOADGEN),
        "--url",
        ",".join(urls),
        "--protocol",
        protocol,
        "--doc",
        doc,
        *case.args,
    ]


async def single_run(args: argparse.Namespace, case: Case, server: str, repeat: int, log_dir: Path) -> Run:
    run = Run(case.scenario, case.key, server, repeat)
    peer = PEERS[server]
    log_path = log_dir / f"{case.scenario}-{server}-{len(os.listdir(log_dir))}.log"
    try:
        async with ServerProcess(peer, log_path, args.node) as srv:
            try:
                await asyncio.sleep(0.3)  # let the fresh process settle before the RSS baseline
                cmd = loadgen_command(args, case, [srv.url], peer.protocol)
                await drive_and_sample(cmd, run, [srv.ps], case.limit_s)
            finally:
                await srv.stop()
                run.exit_codes = [srv.exit_code]
    except (RuntimeError, TimeoutError, OSError, ValueError) as exc:
        run.error = f"{type(exc).__name__}: {exc}"
    return run


async def multi_node_run(args: argparse.Namespace, case: Case, repeat: int, log_dir: Path) -> Run:
    """The hub as ``case.nodes`` nodes sharing PostgreSQL and Redis (load_tests/cluster.py)."""
    from load_tests.cluster import Cluster

    run = Run(case.scenario, case.key, "hub", repeat)
    options = {flag[2:].replace("-", "_"): value for flag, value in HUB_EXTRA_FLAGS.items()}
    workdir = Path(tempfile.mkdtemp(prefix="cluster-", dir=log_dir))
    try:
        cluster = await asyncio.to_thread(lambda: Cluster(case.nodes, workdir, **options).__enter__())
    except Exception as exc:  # the services harness raises its own errors; all are a failed run
        run.error = f"cluster did not start: {type(exc).__name__}: {exc}"
        return run
    try:
        import redis

        client = redis.Redis.from_url(cluster.redis.url)

        def redis_commands() -> int | None:
            try:
                stats = client.info("commandstats")
            except redis.RedisError:
                return None
            return sum(int(v["calls"]) for k, v in stats.items() if k != "cmdstat_info")

        procs = [psutil.Process(node.process.pid) for node in cluster.nodes if node.process is not None]
        cmd = loadgen_command(args, case, [node.ws for node in cluster.nodes], "y-websocket")
        try:
            await drive_and_sample(cmd, run, procs, case.limit_s, redis_commands)
        except (RuntimeError, TimeoutError, OSError, ValueError) as exc:
            run.error = f"{type(exc).__name__}: {exc}"
        client.close()
    finally:
        await asyncio.to_thread(cluster.__exit__, None, None, None)
    return run


# ---- figures -----------------------------------------------------------------------------


def _window(run: Run, start: str, end: str) -> tuple[list[float], float] | None:
    a, b = run.marks.get(start), run.marks.get(end)
    if a is None or b is None:
        return None
    return [y - x for x, y in zip(a.cpu_s, b.cpu_s, strict=True)], b.t - a.t


def figures(run: Run) -> dict[str, Any]:
    """Derived figures of one run, by scenario (None where the run produced none)."""
    lg = run.loadgen
    mb = 2**20
    out: dict[str, Any] = {"rss_peak_mb": run.rss_peak / mb, "loadgen_cores": lg.get("loadgen_cpu_cores")}
    if run.scenario in ("fanout", "many-docs", "presence", "full-speed", *MULTI_NODE_SCENARIOS):
        win = _window(run, "measure_start", "measure_end")
        arrivals = lg.get("arrivals_in_window") or 0
        lat = lg.get("latency_ms") or {}
        share = lg.get("delivered_share")
        out |= {
            "delivered_per_s": lg.get("arrivals_per_s"),
            "delivered_pct": None if share is None else 100 * share,
            "client_min_pct": None if lg.get("client_share_min") is None else 100 * lg["client_share_min"],
            "p50_ms": lat.get("p50"),
            "p99_ms": lat.get("p99"),
            "max_ms": lat.get("max"),
            "sent_per_s": lg.get("sent_per_s"),
        }
        if win is not None:
            cpu, seconds = win
            out["server_cores"] = sum(cpu) / seconds if seconds else None
            out["cpu_us_per_delivery"] = 1e6 * sum(cpu) / arrivals if arrivals else None
            if run.scenario in MULTI_NODE_SCENARIOS:
                by_node = lg.get("arrivals_by_url") or []
                out["cpu_us_per_delivery_by_node"] = [
                    1e6 * c / a if a else None for c, a in zip(cpu, by_node, strict=False)
                ]
                out["cores_by_node"] = [c / seconds for c in cpu] if seconds else None
                cross = lg.get("cross_url_latency_ms") or {}
                out["cross_p50_ms"] = cross.get("p50")
                out["cross_p99_ms"] = cross.get("p99")
                a, b = run.marks["measure_start"], run.marks["measure_end"]
                sent = lg.get("sent") or 0
                if a.redis_commands is not None and b.redis_commands is not None and sent:
                    out["redis_commands_per_update"] = (b.redis_commands - a.redis_commands) / sent
        if run.scenario == "presence":
            pres = lg.get("presence") or {}
            pshare = pres.get("within_1s_share")
            out["presence_within_1s_pct"] = None if pshare is None else 100 * pshare
            out["presence_p50_ms"] = (pres.get("latency_ms") or {}).get("p50")
            out["presence_p99_ms"] = (pres.get("latency_ms") or {}).get("p99")
    elif run.scenario == "idle":
        hold = run.marks.get("hold_end")
        open_ = lg.get("open_at_end") or 0
        if hold is not None and open_:
            delta = sum(hold.rss) - sum(run.baseline_rss)
            out["open"] = open_
            out["rss_at_hold_mb"] = sum(hold.rss) / mb
            out["kb_per_connection"] = delta / open_ / 1024
        out["rss_before_mb"] = sum(run.baseline_rss) / mb
        out["join_s"] = lg.get("join_s")
    elif run.scenario == "join-storm":
        seeded = run.marks.get("seeded")
        out["synced"] = lg.get("synced")
        out["storm_clients"] = lg.get("storm_clients")
        out["all_synced_s"] = lg.get("all_synced_s")
        out["sync_p50_s"] = (lg.get("sync_s") or {}).get("p50")
        out["seed_s"] = lg.get("seed_s")
        out["rss_after_seed_mb"] = sum(seeded.rss) / mb if seeded else None
        storm_peak = max(
            run.rss_peak_by_phase.get("storm_start", 0), run.rss_peak_by_phase.get("storm_end", 0)
        )
        out["storm_peak_rss_mb"] = storm_peak / mb if storm_peak else None
        win = _window(run, "storm_start", "storm_end")
        if win is not None:
            out["storm_cpu_s"] = sum(win[0])
    return out


# ---- orchestration -----------------------------------------------------------------------


def join_document(node: str, target_bytes: int) -> Path:
    """The join-storm document (cached in load_tests/.cache, built once per size)."""
    CACHE.mkdir(exist_ok=True)
    prefix = CACHE / f"automerge-paper-{target_bytes}"
    if not (prefix.with_suffix(".json").exists() and Path(f"{prefix}.bin").exists()):
        print(f"building the join-storm document ({target_bytes / 1e6:g} MB, once)...", file=sys.stderr)
        subprocess.run(
            [
                node,
                str(BUILD_DOC),
                "--trace",
                str(TRACE),
                "--target-bytes",
                str(target_bytes),
                "--out",
                str(prefix),
            ],
            check=True,
            timeout=1200,
            cwd=HERE,
            stdout=subprocess.DEVNULL,
        )
    return prefix


def machine_facts() -> dict[str, Any]:
    model = None
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(terse=True),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="smaller N and shorter windows (a few minutes)")
    mode.add_argument("--tiny", action="store_true", help="smoke-test sizes (N=5, 2 s windows)")
    parser.add_argument(
        "--servers",
        default=",".join(DEFAULT_SERVERS),
        help=f"comma-separated, in run order (default {','.join(DEFAULT_SERVERS)}; also {','.join(PEERS)})",
    )
    parser.add_argument(
        "--scenarios", default=",".join(SCENARIOS), help=f"comma-separated ({','.join(SCENARIOS)})"
    )
    parser.add_argument(
        "--repeats", type=int, default=None, help="runs per server and case (full: 2, quick: 1)"
    )
    parser.add_argument(
        "--fanout-clients", default=None, help="comma-separated fan-out sizes instead of the profile's"
    )
    parser.add_argument(
        "--windows", default=None, help="WARMUP,MEASURE,DRAIN seconds instead of the profile's (e.g. 3,8,5)"
    )
    parser.add_argument("--node", default="node", help="node executable (node)")
    parser.add_argument(
        "--out-dir", type=Path, default=None, help="default: load_tests/results/<date>[-quick]"
    )
    args = parser.parse_args(argv)
    args.profile = PROFILES["tiny" if args.tiny else "quick" if args.quick else "full"]
    if args.windows:
        warmup, duration, drain = (float(x) for x in args.windows.split(","))
        args.profile = dataclasses.replace(args.profile, warmup=warmup, duration=duration, drain=drain)
    if args.fanout_clients:
        sizes = tuple(int(n) for n in args.fanout_clients.split(","))
        args.profile = dataclasses.replace(args.profile, fanout_clients=sizes)
    args.server_names = [s for s in args.servers.split(",") if s]
    args.scenario_names = [s for s in args.scenarios.split(",") if s]
    if unknown := set(args.server_names) - set(PEERS):
        parser.error(f"unknown servers {sorted(unknown)}")
    if unknown := set(args.scenario_names) - set(SCENARIOS):
        parser.error(f"unknown scenarios {sorted(unknown)}")
    if args.repeats is None:
        args.repeats = args.profile.repeats
    if args.out_dir is None:
        suffix = "" if args.profile.name == "full" else f"-{args.profile.name}"
        args.out_dir = HERE / "results" / (time.strftime("%Y-%m-%d") + suffix)
    return args


async def run_all(args: argparse.Namespace, plan: list[Case], log_dir: Path) -> list[Run]:
    runs: list[Run] = []
    for case in plan:
        for repeat in range(args.repeats):
            servers = ["hub"] if case.scenario in MULTI_NODE_SCENARIOS else args.server_names
            for server in servers:
                label = f"{case.scenario} {case.key} {server} ({repeat + 1}/{args.repeats})"
                print(f"run: {label}", file=sys.stderr)
                if case.scenario in MULTI_NODE_SCENARIOS:
                    run = await multi_node_run(args, case, repeat, log_dir)
                else:
                    run = await single_run(args, case, server, repeat, log_dir)
                if run.error is None:
                    run.figures = figures(run)
                    shown = {k: round(v, 2) if isinstance(v, float) else v for k, v in run.figures.items()}
                    print(f"    {json.dumps(shown)[:400]}", file=sys.stderr)
                else:
                    print(f"    failed: {run.error}", file=sys.stderr)
                runs.append(run)
    return runs


def _public_args(argv: list[str]) -> list[str]:
    """The command line for the report, without the output directory (a path of this machine)."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--out-dir":
            skip = True
        elif not arg.startswith("--out-dir="):
            out.append(arg)
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    ensure_node_modules("yjs", "@hocuspocus")
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    t0 = time.monotonic()
    doc_file = None
    if "join-storm" in args.scenario_names:
        doc_file = join_document(args.node, args.profile.join_doc_bytes)
    plan = cases(args.profile, args.scenario_names, doc_file)
    log_dir = Path(tempfile.mkdtemp(prefix="suite-logs-"))
    runs = asyncio.run(run_all(args, plan, log_dir))
    args.out_dir.mkdir(parents=True, exist_ok=True)
    doc_meta: dict[str, Any] = {}
    if doc_file is not None:
        doc_meta = json.loads(doc_file.with_suffix(".json").read_text())
        doc_meta.pop("state_vector_b64", None)
    meta = {
        "started": started,
        "elapsed_s": round(time.monotonic() - t0),
        "command": "python load_tests/suite.py "
        + " ".join(_public_args(sys.argv[1:] if argv is None else argv)),
        "profile": asdict(args.profile),
        "servers": args.server_names,
        "scenarios": args.scenario_names,
        "repeats": args.repeats,
        "machine": machine_facts(),
        "versions": versions(args.node),
        "hub_flags": HUB_EXTRA_FLAGS,
        "join_document": doc_meta,
        "constants": {
            "writers": WRITERS,
            "interval_ms": INTERVAL_MS,
            "many_docs_interval_ms": MANY_DOCS_INTERVAL_MS,
            "full_speed_clients": FULL_SPEED_CLIENTS,
        },
    }
    summary = report.summarize(runs)
    run_dicts = [asdict(r) for r in runs]
    (args.out_dir / "results.json").write_text(
        json.dumps({"meta": meta, "summary": summary, "runs": run_dicts}, indent=1) + "\n"
    )
    plots = report.plot(summary, args.out_dir)
    (args.out_dir / "report.md").write_text(report.render(meta, summary, run_dicts, plots))
    print(f"report: {args.out_dir / 'report.md'} (server logs: {log_dir})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
