"""Acknowledged means stored, for HTTP writes: in strict durability an edit is answered after
its commit; with the store down the answer is 503 ``store_unavailable`` within the bounded
wait, and a write refused up front changes nothing. Then (a real hub, SIGKILLed right after
each answer) every acknowledged edit and restore is in the store after the restart.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from collab_server.app import create_app
from collab_server.settings import Settings
from persistence.base import LogEntry, StoreUnavailable
from persistence.memory import MemoryStore
from tests.support.hub import HubProcess
from tests.support.waiting import eventually_async

COMMIT_TIMEOUT = 1.0


class SwitchableStore(MemoryStore):
    """The memory store with an outage switch (a stand-in for a database that stops answering)."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False

    async def append(self, entries: Sequence[LogEntry]) -> list[int]:
        if self.down:
            raise StoreUnavailable("database is down")
        return await super().append(entries)

    async def ping(self) -> None:
        if self.down:
            raise StoreUnavailable("database is down")


@pytest.fixture
async def in_process() -> AsyncIterator[tuple[httpx.AsyncClient, SwitchableStore]]:
    """The whole app in this process (lifespan included) on the switchable store."""
    store = SwitchableStore()
    settings = Settings(store="memory", search="off", http_commit_timeout_seconds=COMMIT_TIMEOUT)
    app = create_app(settings, store=store)
    async with app.http.router.lifespan_context(app.http) as state:

        async def with_state(scope: dict[str, Any], receive: Any, send: Any) -> None:
            scope["state"] = dict(state)
            await app(scope, receive, send)

        transport = httpx.ASGITransport(app=with_state)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub", timeout=10) as client:
            yield client, store


@pytest.mark.fast  # in-process: the app on a switchable memory store
async def test_strict_edit_is_answered_after_its_commit_and_503_when_the_store_is_down(
    in_process: tuple[httpx.AsyncClient, SwitchableStore],
) -> None:
    client, store = in_process
    ok = await client.post("/api/documents/d/edits", json={"text": "one"})
    assert ok.status_code == 200, ok.text
    # Answered only after the commit: the store already holds it.
    assert len((await store.load("d")).tail) == 1

    store.down = True
    started = asyncio.get_running_loop().time()
    late = await client.post("/api/documents/d/edits", json={"text": "one two"})
    waited = asyncio.get_running_loop().time() - started
    assert late.status_code == 503 and late.json()["error"]["code"] == "store_unavailable", late.text
    assert COMMIT_TIMEOUT <= waited < COMMIT_TIMEOUT + 5  # bounded wait
    # The store is now known to fail: the next write is refused before anything is touched.
    refused = await client.post("/api/documents/d/edits", json={"text": "three"})
    assert refused.status_code == 503 and refused.json()["error"]["code"] == "store_unavailable"
    restore = await client.post("/api/documents/d/restore", json={"seq": 1})
    assert restore.status_code == 503 and restore.json()["error"]["code"] == "store_unavailable"
    assert (await client.get("/api/documents/d/text")).json()["text"] == "one two"

    store.down = False  # the change answered 503 was kept and is stored once the store is back
    await eventually_async(lambda: stored_parts(store, "d", 2), what="the kept change stored after recovery")
    await eventually_async(lambda: ready(client), what="readiness after the store recovered")
    again = await client.post("/api/documents/d/edits", json={"text": "one two three"})
    assert again.status_code == 200, again.text


async def stored_parts(store: MemoryStore, document: str, parts: int) -> bool:
    return len((await store.load(document)).tail) == parts


async def ready(client: httpx.AsyncClient) -> bool:
    return (await client.get("/readyz")).status_code == 200


ROUNDS = 5


async def test_every_acknowledged_http_edit_survives_a_sigkill_right_after_the_answer(tmp_path: Path) -> None:
    hub = HubProcess(tmp_path).start()
    expected = ""
    try:
        for round_number in range(ROUNDS):
            line = f"round {round_number}\n"
            answer = httpx.post(
                f"{hub.http}/api/documents/kept/edits",
                json={"edits": [{"start": len(expected), "end": len(expected), "text": line}]},
                timeout=10,
            )
            hub.kill()  # SIGKILL the moment the answer is in
            assert answer.status_code == 200, answer.text
            expected += line
            hub.start()
            assert hub.text("kept") == expected, f"round {round_number}: acknowledged edit lost"
        seq = hub.get("/api/documents/kept/history").json()["versions"][-1]["seq"]
        restored = httpx.post(f"{hub.http}/api/documents/kept/restore", json={"seq": seq}, timeout=10)
        hub.kill()
        assert restored.status_code == 200, restored.text
        hub.start()
        assert hub.text("kept") == "round 0\n"
    finally:
        hub.stop()
