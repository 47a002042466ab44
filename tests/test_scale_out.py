"""Several hub nodes share documents through Redis (real Redis and PostgreSQL, real processes)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pycrdt
import pytest

from collab_server.client import YClient
from load_tests.cluster import Cluster
from tests.support.hub import HubProcess
from tests.support.node import NodeClients
from tests.support.waiting import eventually


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with Cluster(3, tmp_path, ping_interval_seconds=1.0, ping_timeout_seconds=1.0) as running:
        yield running


def stored_entries(node: HubProcess, document: str) -> int:
    activity = httpx.get(f"{node.http}/api/documents/{document}/activity?limit=1000", timeout=10).json()
    return len(activity["activity"])


def text_of(client: YClient) -> str:
    return str(client.text)


async def test_three_nodes_converge_and_store_each_update_once(cluster: Cluster) -> None:
    nodes = cluster.nodes
    async with contextlib.AsyncExitStack() as stack, NodeClients() as js:
        py = [await stack.enter_async_context(YClient(nodes[i % 3].url("shared"))) for i in range(3)]
        for client in py:
            await client.wait_synced()
        for i in range(3):
            await js.open(f"js{i}", nodes[i].ws, "shared")
        edits = 0
        for round_number in range(10):
            for i, client in enumerate(py):
                client.text += f"p{i}.{round_number};"
                edits += 1
            for i in range(3):
                await js.call("insert", client=f"js{i}", index=0, text=f"j{i}.{round_number};")
                edits += 1
        await eventually(lambda: len({text_of(c) for c in py}) == 1, what="python clients converge")
        final = text_of(py[0])
        for i in range(3):
            await js.call("wait_text", client=f"js{i}", text=final)
        assert final.count(";") == edits
        for node in nodes:
            await eventually(lambda n=node: n.text("shared") == final, what=f"{node.ws} equals clients")
        # Each update is in the log once, stored by the node its client sent it to.
        await eventually(lambda: stored_entries(nodes[0], "shared") == edits, what="one log entry per edit")


async def test_presence_crosses_nodes_and_leaves_with_a_killed_node(cluster: Cluster) -> None:
    a, b, _ = cluster.nodes
    async with YClient(b.url("room"), presence={"user": {"name": "bea"}}) as watcher:
        await watcher.wait_synced()
        ghost = YClient(a.url("room"), presence={"user": {"name": "ada", "kind": "agent"}})
        await ghost.__aenter__()
        await ghost.wait_synced()
        await watcher.wait_for(
            lambda c: c.presence.get(ghost.client_id, {}).get("user", {}).get("name") == "ada"
        )
        a.kill()
        # Node a's heartbeat key expires (3 s), then b removes the presence it owned.
        await watcher.wait_for(lambda c: ghost.client_id not in c.presence, timeout=10)
        with contextlib.suppress(Exception):
            await ghost.__aexit__(None, None, None)


async def test_killing_a_node_loses_nothing_clients_had_received(cluster: Cluster) -> None:
    a, b, c = cluster.nodes
    docs: list[pycrdt.Doc[Any]] = [pycrdt.Doc() for _ in range(3)]
    homes = [a, b, c]
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(YClient(homes[i].url("crash"), doc=docs[i])) for i in range(3)
        ]
        for client in clients:
            await client.wait_synced()
        for round_number in range(20):
            for i, client in enumerate(clients):
                client.text += f"{i}:{round_number};"
            await asyncio.sleep(0.01)
        await eventually(lambda: len({str(d.get("content", type=pycrdt.Text)) for d in docs}) == 1)
        a.kill()
        await asyncio.wait_for(clients[0].closed.wait(), 5)
    # Client 0 reconnects to another node and carries on; its offline edit merges too.
    docs[0].get("content", type=pycrdt.Text).insert(0, "after-crash;")
    async with YClient(b.url("crash"), doc=docs[0]) as moved, YClient(c.url("crash"), doc=docs[2]) as other:
        await moved.wait_synced()
        await other.wait_synced()
        await eventually(lambda: str(moved.text) == str(other.text), what="survivors converge")
        final = str(moved.text)
        assert final.count(";") == 61
        await eventually(lambda: b.text("crash") == final and c.text("crash") == final)


async def test_redis_restart_mid_editing_converges(cluster: Cluster) -> None:
    a, b, _ = cluster.nodes
    async with YClient(a.url("flaky")) as left, YClient(b.url("flaky")) as right:
        await left.wait_synced()
        await right.wait_synced()
        left.text += "before;"
        await right.wait_for(lambda c: str(c.text) == "before;")
        await asyncio.to_thread(cluster.redis.stop)
        left.text += "left-during;"
        right.text += "right-during;"
        await eventually(
            lambda: httpx.get(f"{a.http}/readyz").status_code == 503, what="node a reports not ready"
        )
        await asyncio.to_thread(cluster.redis.start)
        await eventually(
            lambda: str(left.text) == str(right.text), timeout=20, what="clients converge after Redis"
        )
        assert "left-during;" in str(left.text) and "right-during;" in str(left.text)
        await eventually(lambda: httpx.get(f"{a.http}/readyz").status_code == 200, timeout=10)


async def test_a_node_started_late_catches_up_exactly(cluster: Cluster) -> None:
    a = cluster.nodes[0]
    async with YClient(a.url("late")) as writer:
        await writer.wait_synced()
        for i in range(30):
            writer.text += f"{i},"
        expected = "".join(f"{i}," for i in range(30))
        await eventually(lambda: a.text("late") == expected)
        late = await asyncio.to_thread(cluster.add_node)
        async with YClient(late.url("late")) as reader:
            await reader.wait_synced()
            assert str(reader.text) == expected
            writer.text += "live"
            await reader.wait_for(lambda c: str(c.text) == expected + "live")


def metric(node: HubProcess, name: str) -> float:
    """One unlabelled series of the node's /metrics (0 when absent)."""
    for line in node.get("/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


REMOTE_IN = "nova_remote_updates_in_total"
REMOTE_APPLIED = "nova_remote_updates_applied_total"


async def test_a_node_relays_other_nodes_updates_and_integrates_them_only_when_needed(
    cluster: Cluster,
) -> None:
    a, b, c = cluster.nodes
    expected = "".join(f"{i};" for i in range(20))
    async with YClient(b.url("lazy")) as reader:
        await reader.wait_synced()
        async with YClient(a.url("lazy")) as writer:
            await writer.wait_synced()
            for i in range(20):
                writer.text += f"{i};"
            await reader.wait_for(lambda client: str(client.text) == expected)
        # b passed every update on to its reader without integrating one into its own copy
        # (the 20 updates arrive in fewer messages: a node publishes one per document per window).
        assert metric(b, REMOTE_IN) >= 1
        assert metric(b, REMOTE_APPLIED) == 0
        # c has no client of the document: it neither follows, applies nor stores it.
        assert metric(c, REMOTE_IN) == metric(c, REMOTE_APPLIED) == 0
        # A read on b integrates what b relayed; a late joiner on c loads it from the store.
        assert b.text("lazy") == expected
        assert metric(b, REMOTE_APPLIED) == metric(b, REMOTE_IN)
        async with YClient(c.url("lazy")) as late_c, YClient(b.url("lazy")) as late_b:
            await late_c.wait_synced()
            await late_b.wait_synced()
            assert str(late_c.text) == str(late_b.text) == expected
    # Stored once each, by the node the writer was connected to.
    activity = b.get("/api/documents/lazy/activity?limit=1000").json()["activity"]
    assert len(activity) == 20
    assert {entry["origin_node"] for entry in activity} == {"node0"}
