"""Where an idle connection's bytes go: a breakdown of the hub's memory per idle socket.

Two measurements of the same load (N idle y-websocket clients in one document, each synced,
then held open; the suite's `idle` case, driven by `node/loadgen.mjs --mode idle`):

1. RSS: the hub as a subprocess with its default settings (as the suite runs it); RSS while
   the clients are held minus RSS before the first one, per connection.
2. Python heap: the same hub under tracemalloc (``traced_hub.py``: its CLI, unchanged); the
   snapshot taken while the clients are held, minus the one before, per connection, grouped
   by who allocated it (the ASGI/WebSocket stack, asyncio transports and tasks, the hub's
   connection, outbox, presence, the document), and the top allocation sites.

    python load_tests/bench_idle_memory.py              # 2,000 connections
    python load_tests/bench_idle_memory.py --clients 500 --top 30
    python load_tests/bench_idle_memory.py --skip-trace --hub-arg=--ws-implementation=websockets

tracemalloc sees only Python's allocator (not the Rust document, not the kernel's socket
buffers, not allocator slack); the RSS figure is the one that counts, the breakdown says
where the Python share of it sits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import tracemalloc
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psutil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from load_tests.peers import HOST, free_port, tree_cpu_and_rss, wait_healthy  # noqa: E402

LOADGEN = HERE / "node" / "loadgen.mjs"
KB = 1024
SNAPSHOT_TIMEOUT_S = 120.0

# Who allocated a block: the first frame (innermost first) whose file matches, else "other".
OWNERS: tuple[tuple[str, str], ...] = (
    ("collab_server/outbox.py", "hub: outbox"),
    ("collab_server/connection.py", "hub: connection"),
    ("collab_server/native_socket.py", "hub: WebSocket protocol"),
    ("collab_server/websocket.py", "hub: socket I/O (SocketRun)"),
    ("collab_server/room.py", "hub: room"),
    ("collab_server/sessions.py", "hub: sessions"),
    ("collab_server/documents.py", "hub: documents"),
    ("awareness/", "hub: presence"),
    ("collab_server/", "hub: other"),
    ("uvicorn/protocols/websockets", "uvicorn WebSocket protocol"),
    ("uvicorn/protocols/http", "uvicorn HTTP protocol (the upgrade)"),
    ("uvicorn/", "uvicorn other"),
    ("websockets/", "websockets (sans-I/O)"),
    ("asyncio/selector_events.py", "asyncio transport"),
    ("asyncio/tasks.py", "asyncio tasks"),
    ("asyncio/queues.py", "asyncio queues"),
    ("asyncio/locks.py", "asyncio locks"),
    ("asyncio/runners.py", "event loop, from C (uvloop transport, task objects)"),
    ("asyncio/", "asyncio other"),
)


def owner_of(trace: tracemalloc.Traceback) -> str:
    for frame in reversed(trace):  # innermost first (tracemalloc keeps the newest frame last)
        name = frame.filename.replace(os.sep, "/")
        for fragment, owner in OWNERS:
            if fragment in name:
                return owner
    return "other"


def short(filename: str) -> str:
    name = filename.replace(os.sep, "/")
    for marker in ("site-packages/", "/lib/python3", "collab_server/", "awareness/"):
        if marker in name:
            idx = name.index(marker)
            return name[idx + len(marker) :] if marker.startswith("site") else name[idx:]
    return name


async def run_loadgen(
    node: str, url: str, clients: int, hold_s: float, on_event: Callable[[str], Awaitable[None]]
) -> dict[str, Any]:
    """The suite's idle case against ``url``; calls ``on_event`` at every event line."""
    proc = await asyncio.create_subprocess_exec(
        node,
        str(LOADGEN),
        "--url",
        url,
        "--mode",
        "idle",
        "--clients",
        str(clients),
        "--hold",
        str(hold_s),
        "--join-timeout",
        str(max(120, clients // 10)),
        "--doc",
        f"idle-{int(time.time() * 1000)}",
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    result: dict[str, Any] = {}
    try:
        async with asyncio.timeout(max(300, clients // 5) + hold_s):
            while line := await proc.stdout.readline():
                with contextlib.suppress(ValueError):
                    event = json.loads(line)
                    kind = str(event.get("event"))
                    if kind in ("result", "error", "join_failed"):
                        result = event
                    await on_event(kind)
            await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return result


async def rss_run(
    node: str, clients: int, hold_s: float, workdir: Path, hub_args: tuple[str, ...] = ()
) -> dict[str, float]:
    """The hub as the suite starts it (default settings, SQLite in ``workdir``): RSS per connection."""
    port = free_port()
    command = [sys.executable, "-m", "collab_server", "serve", "--host", HOST, "--port", str(port)]
    command += ["--store", f"sqlite:///{workdir / 'hub.sqlite3'}", *hub_args]
    with (workdir / "hub.log").open("wb") as log:
        hub = await asyncio.create_subprocess_exec(
            *command, stdout=log, stderr=asyncio.subprocess.STDOUT, cwd=HERE.parent, start_new_session=True
        )
    try:
        await wait_healthy(port, hub)
        ps = psutil.Process(hub.pid)
        before = tree_cpu_and_rss(ps)[1]
        held: list[int] = []

        async def on_event(kind: str) -> None:
            if kind == "hold_end":
                held.append(tree_cpu_and_rss(ps)[1])

        result = await run_loadgen(node, f"ws://{HOST}:{port}", clients, hold_s, on_event)
    finally:
        await stop(hub)
    open_ = int(result.get("open_at_end") or 0)
    if not held or not open_:
        raise RuntimeError(f"idle run failed: {result}")
    return {
        "open": open_,
        "rss_before_mb": before / 2**20,
        "rss_held_mb": held[0] / 2**20,
        "kb_per_connection": (held[0] - before) / open_ / KB,
    }


async def snapshot_of(hub: asyncio.subprocess.Process, directory: Path, number: int) -> tracemalloc.Snapshot:
    """Ask the traced hub for its next snapshot (SIGUSR1) and load it once written."""
    path = directory / f"{number}.snapshot"
    hub.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + SNAPSHOT_TIMEOUT_S
    while not path.exists():
        if hub.returncode is not None or time.monotonic() > deadline:
            raise RuntimeError(f"no snapshot {path.name} from the traced hub")
        await asyncio.sleep(0.1)
    return await asyncio.to_thread(tracemalloc.Snapshot.load, str(path))


async def traced_run(
    node: str, clients: int, hold_s: float, workdir: Path, top: int, *, stacks: int = 0
) -> dict[str, Any]:
    """The same hub under tracemalloc (load_tests/traced_hub.py): heap per connection, by owner."""
    port = free_port()
    snapshots = workdir / "snapshots"
    command = [sys.executable, str(HERE / "traced_hub.py"), str(snapshots), "serve", "--host", HOST]
    command += ["--port", str(port), "--store", f"sqlite:///{workdir / 'traced.sqlite3'}"]
    with (workdir / "traced.log").open("wb") as log:
        hub = await asyncio.create_subprocess_exec(
            *command, stdout=log, stderr=asyncio.subprocess.STDOUT, cwd=HERE.parent, start_new_session=True
        )
    try:
        await wait_healthy(port, hub)
        before = await snapshot_of(hub, snapshots, 0)
        held: list[tracemalloc.Snapshot] = []

        async def on_event(kind: str) -> None:
            if kind == "hold_start":
                held.append(await snapshot_of(hub, snapshots, 1))

        result = await run_loadgen(node, f"ws://{HOST}:{port}", clients, hold_s, on_event)
    finally:
        await stop(hub)
    open_ = int(result.get("open_at_end") or 0)
    if not held or not open_:
        raise RuntimeError(f"traced idle run failed: {result}")
    diff = held[0].compare_to(before, "traceback")
    by_owner: dict[str, int] = defaultdict(int)
    for stat in diff:
        by_owner[owner_of(stat.traceback)] += stat.size_diff
    sites = held[0].compare_to(before, "lineno")[:top]
    return {
        "stacks": [
            {
                "kb_per_connection": stat.size_diff / open_ / KB,
                "blocks_per_connection": stat.count_diff / open_,
                "frames": [f"{short(frame.filename)}:{frame.lineno}" for frame in reversed(stat.traceback)][
                    :6
                ],
            }
            for stat in diff[:stacks]
        ],
        "open": open_,
        "heap_kb_per_connection": sum(by_owner.values()) / open_ / KB,
        "by_owner_kb": {k: v / open_ / KB for k, v in sorted(by_owner.items(), key=lambda kv: -kv[1])},
        "top_sites": [
            {
                "site": f"{short(s.traceback[-1].filename)}:{s.traceback[-1].lineno}",
                "kb_per_connection": s.size_diff / open_ / KB,
                "blocks_per_connection": s.count_diff / open_,
            }
            for s in sites
        ],
    }


async def stop(hub: asyncio.subprocess.Process) -> None:
    if hub.returncode is None:
        hub.terminate()
        try:
            await asyncio.wait_for(hub.wait(), 15)
        except TimeoutError:
            hub.kill()
            await hub.wait()


def print_report(rss: dict[str, float] | None, traced: dict[str, Any] | None) -> None:
    if rss is not None:
        print(
            f"RSS: {rss['kb_per_connection']:.1f} KB per idle connection "
            f"({rss['open']:.0f} open; {rss['rss_before_mb']:.0f} MB before, {rss['rss_held_mb']:.0f} MB held)"
        )
    if traced is not None:
        print(f"Python heap (tracemalloc): {traced['heap_kb_per_connection']:.2f} KB per idle connection")
        print(f"{'owner':<52} {'KB/conn':>8}")
        for owner, kb in traced["by_owner_kb"].items():
            print(f"{owner:<52} {kb:8.2f}")
        print(f"\n{'allocation site':<60} {'KB/conn':>8} {'blocks':>7}")
        for site in traced["top_sites"]:
            print(f"{site['site']:<60} {site['kb_per_connection']:8.2f} {site['blocks_per_connection']:7.2f}")
        for stack in traced["stacks"]:
            print(
                f"\n{stack['kb_per_connection']:.2f} KB, {stack['blocks_per_connection']:.2f} blocks per connection:"
            )
            for frame in stack["frames"]:
                print(f"    {frame}")


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="idle-memory-"))
    try:
        rss = (
            None
            if args.skip_rss
            else await rss_run(args.node, args.clients, args.hold, workdir, tuple(args.hub_arg))
        )
        traced = (
            None
            if args.skip_trace
            else await traced_run(args.node, args.clients, args.hold, workdir, args.top, stacks=args.stacks)
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print_report(rss, traced)
    return {"clients": args.clients, "rss": rss, "traced": traced}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument("--hold", type=float, default=3.0, help="seconds the clients are held open")
    parser.add_argument("--top", type=int, default=20, help="allocation sites listed")
    parser.add_argument(
        "--stacks", type=int, default=0, help="largest allocation stacks printed (innermost first)"
    )
    parser.add_argument(
        "--hub-arg",
        action="append",
        default=[],
        help="extra flag for the RSS run's hub, repeatable (e.g. --hub-arg=--ws-implementation=websockets)",
    )
    parser.add_argument("--node", default=shutil.which("node") or "node")
    parser.add_argument("--skip-rss", action="store_true", help="only the tracemalloc breakdown")
    parser.add_argument("--skip-trace", action="store_true", help="only the RSS figure")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures as JSON here")
    args = parser.parse_args()
    figures = asyncio.run(main_async(args))
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
