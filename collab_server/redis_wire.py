"""RedisWire: a lean Redis connection for the broker's steady traffic (RESP2 over asyncio).

A node's Redis work under load is a fixed number of round trips a second (one paced read and
one paced publish per window) whatever its own clients do, so their cost per round trip is a
cost every node pays in full. Through redis-py a pipelined XADD cost ~250 µs of CPU and an
XREAD ~450 µs here (command objects, retries, timeouts, observability hooks, a pure-Python
RESP3 parser); this connection writes the encoded commands and parses the replies in one
pass, about a tenth of that. It speaks only what the broker sends: commands as byte strings,
replies as bytes / int / list / None, ``-ERR`` as ``RedisReplyError``.

One connection carries one caller at a time per direction: replies come back in the order
commands went out (Redis guarantees it), matched to a FIFO of futures. A lost connection
fails every waiting call with ``ConnectionError``; the next call connects again.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Sequence
from typing import Any, cast
from urllib.parse import unquote, urlsplit

Reply = bytes | int | list[Any] | None


class RedisReplyError(Exception):
    """Redis answered a command with an error (``-ERR ...``)."""


def encode_command(args: Sequence[bytes | str | int]) -> bytes:
    """One command as a RESP array of bulk strings."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


class _Incomplete(Exception):
    """The buffer ends inside a reply: wait for more bytes."""


def parse_reply(buffer: bytes, start: int) -> tuple[Reply | RedisReplyError, int]:
    """One RESP2 reply from ``buffer[start:]``: (value, position after it).

    Raises ``_Incomplete`` when the buffer ends inside it.
    """
    end = buffer.find(b"\r\n", start)
    if end < 0:
        raise _Incomplete
    kind = buffer[start : start + 1]
    line = buffer[start + 1 : end]
    position = end + 2
    if kind == b"$":
        length = int(line)
        if length < 0:
            return None, position
        if len(buffer) < position + length + 2:
            raise _Incomplete
        return buffer[position : position + length], position + length + 2
    if kind == b"*":
        count = int(line)
        if count < 0:
            return None, position
        items: list[Any] = []
        for _ in range(count):
            item, position = parse_reply(buffer, position)
            items.append(item)
        return items, position
    if kind == b":":
        return int(line), position
    if kind == b"+":
        return line, position
    if kind == b"-":
        return RedisReplyError(line.decode(errors="replace")), position
    raise ConnectionError(f"unexpected Redis reply type {kind!r}")


class _ReplyProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.waiting: deque[asyncio.Future[Reply]] = deque()
        self.transport: asyncio.Transport | None = None
        self.lost: BaseException | None = None
        self._buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer + data if self._buffer else data
        position = 0
        try:
            while position < len(buffer) and self.waiting:
                reply, position = parse_reply(buffer, position)
                future = self.waiting.popleft()
                if future.done():
                    continue  # its caller gave up (timeout): the reply is still consumed in order
                if isinstance(reply, RedisReplyError):
                    future.set_exception(reply)
                else:
                    future.set_result(reply)
        except _Incomplete:
            pass
        except (ConnectionError, ValueError) as exc:  # garbage from the server: drop the link
            self._buffer = b""
            self._fail(ConnectionError(f"bad reply from Redis: {exc}"))
            if self.transport is not None:
                self.transport.close()
            return
        self._buffer = buffer[position:]

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(exc or ConnectionError("Redis closed the connection"))

    def _fail(self, exc: BaseException) -> None:
        self.lost = exc
        while self.waiting:
            future = self.waiting.popleft()
            if not future.done():
                future.set_exception(ConnectionError(str(exc) or type(exc).__name__))


class RedisWire:
    """One Redis connection (``redis://`` or ``rediss://[user:password@]host:port[/db]``).

    ``connect_options``: the TLS settings of ``collab_server.tls.redis_tls_options``.
    """

    def __init__(
        self,
        url: str,
        *,
        connect_timeout: float = 2.0,
        reply_timeout: float | None = 5.0,
        connect_options: dict[str, Any] | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss"):
            raise ValueError(f"unsupported Redis URL scheme {parts.scheme!r} (redis:// or rediss://)")
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 6379
        self._username = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password else None
        db = parts.path.lstrip("/")
        self._db = int(db) if db else 0
        self._ssl = _ssl_context(parts.scheme == "rediss", connect_options or {})
        self._connect_timeout = connect_timeout
        self._reply_timeout = reply_timeout
        self._protocol: _ReplyProtocol | None = None
        self._connecting = asyncio.Lock()

    async def _connected(self) -> _ReplyProtocol:
        protocol = self._protocol
        if protocol is not None and protocol.lost is None:
            return protocol
        async with self._connecting:
            if self._protocol is not None and self._protocol.lost is None:
                return self._protocol
            loop = asyncio.get_running_loop()
            async with asyncio.timeout(self._connect_timeout):
                _, protocol = await loop.create_connection(
                    _ReplyProtocol,
                    self._host,
                    self._port,
                    ssl=self._ssl,
                    server_hostname=self._host if self._ssl is not None else None,
                )
                setup: list[Sequence[bytes | str | int]] = []
                if self._password is not None:
                    credentials = (
                        [self._password] if self._username is None else [self._username, self._password]
                    )
                    setup.append(["AUTH", *credentials])
                if self._db:
                    setup.append(["SELECT", self._db])
                if setup:
                    await self._send(protocol, setup)
            self._protocol = protocol
            return protocol

    async def _send(
        self, protocol: _ReplyProtocol, commands: Sequence[Sequence[bytes | str | int]]
    ) -> list[Reply]:
        assert protocol.transport is not None
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in commands]
        protocol.waiting.extend(futures)
        protocol.transport.write(b"".join(encode_command(command) for command in commands))
        replies: list[Reply] = []
        for future in futures:
            replies.append(await future)
        return replies

    async def pipeline(
        self, commands: Sequence[Sequence[bytes | str | int]], *, timeout: float | None = None
    ) -> list[Reply]:
        """Send ``commands`` in one write; their replies, in order. The first error reply raises
        (after every reply of the batch has arrived, so the connection stays in step)."""
        protocol = await self._connected()
        try:
            async with asyncio.timeout(timeout if timeout is not None else self._reply_timeout):
                return await self._send(protocol, commands)
        except TimeoutError:
            # Replies may still come: the connection is out of step with its callers. Drop it.
            self._drop(protocol)
            raise ConnectionError("Redis did not answer in time") from None

    async def command(self, *args: bytes | str | int, timeout: float | None = None) -> Reply:
        return (await self.pipeline([args], timeout=timeout))[0]

    def _drop(self, protocol: _ReplyProtocol) -> None:
        if protocol.transport is not None:
            protocol.transport.close()
        protocol.connection_lost(ConnectionError("connection dropped"))
        if self._protocol is protocol:
            self._protocol = None

    async def aclose(self) -> None:
        protocol, self._protocol = self._protocol, None
        if protocol is not None and protocol.transport is not None:
            protocol.transport.close()


def _ssl_context(tls: bool, options: dict[str, Any]) -> ssl.SSLContext | None:
    """The client context for ``rediss://``: verified against ``ssl_ca_certs`` (else the
    system CAs), host name checked unless ``ssl_check_hostname`` is False."""
    if not tls:
        return None
    context = ssl.create_default_context(cafile=options.get("ssl_ca_certs"))
    context.check_hostname = bool(options.get("ssl_check_hostname", True))
    if options.get("ssl_cert_reqs", "required") == "none":
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
