"""PostgreSQL restarts in the middle of editing: clients stay connected and nothing is lost."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from collab_server.client import YClient
from tests.support.hub import HubProcess
from tests.support.services import PostgresServer
from tests.support.waiting import eventually


async def test_database_restart_mid_editing(tmp_path: Path) -> None:
    with PostgresServer() as database:
        hub = HubProcess(tmp_path, store=database.dsn).start()
        try:
            async with YClient(hub.url("outage")) as writer, YClient(hub.url("outage")) as reader:
                await writer.wait_synced()
                await reader.wait_synced()
                for i in range(20):
                    writer.text += f"a{i} "
                await reader.wait_for(lambda c: str(c.text) == str(writer.text))

                await database.astop()
                for i in range(20):
                    writer.text += f"b{i} "
                    await asyncio.sleep(0.02)
                await eventually(
                    lambda: httpx.get(f"{hub.http}/readyz").status_code == 503,
                    what="readyz reports the outage",
                )
                ready = httpx.get(f"{hub.http}/readyz").json()
                assert ready["unsaved_updates"] > 0 and ready["store_writes_healthy"] is False

                await database.astart()
                # The backlog is written, then relayed (strict durability): the reader catches up.
                await reader.wait_for(lambda c: str(c.text) == str(writer.text), timeout=30)
                await eventually(lambda: httpx.get(f"{hub.http}/readyz").status_code == 200, timeout=15)
                assert not writer.closed.is_set() and not reader.closed.is_set()
                expected = str(writer.text)
            hub.stop()
            hub.start()
            assert hub.text("outage") == expected
            assert expected.count("b") == 20
        finally:
            hub.stop()
