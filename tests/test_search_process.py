"""The search worker process: started on demand, answers through the hub, restarted when it
dies or outgrows its memory bound, and stopped with the hub."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import time
from pathlib import Path

import psutil
import pytest

from collab_server.search_process import SearchProcess, worker_config
from collab_server.settings import Settings
from persistence.base import LogEntry
from persistence.index.base import EmptyQuery, IndexUnavailable
from persistence.sqlite import SqliteStore
from tests.fast.stores import CountingStore
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

        deadline = time.monotonic() + 120
        while True:  # the index opens in the worker (chromadb and the model load there)
            try:
                assert await search.search("anything", 3) == []  # nothing stored: no hits
                break
            except IndexUnavailable:
                assert time.monotonic() < deadline, "the worker's index did not open"
                await asyncio.sleep(0.2)
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


@pytest.mark.fast
async def test_the_worker_starts_once_a_document_is_due_without_listing_the_store_each_poll() -> None:
    store = CountingStore()
    commits = {"busy.md": time.time()}
    search = SearchProcess(
        store,
        {},
        poll_seconds=0.1,
        max_rss_bytes=2**40,
        recent_commits=lambda: list(commits.items()),
        staleness_seconds=3600.0,
    )
    waiting = asyncio.create_task(search._wait_for_work())
    typing_until = time.monotonic() + 0.5
    while time.monotonic() < typing_until:  # a burst of typing: committed again and again
        commits["busy.md"] = time.time()
        await asyncio.sleep(0.02)
    assert not waiting.done()  # never quiet for a poll interval: not due
    assert store.listings == 1  # the store was listed once, at start; then the writer's memory
    await asyncio.wait_for(waiting, 5)  # typing stopped: due one interval later

    stale = SearchProcess(
        store, {}, poll_seconds=3600.0, max_rss_bytes=2**40, recent_commits=lambda: [("busy.md", time.time())]
    )
    stale._staleness = 0.0
    await asyncio.wait_for(stale._wait_for_work(), 5)  # changing all the time, but known long enough

    await store.append([LogEntry("old.md", b"\x00\x00", "w", "n", time.time())])
    earlier = SearchProcess(store, {}, poll_seconds=3600.0, max_rss_bytes=2**40)
    await asyncio.wait_for(earlier._wait_for_work(), 5)  # stored before this hub: due at once
