"""The search worker process: started on demand, answers through the hub, restarted when it
dies or outgrows its memory bound, and stopped with the hub."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
from pathlib import Path

import psutil
import pytest

from collab_server.search_process import SearchProcess, worker_config
from collab_server.settings import Settings
from persistence.index.base import EmptyQuery, IndexUnavailable
from persistence.sqlite import SqliteStore
from tests.support.waiting import eventually


def alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def test_worker_starts_on_a_search_is_restarted_after_a_crash_and_stops_with_the_hub(
    tmp_path: Path,
) -> None:
    path = tmp_path / "hub.sqlite3"
    store = SqliteStore(path)
    await store.open()
    settings = dataclasses.replace(Settings(), store=f"sqlite:///{path}", search_interval_seconds=0.2)
    search = SearchProcess(
        store, worker_config(settings, str(tmp_path / "index")), poll_seconds=0.2, max_rss_bytes=2**40
    )
    task = asyncio.create_task(search.run())
    try:
        assert search.starts == 0  # an empty store and no search: no worker
        with pytest.raises(IndexUnavailable, match="opening"):
            await search.search("anything", 3)
        await eventually(lambda: search.opened, timeout=30, what="the worker started on demand")
        first = search.pid

        async def answered() -> bool:
            try:
                return await search.search("anything", 3) == []
            except IndexUnavailable:
                return False

        async def until_answered() -> None:
            while not await answered():
                await asyncio.sleep(0.2)

        await asyncio.wait_for(until_answered(), 120)  # the index opened in the worker: no hits yet
        with pytest.raises(EmptyQuery):
            await search.search("   ", 3)  # the worker's own errors come back as the same exceptions
        assert first is not None
        os.kill(first, signal.SIGKILL)
        await eventually(lambda: search.starts == 2 and search.opened, timeout=30, what="restarted")
        assert search.pid != first
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await search.close()
        await store.close()
    await eventually(lambda: not alive(search.pid), timeout=15, what="the worker stopped with the hub")


async def test_a_worker_above_its_memory_bound_is_restarted(tmp_path: Path) -> None:
    path = tmp_path / "hub.sqlite3"
    store = SqliteStore(path)
    await store.open()
    settings = dataclasses.replace(Settings(), store=f"sqlite:///{path}")
    search = SearchProcess(
        store,
        worker_config(settings, str(tmp_path / "index")),
        poll_seconds=0.2,
        max_rss_bytes=1024 * 1024,  # any Python process is above 1 MiB
        memory_check_seconds=0.1,
    )
    task = asyncio.create_task(search.run())
    try:
        with pytest.raises(IndexUnavailable):
            await search.search("anything", 3)
        await eventually(lambda: search.starts >= 2, timeout=30, what="a restart after the bound was passed")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await search.close()
        await store.close()
