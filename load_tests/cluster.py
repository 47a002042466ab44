"""Start a multi-node topology as local processes: PostgreSQL, Redis and N hub nodes.

    python load_tests/cluster.py --nodes 3          # prints the URLs, runs until Ctrl-C
    python load_tests/cluster.py --drill --nodes 3 --clients 100   # rolling-upgrade drill

The same topology as docker/compose.yaml, without Docker: throwaway PostgreSQL and Redis on
free loopback ports (data in a temporary directory, removed on exit) and N `collab-server`
processes sharing them. Tests and benchmarks use ``Cluster`` directly.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import signal
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import pycrdt

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from collab_server.client import YClient  # noqa: E402
from tests.support.hub import HubProcess  # noqa: E402
from tests.support.services import PostgresServer, RedisServer, free_port  # noqa: E402


class Cluster:
    def __init__(self, nodes: int, workdir: Path, **hub_options: Any) -> None:
        self.workdir = workdir
        self.postgres = PostgresServer()
        self.redis = RedisServer()
        self.hub_options = hub_options
        self.node_count = nodes
        self.nodes: list[HubProcess] = []

    def __enter__(self) -> Cluster:
        self.postgres.start()
        self.redis.start()
        for index in range(self.node_count):
            self.add_node(index)
        return self

    def add_node(self, index: int | None = None, start_timeout: float = 60.0) -> HubProcess:
        index = len(self.nodes) if index is None else index
        node_dir = self.workdir / f"node{index}"
        node_dir.mkdir(parents=True, exist_ok=True)
        node = HubProcess(
            node_dir,
            store=self.postgres.dsn,
            redis_url=self.redis.url,
            node_id=f"node{index}",
            **self.hub_options,
        ).start(start_timeout)
        self.nodes.append(node)
        return node

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for node in self.nodes:
            with contextlib.suppress(Exception):
                node.stop()
        self.redis.cleanup()
        self.postgres.cleanup()


# -- rolling-upgrade drill ------------------------------------------------------------------
#
# What Kubernetes does in a rolling upgrade (deploy/helm: maxSurge 1, maxUnavailable 0), with
# local processes: start a new node and wait until /readyz says ready, take the oldest node
# out of the balancer (the pod leaving the Service's endpoints, preStop), send it SIGTERM;
# its clients are closed with 1012 and reconnect through the balancer to the others. Clients
# keep editing the whole time. At the end every token every client typed must be in every
# client's copy and in the store, and every stopped node must have exited cleanly.

BALANCER_POLL_SECONDS = 0.2


class Balancer:
    """A TCP balancer on loopback: each new connection goes to the next ready node
    (round robin). A node is ready when /readyz answers 200 and it is not draining."""

    def __init__(self) -> None:
        self.port = free_port()
        self._nodes: list[HubProcess] = []
        self._ready: list[HubProcess] = []
        self._draining: set[int] = set()
        self._turn = 0
        self._server: asyncio.Server | None = None
        self._poller: asyncio.Task[None] | None = None
        self._pipes: set[asyncio.Task[None]] = set()

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def add(self, node: HubProcess) -> None:
        self._nodes.append(node)

    def drain(self, node: HubProcess) -> None:
        """Stop sending new connections to ``node`` (its open ones stay)."""
        self._draining.add(node.port)
        self._ready = [n for n in self._ready if n.port != node.port]

    def remove(self, node: HubProcess) -> None:
        self._nodes = [n for n in self._nodes if n.port != node.port]
        self._ready = [n for n in self._ready if n.port != node.port]

    async def wait_ready(self, node: HubProcess, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while node not in self._ready:
            if time.monotonic() > deadline:
                raise TimeoutError(f"node {node.port} not ready within {timeout}s")
            await asyncio.sleep(BALANCER_POLL_SECONDS / 2)

    async def __aenter__(self) -> Balancer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self._poller = asyncio.create_task(self._poll())
        return self

    async def __aexit__(self, *_exc: object) -> None:
        assert self._server is not None and self._poller is not None
        self._poller.cancel()
        self._server.close()
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(self._poller, *self._pipes, return_exceptions=True)

    async def _poll(self) -> None:
        async with httpx.AsyncClient(timeout=1.0) as http:
            while True:
                ready = []
                for node in list(self._nodes):
                    if node.port in self._draining:
                        continue
                    with contextlib.suppress(httpx.HTTPError):
                        if (await http.get(f"{node.http}/readyz")).status_code == 200:
                            ready.append(node)
                self._ready = ready
                await asyncio.sleep(BALANCER_POLL_SECONDS)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._pipes.add(task)
        try:
            if not self._ready:
                return
            self._turn += 1
            node = self._ready[self._turn % len(self._ready)]
            try:
                upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", node.port)
            except OSError:
                return
            try:
                await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
            finally:
                upstream_writer.close()
        finally:
            writer.close()
            self._pipes.discard(task)


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    with contextlib.suppress(ConnectionError, OSError, RuntimeError):
        sink.write_eof()


@dataclass
class DrillClient:
    """One editor that reconnects through the balancer with the same document (like y-websocket)."""

    index: int
    document: str
    doc: pycrdt.Doc[Any] = field(default_factory=pycrdt.Doc)
    typed: list[str] = field(default_factory=list)
    reconnect_seconds: list[float] = field(default_factory=list)
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    connections: int = 0

    @property
    def text(self) -> str:
        return str(self.doc.get("content", type=pycrdt.Text))

    def type_token(self) -> None:
        token = f"[c{self.index}-{len(self.typed)}]"
        text = self.doc.get("content", type=pycrdt.Text)
        text.insert(len(text), token)
        self.typed.append(token)

    async def run(self, balancer: Balancer, stop: asyncio.Event) -> None:
        """Stay connected until ``stop``; after a close, reconnect at once (then with back-off)."""
        lost_at: float | None = None
        attempt = 0
        while not stop.is_set():
            try:
                async with YClient(f"{balancer.ws}/{self.document}", doc=self.doc) as client:
                    await client.wait_synced(timeout=10)
                    if lost_at is not None:
                        self.reconnect_seconds.append(time.monotonic() - lost_at)
                    self.connections += 1
                    attempt = 0
                    self.connected.set()
                    stop_wait = asyncio.create_task(stop.wait())
                    closed_wait = asyncio.create_task(client.closed.wait())
                    await asyncio.wait((stop_wait, closed_wait), return_when=asyncio.FIRST_COMPLETED)
                    stop_wait.cancel()
                    closed_wait.cancel()
                    self.connected.clear()
                    if stop.is_set():
                        return
            except Exception:  # refused, reset or timed out mid-handshake: reconnect like a browser
                self.connected.clear()
            if lost_at is None or attempt == 0:
                lost_at = time.monotonic()
            attempt += 1
            await asyncio.sleep(min(1.0, 0.02 * attempt * random.uniform(1, 2)))


@dataclass
class DrillReport:
    nodes: int
    clients: int
    documents: int
    tokens_typed: int
    tokens_lost: int
    converged: bool
    reconnects: int
    reconnect_p50_ms: float
    reconnect_p99_ms: float
    reconnect_max_ms: float
    stopped_cleanly: list[bool]
    seconds: float

    def lines(self) -> list[str]:
        return [
            f"rolling upgrade: {self.nodes} nodes replaced one by one, {self.clients} clients editing "
            f"{self.documents} documents for {self.seconds:.1f} s",
            f"  tokens typed {self.tokens_typed}, lost {self.tokens_lost}, converged {self.converged}",
            f"  reconnects {self.reconnects}: p50 {self.reconnect_p50_ms:.0f} ms, "
            f"p99 {self.reconnect_p99_ms:.0f} ms, max {self.reconnect_max_ms:.0f} ms",
            f"  stopped nodes shut down cleanly: {self.stopped_cleanly}",
        ]


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _edit_loop(clients: list[DrillClient], stop: asyncio.Event, interval: float) -> None:
    """Every client types a token about every ``interval`` seconds, connected or not."""
    while not stop.is_set():
        for client in random.sample(clients, len(clients)):
            client.type_token()
            await asyncio.sleep(interval / len(clients))


async def rolling_upgrade_drill(
    cluster: Cluster,
    *,
    clients: int = 100,
    documents: int = 5,
    edit_interval: float = 1.0,
    settle_seconds: float = 2.0,
    convergence_timeout: float = 60.0,
) -> DrillReport:
    """Replace every node of ``cluster`` (new one first), while ``clients`` edit; returns figures."""
    started = time.monotonic()
    editors = [DrillClient(i, f"drill-{i % documents}") for i in range(clients)]
    stop = asyncio.Event()
    clean_exits: list[bool] = []
    async with Balancer() as balancer:
        for node in cluster.nodes:
            balancer.add(node)
        for node in cluster.nodes:
            await balancer.wait_ready(node)
        runners = [asyncio.create_task(editor.run(balancer, stop)) for editor in editors]
        try:
            await asyncio.wait_for(asyncio.gather(*(e.connected.wait() for e in editors)), 60)
            editing = asyncio.create_task(_edit_loop(editors, stop, edit_interval))
            await asyncio.sleep(settle_seconds)  # edits flow before the first node goes
            for old in list(cluster.nodes[: cluster.node_count]):
                new = await asyncio.to_thread(cluster.add_node)
                balancer.add(new)
                await balancer.wait_ready(new)
                balancer.drain(old)  # preStop: out of the endpoints before SIGTERM
                await asyncio.sleep(BALANCER_POLL_SECONDS)
                code = await asyncio.to_thread(old.terminate, 60.0)
                # uvicorn re-raises the SIGTERM it handled: -15 after a complete graceful shutdown.
                clean_exits.append(code in (0, -signal.SIGTERM) and "shutdown: complete" in old.log())
                if not clean_exits[-1]:
                    tail = "\n".join(old.log().splitlines()[-12:])
                    print(f"node {old.port} stopped with {code}; its log ends:\n{tail}", flush=True)
                balancer.remove(old)
                await asyncio.sleep(settle_seconds)
            editing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await editing
            # Everyone reconnected; then wait until every copy holds every token.
            await asyncio.wait_for(asyncio.gather(*(e.connected.wait() for e in editors)), 60)
            converged = await _wait_converged(editors, convergence_timeout)
        finally:
            stop.set()
            await asyncio.gather(*runners, return_exceptions=True)
    typed = {token: editor.document for editor in editors for token in editor.typed}
    stored = await _stored_texts(cluster.nodes[-1], {e.document for e in editors})
    lost = [token for token, document in typed.items() if token not in stored[document]]
    waits = [seconds for editor in editors for seconds in editor.reconnect_seconds]
    return DrillReport(
        nodes=cluster.node_count,
        clients=clients,
        documents=documents,
        tokens_typed=len(typed),
        tokens_lost=len(lost),
        converged=converged,
        reconnects=len(waits),
        reconnect_p50_ms=1000 * (statistics.median(waits) if waits else 0.0),
        reconnect_p99_ms=1000 * _quantile(waits, 0.99),
        reconnect_max_ms=1000 * (max(waits) if waits else 0.0),
        stopped_cleanly=clean_exits,
        seconds=time.monotonic() - started,
    )


async def _wait_converged(editors: list[DrillClient], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    by_document: dict[str, list[DrillClient]] = {}
    for editor in editors:
        by_document.setdefault(editor.document, []).append(editor)
    while time.monotonic() < deadline:
        done = True
        for group in by_document.values():
            texts = {editor.text for editor in group}
            tokens = [token for editor in group for token in editor.typed]
            if len(texts) != 1 or not all(token in next(iter(texts)) for token in tokens):
                done = False
                break
        if done:
            return True
        await asyncio.sleep(0.1)
    return False


async def _stored_texts(node: HubProcess, documents: set[str]) -> dict[str, str]:
    async with httpx.AsyncClient(timeout=10) as http:
        texts = {}
        for document in documents:
            response = await http.get(f"{node.http}/api/documents/{document}/text")
            response.raise_for_status()
            texts[document] = response.json()["text"]
        return texts


def drill_main(nodes: int, clients: int, documents: int) -> int:
    with tempfile.TemporaryDirectory(prefix="nova-drill-") as tmp, Cluster(nodes, Path(tmp)) as cluster:
        report = asyncio.run(rolling_upgrade_drill(cluster, clients=clients, documents=documents))
    for line in report.lines():
        print(line)
    print(json.dumps(report.__dict__))
    ok = report.tokens_lost == 0 and report.converged and all(report.stopped_cleanly)
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nodes", type=int, default=3, help="hub nodes to start (3)")
    parser.add_argument("--drill", action="store_true", help="run the rolling-upgrade drill and exit")
    parser.add_argument("--clients", type=int, default=100, help="drill: editing clients (100)")
    parser.add_argument("--documents", type=int, default=5, help="drill: documents they share (5)")
    args = parser.parse_args()
    if args.drill:
        return drill_main(args.nodes, args.clients, args.documents)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with (
        tempfile.TemporaryDirectory(prefix="nova-cluster-") as tmp,
        Cluster(args.nodes, Path(tmp)) as cluster,
    ):
        print(f"PostgreSQL: {cluster.postgres.dsn}")
        print(f"Redis:      {cluster.redis.url}")
        for node in cluster.nodes:
            print(f"hub node:   {node.ws}/<document>   (HTTP {node.http}, log {node.log_path})")
        print("Ctrl-C to stop.", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
