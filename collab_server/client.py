"""A y-websocket client in Python on pycrdt: a real protocol peer for tests, tools and agents.

async with YClient("ws://127.0.0.1:1234/notes") as client:
    client.text += "hello"            # local edits are sent as Yjs updates
    await client.wait_for(lambda c: "bye" in str(c.text))
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import ssl
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

import pycrdt
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

import crdt_core
from collab_server.ydoc import apply_update, missing_since
from crdt_core import AwarenessEntry, MessageKind

TEXT_FIELD = "content"
# Leaving the block sends what is still queued first, for at most this long.
FLUSH_TIMEOUT_SECONDS = 10.0


class YClient:
    def __init__(
        self,
        url: str,
        *,
        doc: pycrdt.Doc[Any] | None = None,
        presence: dict[str, Any] | None = None,
        max_size: int | None = 2**26,
        headers: dict[str, str] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.url = url
        self._ssl = ssl_context  # for wss:// URLs: the CAs to trust (default: the system's)
        self.doc: pycrdt.Doc[Any] = doc if doc is not None else pycrdt.Doc()
        self.client_id = random.randint(1, 2**31 - 1)
        self.presence: dict[int, dict[str, Any]] = {}
        self._presence_clock = 0
        self._local_presence = presence
        self._max_size = max_size
        self._headers = headers
        self._ws: ClientConnection | None = None
        self._outgoing: asyncio.Queue[bytes] = asyncio.Queue()
        self._changed = asyncio.Event()
        self._applying_remote = False
        self._tasks: asyncio.TaskGroup | None = None
        self._writer: asyncio.Task[None] | None = None
        self._closing = False
        self._subscription = self.doc.observe(self._on_transaction)
        self.synced = asyncio.Event()
        self.closed = asyncio.Event()
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self.received_updates = 0

    @property
    def text(self) -> pycrdt.Text:
        text: pycrdt.Text = self.doc.get(TEXT_FIELD, type=pycrdt.Text)
        return text

    @text.setter
    def text(self, value: pycrdt.Text) -> None:
        """Allows ``client.text += "x"`` (pycrdt mutates in place and returns the same Text)."""

    # -- lifetime ---------------------------------------------------------------------

    async def __aenter__(self) -> YClient:
        self._ws = await connect(
            self.url,
            max_size=self._max_size,
            additional_headers=self._headers,
            compression=None,
            **({"ssl": self._ssl} if self._ssl is not None else {}),  # type: ignore[arg-type]
        )
        self._tasks = asyncio.TaskGroup()
        await self._tasks.__aenter__()
        self._tasks.create_task(self._read_loop())
        self._writer = self._tasks.create_task(self._write_loop())
        self._send(crdt_core.frame_sync_step1(self.doc.get_state()))
        if self._local_presence is not None:
            self.set_presence(self._local_presence)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
        assert self._tasks is not None
        await self._tasks.__aexit__(exc_type, exc, tb)

    async def close(self, flush_timeout: float = FLUSH_TIMEOUT_SECONDS) -> None:
        """Send what is queued (local edits, presence), then close; waits at most ``flush_timeout``."""
        if self._closing:
            return
        self._closing = True
        self.doc.unobserve(self._subscription)
        if self._writer is not None and not self._writer.done():
            self._outgoing.put_nowait(b"")  # after every queued frame: the writer stops there
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._writer), flush_timeout)
        if self._ws is not None:
            await self._ws.close()

    async def abort(self) -> None:
        """Drop the TCP connection without a close frame (a crashed client)."""
        if self._ws is not None:
            self._ws.transport.abort()

    # -- protocol ---------------------------------------------------------------------

    def _send(self, frame: bytes) -> None:
        self._outgoing.put_nowait(frame)

    def send_raw(self, frame: bytes) -> None:
        """Send arbitrary bytes (tests of bad input)."""
        self._send(frame)

    async def _write_loop(self) -> None:
        assert self._ws is not None
        with contextlib.suppress(ConnectionClosed):
            while True:
                frame = await self._outgoing.get()
                if not frame:
                    return
                await self._ws.send(frame)

    async def _read_loop(self) -> None:
        assert self._ws is not None
        try:
            async for data in self._ws:
                if isinstance(data, str):
                    continue
                self._handle(crdt_core.parse_message(data))
        except ConnectionClosed:
            pass
        finally:
            if self._ws.close_code is not None:
                self.close_code = self._ws.close_code
                self.close_reason = self._ws.close_reason
            self.closed.set()
            self._changed.set()
            self._outgoing.put_nowait(b"")  # stops the writer: the connection is gone

    def _handle(self, message: crdt_core.Message) -> None:
        kind = message.kind
        if kind is MessageKind.SYNC_STEP1:
            self._send(crdt_core.frame_sync_step2(missing_since(self.doc, message.payload)))
        elif kind in (MessageKind.SYNC_STEP2, MessageKind.SYNC_UPDATE):
            self._applying_remote = True
            try:
                apply_update(self.doc, message.payload)
            finally:
                self._applying_remote = False
            self.received_updates += 1
            if kind is MessageKind.SYNC_STEP2:
                self.synced.set()
        elif kind is MessageKind.AWARENESS:
            for entry in crdt_core.decode_awareness(message.payload):
                if entry.state == "null":
                    self.presence.pop(entry.client_id, None)
                else:
                    self.presence[entry.client_id] = json.loads(entry.state)
        self._changed.set()

    def _on_transaction(self, event: pycrdt.TransactionEvent) -> None:
        if not self._applying_remote:
            self._send(crdt_core.frame_update(event.update))

    def set_presence(self, state: dict[str, Any] | None) -> None:
        self._presence_clock += 1
        encoded = "null" if state is None else json.dumps(state)
        update = crdt_core.encode_awareness([AwarenessEntry(self.client_id, self._presence_clock, encoded)])
        self._send(crdt_core.frame_awareness(update))

    async def wait_for(self, predicate: Callable[[YClient], bool], timeout: float = 10.0) -> None:
        """Wait until ``predicate(self)`` holds; raise TimeoutError at the deadline."""
        deadline = time.monotonic() + timeout
        while not predicate(self):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"condition not met within {timeout}s")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    async def wait_synced(self, timeout: float = 10.0) -> None:
        await asyncio.wait_for(self.synced.wait(), timeout)
