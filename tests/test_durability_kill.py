"""SIGKILL the hub mid-editing: every update any client had received from it is stored.

The check reads the restarted hub's stored state *before* any client reconnects (clients
would otherwise re-send what they have and hide a loss).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from pathlib import Path
from typing import Any

import httpx
import pycrdt
import pytest

from collab_server.client import YClient
from tests.support.hub import HubProcess

ROUNDS = 3


def missing_from(stored_state: bytes, received: bytes) -> bool:
    """True if ``received`` holds anything (insert or delete) that ``stored_state`` lacks."""
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    doc.apply_update(stored_state)
    changes: list[bytes] = []
    doc.observe(lambda event: changes.append(event.update))
    doc.apply_update(received)
    return bool(changes)


async def type_forever(client: YClient, tag: str) -> None:
    count = 0
    while not client.closed.is_set():
        client.text.insert(0, f"{tag}{count} ")
        count += 1
        await asyncio.sleep(0.003)


async def kill_rounds(hub: HubProcess) -> None:
    rng = random.Random(7)
    writer_docs: list[pycrdt.Doc[Any]] = [pycrdt.Doc() for _ in range(3)]
    observer_doc: pycrdt.Doc[Any] = pycrdt.Doc()
    for round_number in range(ROUNDS):
        async with contextlib.AsyncExitStack() as stack:
            writers = [
                await stack.enter_async_context(YClient(hub.url("kill") + f"?actor=w{i}", doc=doc))
                for i, doc in enumerate(writer_docs)
            ]
            observer = await stack.enter_async_context(YClient(hub.url("kill"), doc=observer_doc))
            for client in (*writers, observer):
                await client.wait_synced()
            typing = [
                asyncio.create_task(type_forever(w, f"r{round_number}w{i}:")) for i, w in enumerate(writers)
            ]
            await asyncio.sleep(rng.uniform(0.3, 1.0))
            hub.kill()
            # What the observer holds now came from the hub, and nothing more can arrive.
            received = observer_doc.get_update()
            await asyncio.wait_for(observer.closed.wait(), 5)
            for task in typing:
                await asyncio.wait_for(task, 5)
        assert len(str(observer_doc.get("content", type=pycrdt.Text))) > 0
        hub.start()
        stored = httpx.get(f"{hub.http}/api/documents/kill/state", timeout=10)
        assert stored.status_code == 200, stored.text
        assert not missing_from(stored.content, received), f"round {round_number}: a received update was lost"


async def test_sigkill_loses_nothing_any_client_received_sqlite(tmp_path: Path) -> None:
    hub = HubProcess(tmp_path).start()
    try:
        await kill_rounds(hub)
    finally:
        hub.stop()


@pytest.mark.parametrize("durability", ["strict"])
async def test_sigkill_loses_nothing_any_client_received_postgres(
    tmp_path: Path, postgres_dsn: str, durability: str
) -> None:
    hub = HubProcess(tmp_path, store=postgres_dsn, durability=durability).start()
    try:
        await kill_rounds(hub)
    finally:
        hub.stop()
