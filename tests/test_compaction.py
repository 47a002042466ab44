"""Compaction while clients write, with two hub processes on one PostgreSQL database."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import httpx

from collab_server.client import YClient
from tests.support.hub import HubProcess
from tests.support.waiting import eventually


def compactions_of(*hubs: HubProcess) -> int:
    """Compactions completed by ``hubs`` (their nova_compactions_total counters)."""
    total = 0
    for hub in hubs:
        metrics = httpx.get(f"{hub.http}/metrics").text
        line = next(row for row in metrics.splitlines() if row.startswith("nova_compactions_total "))
        total += int(float(line.split()[1]))
    return total


async def test_compaction_under_concurrent_writes_from_two_hubs_loses_nothing(
    tmp_path: Path, postgres_dsn: str
) -> None:
    options = {"store": postgres_dsn, "compact_after_updates": 40}
    first = HubProcess(tmp_path / "a", **options)
    second = HubProcess(tmp_path / "b", **options)
    for hub in (first, second):
        hub.workdir.mkdir()
        hub.start()
    try:
        async with YClient(first.url("log")) as a, YClient(second.url("log")) as b:
            await a.wait_synced()
            await b.wait_synced()
            done = 0
            for i in range(300):
                a.text += f"a{i};"
                b.text += f"b{i};"
                if i % 100 == 99:
                    # Compactions run while writes keep coming: wait until one more has finished.
                    await eventually(lambda before=done: compactions_of(first, second) > before, timeout=20)
                    done = compactions_of(first, second)
            await eventually(
                lambda: first.text("log").count(";") == 300 and second.text("log").count(";") == 300
            )
        assert compactions_of(first, second) >= 2, "compaction never ran"
        connection = await asyncpg.connect(postgres_dsn)
        try:
            checkpoints = await connection.fetchval("SELECT count(*) FROM checkpoints WHERE document = 'log'")
        finally:
            await connection.close()
        assert checkpoints >= 2
        # Everything both hubs stored is there after a restart (loaded from checkpoint + tail).
        first.stop()
        second.stop()
        first.start()
        text = first.text("log")
        assert all(f"a{i};" in text and f"b{i};" in text for i in range(300))
    finally:
        first.stop()
        second.stop()
