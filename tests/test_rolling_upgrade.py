"""The rolling-upgrade drill (load_tests/cluster.py) as a test: 3 hub nodes replaced one by
one (new node ready, old node out of the balancer, SIGTERM) while 100 clients edit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from load_tests.cluster import Cluster, rolling_upgrade_drill


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with Cluster(3, tmp_path, ping_interval_seconds=1.0, ping_timeout_seconds=1.0) as running:
        yield running


@pytest.mark.timeout(600)
async def test_rolling_upgrade_loses_nothing(cluster: Cluster) -> None:
    report = await rolling_upgrade_drill(cluster, clients=100, documents=5)
    print("\n".join(report.lines()))
    assert report.tokens_typed > 100
    assert report.tokens_lost == 0
    assert report.converged
    assert report.stopped_cleanly == [True, True, True]
    # Every client of every stopped node came back through the balancer.
    assert report.reconnects >= report.clients
