"""RedisWire, the broker's lean Redis connection: replies parsed in order whatever way the bytes
are split, error replies raised without losing step, blocking reads, and reconnection after
Redis restarts (against a real Redis)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from collab_server.redis_wire import RedisReplyError, RedisWire, _ReplyProtocol, encode_command
from tests.support.services import RedisServer

REPLIES = (
    b"+OK\r\n"
    b":42\r\n"
    b"$5\r\nhello\r\n"
    b"$-1\r\n"
    b"*-1\r\n"
    b"-ERR wrong type\r\n"
    b"*2\r\n*2\r\n$3\r\nkey\r\n*1\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$1\r\nd\r\n$2\r\n\r\n\r\n:7\r\n"
)


class _NullTransport(asyncio.Transport):
    closed = False

    def write(self, data: Any) -> None:
        return None

    def close(self) -> None:
        self.closed = True


@pytest.mark.fast
@pytest.mark.parametrize("chunk", [1, 3, 7, len(REPLIES)])
async def test_replies_are_matched_in_order_however_the_bytes_are_split(chunk: int) -> None:
    protocol = _ReplyProtocol()
    protocol.connection_made(_NullTransport())
    loop = asyncio.get_running_loop()
    futures = [loop.create_future() for _ in range(7)]
    protocol.waiting.extend(futures)
    for start in range(0, len(REPLIES), chunk):
        protocol.data_received(REPLIES[start : start + chunk])
    assert [f.result() for f in futures[:5]] == [b"OK", 42, b"hello", None, None]
    with pytest.raises(RedisReplyError, match="wrong type"):
        futures[5].result()
    # A stream entry whose value is itself "\r\n": lengths, not delimiters, decide.
    assert futures[6].result() == [[b"key", [[b"1-0", [b"d", b"\r\n"]]]], 7]
    assert not protocol.waiting


@pytest.mark.fast
async def test_a_reply_the_protocol_does_not_know_drops_the_connection() -> None:
    protocol = _ReplyProtocol()
    protocol.connection_made(_NullTransport())
    waiting = asyncio.get_running_loop().create_future()
    protocol.waiting.append(waiting)
    protocol.data_received(b"%1\r\n")  # a RESP3 map: never asked for
    with pytest.raises(ConnectionError, match="bad reply"):
        waiting.result()
    assert protocol.lost is not None
    assert isinstance(protocol.transport, _NullTransport) and protocol.transport.closed


@pytest.mark.fast
def test_commands_are_resp_arrays_of_bulk_strings() -> None:
    assert encode_command(["XADD", b"k\r\n", 5]) == b"*3\r\n$4\r\nXADD\r\n$3\r\nk\r\n\r\n$1\r\n5\r\n"


def test_unsupported_url_scheme_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported Redis URL scheme"):
        RedisWire("unix:///tmp/redis.sock")


async def test_pipeline_stream_read_error_and_blocking_timeout(redis_server: RedisServer) -> None:
    wire = RedisWire(redis_server.url)
    try:
        added = await wire.pipeline(
            [
                ("DEL", "wire:s"),
                ("XADD", "wire:s", "*", "d", b"\x00\xffbytes"),
                ("XADD", "wire:s", "*", "d", b"2"),
            ]
        )
        assert isinstance(added[1], bytes) and added[1] != added[2]
        reply = await wire.command("XREAD", "COUNT", 10, "STREAMS", "wire:s", "0-0")
        assert reply == [[b"wire:s", [[added[1], [b"d", b"\x00\xffbytes"]], [added[2], [b"d", b"2"]]]]]
        # An error reply in a batch raises, and the connection stays in step for the next call.
        with pytest.raises(RedisReplyError):
            await wire.pipeline([("INCR", "wire:s"), ("PING",)])
        assert await wire.command("PING") == b"PONG"
        # A blocking read with nothing new answers with a null after its block time.
        assert await wire.command("XREAD", "BLOCK", 50, "STREAMS", "wire:s", "$", timeout=5) is None
    finally:
        await wire.aclose()


async def test_a_restarted_redis_fails_the_call_then_the_next_call_reconnects(tmp_path: Any) -> None:
    with RedisServer() as redis:
        wire = RedisWire(redis.url, reply_timeout=2.0)
        try:
            assert await wire.command("SET", "wire:k", "before") == b"OK"
            await asyncio.to_thread(redis.stop)
            with pytest.raises(OSError):
                await wire.command("GET", "wire:k")
            await asyncio.to_thread(redis.start)
            # Redis runs without persistence: the key is gone, the connection is new.
            assert await wire.command("GET", "wire:k") is None
            assert await wire.command("PING") == b"PONG"
        finally:
            await wire.aclose()
