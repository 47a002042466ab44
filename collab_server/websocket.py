"""The raw ASGI side of a WebSocket, shared by both protocols the hub speaks on one.

A y-websocket connection (`connection.py`) and a Hocuspocus socket (`hocuspocus_socket.py`)
differ in what their messages mean, not in how a socket is opened, read and closed: the
opening request is read once (`Handshake`: path, claimed actor, token, origin, client), every
received message must be one binary frame within `max_message_bytes` (`frame_bytes`), a
reader and a writer run until either ends, and the hub's close frame gets a bounded wait
(`SocketRun`). Their states move only along declared transitions (`checked_move`). Every close the hub initiates is counted and logged with its code and reason
(`announce_close`).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar
from urllib.parse import parse_qs, unquote

from starlette.types import Message, Receive, Scope, Send

from collab_server.client_address import TrustedProxies, client_of
from collab_server.closecodes import CloseCode, reason_for
from collab_server.document_access import MAX_ACTOR_CHARS
from collab_server.metrics import HubMetrics
from collab_server.ports import SocketPorts

S = TypeVar("S", bound=enum.Enum)

logger = logging.getLogger(__name__)

CLOSE_SEND_TIMEOUT_SECONDS = 1.0  # a stuck peer never drains its socket: the close frame's bound


class SocketState(enum.Enum):
    CONNECTING = "connecting"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


# The only moves a socket makes (either protocol); anything else raises IllegalTransition.
SOCKET_TRANSITIONS: dict[SocketState, frozenset[SocketState]] = {
    SocketState.CONNECTING: frozenset({SocketState.OPEN, SocketState.CLOSED}),
    SocketState.OPEN: frozenset({SocketState.CLOSING, SocketState.CLOSED}),
    SocketState.CLOSING: frozenset({SocketState.CLOSED}),
    SocketState.CLOSED: frozenset(),
}


class IllegalTransition(RuntimeError):
    """A socket or channel was moved to a state it cannot reach from its current one (a hub bug)."""


def checked_move(who: str, current: S, to: S, transitions: Mapping[S, frozenset[S]]) -> S:
    """``to``, if ``transitions`` allow it from ``current``; else IllegalTransition (loudly)."""
    if to not in transitions[current]:
        raise IllegalTransition(f"{who}: {current.value} -> {to.value}")
    return to


class CloseRequest(NamedTuple):
    code: CloseCode
    detail: str | None = None


def frame_bytes(message: Message, max_bytes: int, metrics: HubMetrics) -> bytes | CloseRequest:
    """A received WebSocket message's bytes, or why the socket must close: the one rule for
    every socket kind (a text frame: 1003; over `max_message_bytes`: 1009)."""
    data: bytes | None = message.get("bytes")
    if data is None:
        return CloseRequest(CloseCode.UNSUPPORTED_DATA)
    metrics.bytes_in.inc(len(data))
    if len(data) > max_bytes:
        return CloseRequest(CloseCode.MESSAGE_TOO_BIG, f"{len(data)} > {max_bytes} bytes")
    return data


def announce_close(
    metrics: HubMetrics, code: CloseCode, detail: str | None, what: str, *, node_id: str, client: str
) -> str:
    """Count and log a close the hub initiates (``what``: the socket or document closed);
    returns the reason sent with it."""
    metrics.closes.labels(code=str(int(code))).inc()
    reason = reason_for(code, detail)
    level = logging.INFO if code in (CloseCode.NORMAL, CloseCode.SERVICE_RESTART) else logging.WARNING
    logger.log(level, "closing %s (node %s, client %s): %d %s", what, node_id, client, code, reason)
    return reason


def socket_path(scope: Scope) -> str:
    """The socket's URL path, percent-decoded, without the app's root path and the query."""
    raw = scope.get("raw_path")
    path = unquote(raw.decode("latin-1")) if isinstance(raw, bytes) else str(scope.get("path", ""))
    path = path.split("?", 1)[0]
    root = str(scope.get("root_path", ""))
    if root and path.startswith(root):
        path = path[len(root) :]
    return path


def _bearer(header: str | None) -> str | None:
    if header and header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return None


@dataclass(frozen=True, slots=True)
class Handshake:
    """What a socket's opening request says (only what is used later: an idle socket's memory
    is multiplied by thousands)."""

    path: str
    actor: str | None  # ?actor=: who edits, unverified (with auth on, the token's subject wins)
    token: str | None  # ?token=, else the Authorization header's bearer token
    origin: str | None
    host: str | None
    client_ip: str
    quota_ip: str | None  # None: a trusted proxy that named no client (no per-address quota)
    client: str  # for logs

    @classmethod
    def of(cls, scope: Scope, proxies: TrustedProxies) -> Handshake:
        query = parse_qs(bytes(scope.get("query_string", b"")).decode("latin-1"))
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        address, client = client_of(proxies, scope.get("client"), headers)
        actors = query.get("actor")
        tokens = query.get("token")
        return cls(
            path=socket_path(scope),
            actor=actors[0][:MAX_ACTOR_CHARS] if actors else None,
            token=(tokens[0] if tokens else None) or _bearer(headers.get("authorization")),
            origin=headers.get("origin"),
            host=headers.get("host"),
            client_ip=address.ip,
            quota_ip=address.ip if address.attributable else None,
            client=client,
        )


class ClosedByHub(Exception):
    """The hub has sent its close frame (or could not in time): the socket stops reading."""


class SocketRun:
    """One socket's I/O: accept, send, close, and the reader/writer pair until either ends."""

    __slots__ = (
        "_client",
        "_metrics",
        "_node_id",
        "_tasks",
        "close_request",
        "name",
        "receive",
        "send",
        "writer_task",
    )

    def __init__(self, name: str, receive: Receive, send: Send, ports: SocketPorts, client: str) -> None:
        self.name = name
        self.receive = receive
        self.send = send
        self._metrics = ports.metrics
        self._node_id = ports.node_id
        self._client = client
        self.close_request: tuple[CloseCode, str] | None = None
        self.writer_task: asyncio.Task[None] | None = None
        self._tasks: asyncio.TaskGroup | None = None  # while ``run`` runs

    async def accept(self) -> bool:
        """Wait for the client's connect and accept it; False if it left first."""
        first = await self.receive()
        if first["type"] != "websocket.connect":
            return False
        await self.send({"type": "websocket.accept"})
        return True

    async def read(
        self,
        max_bytes: int,
        is_open: Callable[[], bool],
        close: Callable[[CloseCode, str | None], None],
        handle: Callable[[bytes], Awaitable[None] | None],
    ) -> None:
        """``handle`` each received frame's bytes until the client disconnects. A frame that
        breaks the rules (`frame_bytes`) asks ``close``; once the socket is no longer open,
        frames are drained unread until the disconnect arrives. (A loop, not an async
        generator: an idle socket's reader is this one frame, nothing else suspended.)"""
        receive = self.receive
        metrics = self._metrics
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            if not is_open():
                continue
            data = frame_bytes(message, max_bytes, metrics)
            if isinstance(data, CloseRequest):
                close(*data)
                continue
            handled = handle(data)
            if handled is not None:
                await handled

    async def send_bytes(self, frame: bytes) -> None:
        await self.send({"type": "websocket.send", "bytes": frame})

    async def send_close(self, code: CloseCode, reason: str) -> None:
        try:
            await self.send({"type": "websocket.close", "code": int(code), "reason": reason})
        except (OSError, RuntimeError) as exc:  # the peer is gone, or uvicorn already closed it
            logger.debug("%s close failed: %s", self.name, exc)

    def close_later(self, code: CloseCode, detail: str | None, what: str) -> None:
        """Ask for the close (sent once the reader and writer stop), counted and logged.

        The writer may be blocked on a full socket: it is stopped, the close must not wait
        behind it."""
        reason = announce_close(self._metrics, code, detail, what, node_id=self._node_id, client=self._client)
        self.close_request = (code, reason)
        if self._tasks is not None:
            self._tasks.create_task(self._close_after_writer(code, reason), name=f"close:{self.name}")
        elif self.writer_task is not None:
            self.writer_task.cancel()

    async def _close_after_writer(self, code: CloseCode, reason: str) -> None:
        """Stop the writer, send the close (a bounded wait: a stuck peer never drains its
        socket), then end the reading: ClosedByHub cancels the read loop."""
        writer = self.writer_task
        if writer is not None and not writer.done():
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CLOSE_SEND_TIMEOUT_SECONDS):
                await self.send_close(code, reason)
        raise ClosedByHub

    async def run(
        self,
        read_loop: Coroutine[Any, Any, None],
        write_loop: Coroutine[Any, Any, None] | None = None,
        *,
        started: Callable[[asyncio.TaskGroup], None] | None = None,
        ending: Callable[[], None] | None = None,
    ) -> None:
        """Read until either side ends; the writer runs beside (``write_loop``, or writers
        started as needed with ``start_writer``), the hub's close (if one is asked for) goes
        after it.

        The reader runs in the socket's own task, not a task of its own (an idle hub holds
        thousands of sockets): a close asked for while running is sent by a closer task,
        which then ends the reading (ClosedByHub); the client's disconnect ends it too.
        ``started`` gets the task group (for tasks the socket starts later); ``ending`` runs
        once the reading has ended, inside the group."""
        try:
            async with asyncio.TaskGroup() as tasks:
                self._tasks = tasks
                if write_loop is not None:
                    self.writer_task = tasks.create_task(write_loop, name=f"write:{self.name}")
                if started is not None:
                    started(tasks)
                try:
                    await read_loop
                finally:
                    self._tasks = None
                    if self.writer_task is not None:
                        self.writer_task.cancel()
                    if ending is not None:
                        ending()
        except* ClosedByHub:
            pass

    def start_writer(self, write_loop: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Start a writer task unless one runs, the socket is not running or it is closing.

        A writer that has nothing left to send ends: an idle socket holds no writer task
        (its coroutine frames and the task are ~1 KB, times every idle connection)."""
        writer = self.writer_task
        if (
            self._tasks is None
            or self.close_request is not None
            or (writer is not None and not writer.done())
        ):
            return
        task = self._tasks.create_task(write_loop(), name=f"write:{self.name}")
        self.writer_task = task
        task.add_done_callback(self._writer_done)

    def _writer_done(self, task: asyncio.Task[None]) -> None:
        if self.writer_task is task:
            self.writer_task = None
