"""Reading change events back in tests: a Kafka consumer and a replaying reader of document texts."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import sqlite3
import time
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pycrdt
from aiokafka import AIOKafkaConsumer  # type: ignore[import-untyped]

from tests.support.services import KafkaServer


def new_topic() -> str:
    return f"nova-test-{uuid.uuid4().hex[:10]}"


class TopicReader:
    """Consumes a topic from the beginning; ``events`` keeps every envelope in arrival order."""

    def __init__(self, kafka: KafkaServer, topic: str) -> None:
        self.topic = topic
        self._consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=kafka.bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            group_id=None,
            metadata_max_age_ms=1000,
        )
        self.events: list[dict[str, Any]] = []
        self.keys: list[str] = []
        self.arrived: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> TopicReader:
        await self._consumer.start()
        self._task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self._consumer.stop()

    async def _read(self) -> None:
        async for message in self._consumer:
            self.events.append(json.loads(message.value))
            self.keys.append(message.key.decode())
            self.arrived.append(time.time())

    async def wait_for(
        self, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float, what: str
    ) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self.events):
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} not reached within {timeout}s ({len(self.events)} events read)")
            await asyncio.sleep(0.05)


def changed_by_document(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """document.changed events per document, de-duplicated by id (first arrival kept)."""
    seen: set[str] = set()
    result: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        if event["type"] != "document.changed" or event["id"] in seen:
            continue
        seen.add(event["id"])
        result.setdefault(event["document"], []).append(event)
    return result


def replay_text(events: list[dict[str, Any]], field: str = "content") -> str:
    """The text a consumer rebuilds by applying each event's update in order."""
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    text = doc.get(field, type=pycrdt.Text)
    for event in events:
        doc.apply_update(base64.b64decode(event["data"]["update"]))
    return str(text)


def apply_delta(text: str, ops: list[dict[str, Any]]) -> str:
    """Apply a text delta (retain/insert/delete, in code points as pycrdt reports) to ``text``."""
    out, position = [], 0
    for op in ops:
        if "retain" in op:
            out.append(text[position : position + op["retain"]])
            position += op["retain"]
        elif "delete" in op:
            position += op["delete"]
        elif "insert" in op:
            out.append(op["insert"])
    out.append(text[position:])
    return "".join(out)


def assert_in_order_without_gaps(events: list[dict[str, Any]]) -> None:
    """Per document, the de-duplicated changes cover consecutive seq ranges in increasing order;
    a repeated event carries the same id as its first delivery."""
    last: dict[str, int] = {}
    by_id: dict[str, str] = {}
    for event in events:
        if event["type"] != "document.changed":
            continue
        body = json.dumps(event, sort_keys=True)
        if event["id"] in by_id:
            assert by_id[event["id"]] == body, f"redelivered {event['id']} differs"
            continue
        by_id[event["id"]] = body
        document, seq = event["document"], event["seq"]
        assert seq["first"] > last.get(document, 0), f"{document}: {seq} after {last.get(document)}"
        last[document] = seq["last"]


def stored_seqs(store_url: str, document: str) -> list[int]:
    """The seqs of ``document`` in a hub's SQLite store (read-only; the hub may be running)."""
    assert store_url.startswith("sqlite:///"), store_url
    with contextlib.closing(
        sqlite3.connect(f"file:{store_url[len('sqlite:///') :]}?mode=ro", uri=True)
    ) as db:
        rows = db.execute("SELECT seq FROM updates WHERE document = ? ORDER BY seq", (document,)).fetchall()
    return [row[0] for row in rows]


async def postgres_stored_seqs(dsn: str, document: str) -> list[int]:
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch("SELECT seq FROM updates WHERE document = $1 ORDER BY seq", document)
    finally:
        await connection.close()
    return [row[0] for row in rows]
