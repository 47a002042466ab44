"""Change events through failures, against a real Kafka broker (one per session):

- SIGKILL of the hub between commit and publish, several rounds: nothing stored is missing
  from the topic after restarts; a repeated event has the id (and body) of its first delivery.
- Kafka stopped ~30 s while clients edit: the hub keeps serving, the backlog waits in the
  store (lag in /readyz and /metrics), then everything arrives in order and lag returns to 0.
- Two hub nodes on one PostgreSQL and one Redis: each stored update is published exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

from collab_server.client import YClient
from tests.support.events import (
    TopicReader,
    assert_in_order_without_gaps,
    changed_by_document,
    new_topic,
    postgres_stored_seqs,
    replay_text,
    stored_seqs,
)
from tests.support.hub import HubProcess
from tests.support.services import KafkaServer, RedisServer
from tests.support.waiting import eventually

KILL_ROUNDS = 3
OUTAGE_SECONDS = 30.0


def published_seqs(events: list[dict[str, Any]], document: str) -> list[int]:
    return [e["seq"]["last"] for e in changed_by_document(events).get(document, [])]


def metric(hub: HubProcess, name: str, sink: str = "kafka") -> float:
    text = hub.get("/metrics").text
    match = re.search(rf'^{name}{{sink="{sink}"}} ([0-9.e+-]+)$', text, re.M)
    assert match is not None, f"{name} not in /metrics"
    return float(match.group(1))


async def type_until(client: YClient, tag: str, stop: asyncio.Event, pause: float = 0.01) -> int:
    count = 0
    while not stop.is_set() and not client.closed.is_set():
        client.text.insert(0, f"{tag}{count} ")
        count += 1
        await asyncio.sleep(pause)  # a typist's pace
    return count


def everything_published(hub: HubProcess, documents: Sequence[str]) -> Callable[[list[dict[str, Any]]], bool]:
    """Whether the topic holds every update the hub stored for ``documents``."""

    def complete(events: list[dict[str, Any]]) -> bool:
        return all(published_seqs(events, doc) == stored_seqs(hub.store, doc) for doc in documents)

    return complete


async def test_sigkill_between_commit_and_publish_loses_no_event(
    tmp_path: Path, kafka_server: KafkaServer
) -> None:
    topic = new_topic()
    hub = HubProcess(tmp_path, events_kafka_brokers=kafka_server.bootstrap, events_kafka_topic=topic).start()
    rng = random.Random(11)
    documents = ("kill/a", "kill/b")
    behind_at_kill = []
    try:
        async with TopicReader(kafka_server, topic) as reader:
            for round_number in range(KILL_ROUNDS):
                stop = asyncio.Event()
                async with contextlib.AsyncExitStack() as stack:
                    clients = [
                        await stack.enter_async_context(YClient(hub.url(doc) + f"?actor=k{i}"))
                        for i, doc in enumerate(documents * 2)
                    ]
                    for client in clients:
                        await client.wait_synced()
                    typing = [
                        asyncio.create_task(type_until(c, f"r{round_number}c{i}:", stop, 0.002))
                        for i, c in enumerate(clients)
                    ]
                    await asyncio.sleep(rng.uniform(0.4, 1.2))  # typing time before the crash
                    hub.kill()
                    stop.set()
                    await asyncio.gather(*typing)
                hub.start()
                # What the restarted hub holds was committed before the kill; compare with the topic.
                stored_now = sum(len(stored_seqs(hub.store, doc)) for doc in documents)
                published_then = len({e["id"] for e in reader.events if e["type"] == "document.changed"})
                behind_at_kill.append(stored_now - published_then)

            await reader.wait_for(
                everything_published(hub, documents),
                30,
                "every stored update on the topic after the restarts",
            )
        assert_in_order_without_gaps(reader.events)
        by_doc = changed_by_document(reader.events)
        for doc in documents:
            assert replay_text(by_doc[doc]) == hub.text(doc)
        # The kills did land between commits and their publication (else this test proves little).
        assert max(behind_at_kill) > 0, behind_at_kill
    finally:
        hub.stop()


async def test_kafka_outage_keeps_the_hub_serving_and_resumes_in_order(
    tmp_path: Path, kafka_server: KafkaServer
) -> None:
    topic = new_topic()
    hub = HubProcess(tmp_path, events_kafka_brokers=kafka_server.bootstrap, events_kafka_topic=topic).start()
    documents = ("outage/a", "outage/b")
    try:
        async with TopicReader(kafka_server, topic) as reader, contextlib.AsyncExitStack() as stack:
            writers = [
                await stack.enter_async_context(YClient(hub.url(doc) + "?actor=w")) for doc in documents
            ]
            watcher = await stack.enter_async_context(YClient(hub.url(documents[0])))
            for client in (*writers, watcher):
                await client.wait_synced()
            writers[0].text += "before "
            await reader.wait_for(lambda ev: len(ev) >= 2, 20, "events before the outage")

            await kafka_server.astop()
            stop = asyncio.Event()
            typing = [asyncio.create_task(type_until(w, f"w{i}.", stop, 0.05)) for i, w in enumerate(writers)]
            started = time.monotonic()
            # The hub keeps serving: edits reach the other client, /readyz stays 200 and shows the lag.
            await eventually(lambda: "w0.10 " in str(watcher.text), 10, "edits relayed during the outage")

            def lagging() -> bool:
                ready = hub.get("/readyz")
                kafka = ready.json()["events"]["kafka"]
                return ready.status_code == 200 and kafka["lag_events"] > 20 and not kafka["healthy"]

            # A stopped broker is noticed when a send times out (15 s) or its connection fails;
            # on a loaded machine that plus the backoff can pass 20 s.
            await eventually(lagging, 45, "lag reported while Kafka is down")
            while time.monotonic() - started < OUTAGE_SECONDS:
                assert hub.get("/readyz").status_code == 200
                await asyncio.sleep(1.0)  # the outage lasts OUTAGE_SECONDS while clients type
            assert metric(hub, "nova_events_lag_events") > 0
            await kafka_server.astart()
            stop.set()
            counts = await asyncio.gather(*typing)
            assert min(counts) > 100

            await reader.wait_for(
                everything_published(hub, documents), 60, "the backlog published after Kafka returned"
            )
        assert_in_order_without_gaps(reader.events)
        by_doc = changed_by_document(reader.events)
        for doc in documents:
            assert replay_text(by_doc[doc]) == hub.text(doc)
        await eventually(lambda: metric(hub, "nova_events_lag_events") == 0, 10, "lag back to 0")
        assert hub.get("/readyz").json()["events"]["kafka"]["healthy"]
    finally:
        if not kafka_server.running:
            await kafka_server.astart()
        hub.stop()


async def test_two_nodes_publish_each_update_once(
    tmp_path: Path, kafka_server: KafkaServer, postgres_dsn: str, redis_server: RedisServer
) -> None:
    topic = new_topic()
    options = {
        "redis_url": redis_server.url,
        "events_kafka_brokers": kafka_server.bootstrap,
        "events_kafka_topic": topic,
        "events_poll_ms": 50,
    }
    nodes = [HubProcess(tmp_path / f"n{i}", store=postgres_dsn, **options) for i in range(2)]
    documents = [f"shared/{i}" for i in range(6)]
    for node in nodes:
        node.workdir.mkdir()
        node.start()
    try:
        async with TopicReader(kafka_server, topic) as reader, contextlib.AsyncExitStack() as stack:
            clients = [
                await stack.enter_async_context(YClient(nodes[i % 2].url(doc) + f"?actor=n{i % 2}"))
                for doc in documents
                for i in range(2)
            ]
            for client in clients:
                await client.wait_synced()
            for step in range(15):
                for i, client in enumerate(clients):
                    client.text.insert(0, f"{i}.{step} ")
                await asyncio.sleep(0.02)  # typists' pace

            for doc in documents:  # every node holds every edit: all are stored
                await eventually(
                    lambda d=doc: nodes[0].text(d) == nodes[1].text(d) and nodes[0].text(d).count(" ") == 30,
                    15,
                    f"{doc} complete on both nodes",
                )
            stored = {doc: await postgres_stored_seqs(postgres_dsn, doc) for doc in documents}

            def complete(events: list[dict[str, Any]]) -> bool:
                return all(published_seqs(events, doc) == stored[doc] for doc in documents)

            await reader.wait_for(complete, 30, "every stored update on the topic")
            await asyncio.sleep(1.0)  # let any (wrong) second publication arrive before counting
        changed = [e for e in reader.events if e["type"] == "document.changed"]
        ids = [e["id"] for e in changed]
        assert len(ids) == len(set(ids)), "an update was published more than once"
        assert len({e["node"] for e in changed}) == 2, "updates from both nodes"
        created = [e["id"] for e in reader.events if e["type"] == "document.created"]
        assert sorted(created) == sorted(set(created)) and len(created) == len(documents)
        leases = [httpx.get(f"{n.http}/readyz", timeout=5).json()["events"]["kafka"] for n in nodes]
        assert sum(lease["partitions_held"] for lease in leases) == 8
    finally:
        for node in nodes:
            node.stop()
