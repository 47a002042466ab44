"""Start a multi-node topology as local processes: PostgreSQL, Redis and N hub nodes.

    python load_tests/cluster.py --nodes 3          # prints the URLs, runs until Ctrl-C

The same topology as docker/compose.yaml, without Docker: throwaway PostgreSQL and Redis on
free loopback ports (data in a temporary directory, removed on exit) and N `collab-server`
processes sharing them. Tests and benchmarks use ``Cluster`` directly.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import tempfile
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.support.hub import HubProcess  # noqa: E402
from tests.support.services import PostgresServer, RedisServer  # noqa: E402


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

    def add_node(self, index: int | None = None) -> HubProcess:
        index = len(self.nodes) if index is None else index
        node_dir = self.workdir / f"node{index}"
        node_dir.mkdir(parents=True, exist_ok=True)
        node = HubProcess(
            node_dir,
            store=self.postgres.dsn,
            redis_url=self.redis.url,
            node_id=f"node{index}",
            **self.hub_options,
        ).start()
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


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nodes", type=int, default=3, help="hub nodes to start (3)")
    args = parser.parse_args()
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
