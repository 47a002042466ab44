"""SearchProcess: the hub's handle on the semantic index running in a worker process.

The worker (``search_worker.py``) holds chromadb, the embedding model and every indexing
pass, so none of them takes the hub's interpreter lock or memory. This handle:

- starts it lazily: once a document is due for indexing (stored before this hub started,
  or committed here and then quiet for a poll interval, or first committed ``staleness``
  ago) or someone searches: an idle hub with search on stays as small as one with search
  off, and a burst of typing does not pay the worker's start mid-burst. It reads what this
  hub committed from the writer's memory (``recent_commits``), not from the store: listing
  the store's documents is a scan that would hold up commits on SQLite's one connection;
  the store is listed once at start and every ``RESCAN_SECONDS`` (other nodes' documents);
- sends requests over its stdin and matches the replies on its stdout, at most
  ``max_requests`` in flight (more are refused as "busy": a 503 for the caller);
- restarts it when it exits or crashes (backoff 1 s doubling to 60 s) and when its resident
  memory passes ``max_rss_bytes`` (checked every ``memory_check_seconds``);
- stops it with the hub: end of input, then SIGTERM, then SIGKILL, each after a bounded wait.
  A hub that dies closes the pipe, and the worker stops by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import psutil

from collab_server.settings import Settings
from persistence.base import Store, StoreError
from persistence.index.base import EmptyQuery, IndexUnavailable, SearchHit

logger = logging.getLogger(__name__)

# Restarts of a worker that exits: 1 s, doubled up to a minute (a crash loop costs little).
FIRST_RESTART_SECONDS = 1.0
MAX_RESTART_SECONDS = 60.0
STOP_SECONDS = 10.0  # for the worker to close its index after end of input, then for SIGTERM
RESCAN_SECONDS = 60.0  # how often the store's document list is read while waiting for work
RecentCommits = Callable[[], Iterable[tuple[str, float]]]  # (document, unix time of its last commit)
REPO_ROOT = Path(__file__).resolve().parent.parent  # the worker runs the same code as the hub

# The settings the worker needs: how to open the store, where the index is, how to log.
WORKER_SETTINGS = (
    "store",
    "store_ssl_mode",
    "store_ssl_root_cert",
    "store_max_connections",
    "store_connect_timeout_seconds",
    "store_command_timeout_seconds",
    "store_acquire_timeout_seconds",
    "store_busy_timeout_seconds",
    "archive",
    "archive_access_key",
    "archive_secret_key",
    "tier_after_seconds",
    "master_key_file",
    "master_keys",
    "log_level",
    "log_json",
    "node_id",
    "search_interval_seconds",
)


def worker_config(settings: Settings, location: str) -> dict[str, Any]:
    """What the hub sends as the worker's first line."""
    chosen = {name: getattr(settings, name) for name in WORKER_SETTINGS if hasattr(settings, name)}
    return {"settings": chosen, "location": location}


class SearchProcess:
    def __init__(
        self,
        store: Store,
        config: dict[str, Any],
        *,
        poll_seconds: float,
        max_rss_bytes: int,
        recent_commits: RecentCommits = lambda: (),
        staleness_seconds: float = 30.0,
        max_requests: int = 16,
        query_timeout_seconds: float = 10.0,
        memory_check_seconds: float = 2.0,
    ) -> None:
        self._store = store
        self._config = config
        self._poll_seconds = poll_seconds
        self._recent_commits = recent_commits
        self._staleness = staleness_seconds
        self._max_rss = max_rss_bytes
        self._max_requests = max_requests
        self._query_timeout = query_timeout_seconds
        self._memory_check = memory_check_seconds
        self._wanted = asyncio.Event()  # a search or an erasure asked for the index
        self._running = asyncio.Event()  # a worker is up and reading requests
        self._process: asyncio.subprocess.Process | None = None
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._next_id = 1
        self.starts = 0  # workers started (restarts included)
        self.pid: int | None = None

    @property
    def opened(self) -> bool:
        return self._running.is_set()

    # -- lifetime -------------------------------------------------------------------------

    async def run(self) -> None:
        """Start the worker once there is work and keep one running until cancelled."""
        await self._wait_for_work()
        backoff = FIRST_RESTART_SECONDS
        while True:
            started = time.monotonic()
            code = await self._run_worker()
            if time.monotonic() - started > MAX_RESTART_SECONDS:
                backoff = FIRST_RESTART_SECONDS  # it ran well for a while: a fresh failure
            logger.error("search worker exited with code %s; restarting in %.0fs", code, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_RESTART_SECONDS)

    async def _wait_for_work(self) -> None:
        first_seen: dict[str, float] = {}  # documents committed here, since when this hub knows them
        rescan_at = 0.0
        while not self._wanted.is_set():
            clock, now = time.monotonic(), time.time()
            for document, committed_at in self._recent_commits():
                seen = first_seen.setdefault(document, clock)
                if now - committed_at >= self._poll_seconds or clock - seen >= self._staleness:
                    return
            if clock >= rescan_at:
                rescan_at = clock + RESCAN_SECONDS
                try:
                    stored = await self._store.list_documents()
                except (StoreError, OSError) as exc:
                    logger.debug("search: store not readable yet: %s", exc)
                else:  # stored before this hub started, or by another node
                    if any(info.name not in first_seen for info in stored):
                        return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wanted.wait(), self._poll_seconds)

    async def _run_worker(self) -> int | None:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "collab_server.search_worker",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=REPO_ROOT,
            limit=1 << 24,  # one reply line: at most 50 hits with their snippets
        )
        assert process.stdin is not None and process.stdout is not None
        self.starts += 1
        self.pid = process.pid
        try:
            process.stdin.write(json.dumps(self._config).encode() + b"\n")
            await process.stdin.drain()
            self._process = process
            self._running.set()
            async with asyncio.TaskGroup() as tasks:
                reading = tasks.create_task(self._read_replies(process.stdout))
                watching = tasks.create_task(self._watch_memory(process))
                code = await process.wait()
                reading.cancel()
                watching.cancel()
            return code
        except (BrokenPipeError, ConnectionResetError):
            return await process.wait()
        finally:
            self._running.clear()
            self._process = None
            self._fail_pending("the search worker stopped")
            await _stop(process)

    async def _read_replies(self, replies: asyncio.StreamReader) -> None:
        while line := await replies.readline():
            try:
                reply = json.loads(line)
                waiter = self._pending.pop(int(reply["id"]))
            except (ValueError, KeyError, TypeError):
                logger.error("search worker: unmatched reply dropped")
                continue
            if not waiter.done():
                waiter.set_result(reply)

    async def _watch_memory(self, process: asyncio.subprocess.Process) -> None:
        watched = psutil.Process(process.pid)
        while True:
            await asyncio.sleep(self._memory_check)
            try:
                rss = int(watched.memory_info().rss)
            except psutil.Error:
                return  # it exited: the supervisor sees that
            if rss > self._max_rss:
                logger.error(
                    "search worker uses %.0f MB, above its %.0f MB bound: restarting it",
                    rss / 1e6,
                    self._max_rss / 1e6,
                )
                process.kill()
                return

    def _fail_pending(self, why: str) -> None:
        pending, self._pending = self._pending, {}
        for waiter in pending.values():
            if not waiter.done():
                waiter.set_exception(IndexUnavailable(why))

    async def close(self) -> None:
        process = self._process
        if process is not None:
            await _stop(process)

    # -- requests -------------------------------------------------------------------------

    async def _call(self, request: dict[str, Any], *, wait_for_worker: bool) -> dict[str, Any]:
        self._wanted.set()
        if wait_for_worker:
            await self._running.wait()
        process = self._process
        if process is None or process.stdin is None:
            raise IndexUnavailable("the search index is opening; try again in a few seconds")
        if len(self._pending) >= self._max_requests:
            raise IndexUnavailable(f"{len(self._pending)} searches in progress; try again shortly")
        ident = self._next_id
        self._next_id += 1
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[ident] = waiter
        try:
            process.stdin.write(json.dumps({"id": ident, **request}).encode() + b"\n")
            await process.stdin.drain()
            reply = await waiter
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise IndexUnavailable("the search worker stopped") from exc
        finally:
            self._pending.pop(ident, None)
        error = reply.get("error")
        if error is not None:
            message = str(error.get("message", "search failed"))
            if error.get("kind") == "empty_query":
                raise EmptyQuery(message)
            if error.get("kind") == "invalid":
                raise ValueError(message)
            raise IndexUnavailable(message)
        return reply

    async def search(self, query: str, limit: int) -> list[SearchHit]:
        try:
            async with asyncio.timeout(self._query_timeout):
                reply = await self._call(
                    {"op": "search", "query": query, "limit": limit}, wait_for_worker=False
                )
        except TimeoutError as exc:
            raise IndexUnavailable(f"search did not answer within {self._query_timeout}s") from exc
        return [SearchHit(**hit) for hit in reply["hits"]]

    async def forget(self, document: str) -> int:
        """Erase a document's chunks; starts the worker first (an earlier run may have stored some)."""
        reply = await self._call({"op": "forget", "document": document}, wait_for_worker=True)
        return int(reply["removed"])


async def _stop(process: asyncio.subprocess.Process) -> None:
    """End of input (the worker closes its index and exits), then SIGTERM, then SIGKILL."""
    if process.returncode is not None:
        return
    if process.stdin is not None and not process.stdin.is_closing():
        process.stdin.close()
    for escalate in (process.terminate, process.kill):
        try:
            await asyncio.wait_for(asyncio.shield(process.wait()), STOP_SECONDS)
            return
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                escalate()
    await process.wait()
