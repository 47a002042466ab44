"""Slow and dead peers, limits, idle unload and graceful shutdown, against the real hub process."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import statistics
import time
from pathlib import Path

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

import crdt_core
from collab_server.client import YClient
from tests.support.hub import HubProcess
from tests.support.waiting import eventually


def tiny_receive_window(port: int) -> socket.socket:
    """A connected socket whose kernel receive buffer is as small as the kernel allows.

    Set before connecting, so the TCP window it advertises stays small: a peer that stops
    reading is then stuck after a few kilobytes, whatever the machine's default buffer sizes.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    return sock


async def test_slow_consumer_is_dropped_and_never_delays_others(tmp_path: Path) -> None:
    hub = HubProcess(
        tmp_path,
        store="memory",
        outbox_max_messages=64,
        outbox_max_bytes=256 * 1024,
        # Limits are checked together: a message may not be larger than the outbox holds.
        max_message_bytes=128 * 1024,
        # The stuck peer must be dropped by its outbox, not first by a missed ping.
        ping_interval_seconds=60.0,
    ).start()
    try:
        async with YClient(hub.url("slow")) as writer, YClient(hub.url("slow")) as fast:
            await writer.wait_synced()
            await fast.wait_synced()
            slow = await connect(
                hub.url("slow"), sock=tiny_receive_window(hub.port), compression=None, max_queue=1
            )
            slow.transport.pause_reading()  # never reads again: its TCP window fills up
            payload = "x" * 20000
            latencies = []
            # The stuck peer's tiny receive window (and so the hub's small send buffer) holds a few
            # updates; its outbox (256 KiB) fills within dozens more: the drop comes well before 400.
            for i in range(400):
                writer.text += payload
                sent = time.perf_counter()
                await fast.wait_for(lambda c, n=i + 1: c.received_updates > n, timeout=10)
                latencies.append(time.perf_counter() - sent)
                if "client too slow" in hub.log():
                    break
            assert "4408 client too slow: reconnect to re-sync" in hub.log(), (
                "the stuck peer was never dropped"
            )
            assert len(str(fast.text)) == len(latencies) * len(payload)
            # The fast client never waited on the stuck one: a hub that did would stall it on every
            # update once the stuck socket is full (most of the run), not on a stray loaded moment.
            assert statistics.median(latencies) < 0.5, sorted(latencies)[-5:]
            slow.transport.resume_reading()
            with contextlib.suppress(ConnectionClosed):
                async with asyncio.timeout(15):
                    async for _ in slow:
                        pass
            # The close frame reaches a peer whose socket still takes bytes; a fully stuck one
            # sees the TCP connection end instead (its kernel buffer never drained).
            assert slow.close_code in (4408, 1006), (slow.close_code, slow.close_reason)
            assert "4408 client too slow: reconnect to re-sync" in hub.log()
    finally:
        hub.stop()


async def test_silent_peer_is_detected_by_ping_and_its_presence_removed(tmp_path: Path) -> None:
    """A peer whose network vanishes (no close, no pong) leaves within ping interval + timeout."""
    # Fast pings, but a timeout that lets the live watcher answer on a loaded machine.
    hub = HubProcess(tmp_path, store="memory", ping_interval_seconds=1.0, ping_timeout_seconds=2.0).start()
    try:
        await _silent_peer_leaves(hub)
    finally:
        hub.stop()


async def _silent_peer_leaves(hub: HubProcess) -> None:
    async with YClient(hub.url("ping")) as watcher:
        await watcher.wait_synced()
        silent = YClient(hub.url("ping"), presence={"user": {"name": "ghost"}})
        await silent.__aenter__()
        await watcher.wait_for(lambda c: silent.client_id in c.presence)
        assert silent._ws is not None
        silent._ws.transport.pause_reading()  # stops answering pings; the socket stays open
        gone_by = time.monotonic()
        await watcher.wait_for(lambda c: silent.client_id not in c.presence, timeout=10)
        # ping interval 1 s + timeout 2 s: detection within seconds (TCP alone would take minutes).
        assert time.monotonic() - gone_by < 8
        silent._ws.transport.abort()


async def test_connection_limit_per_document(tmp_path: Path) -> None:
    hub = HubProcess(tmp_path, store="memory", max_connections_per_document=2).start()
    try:
        async with YClient(hub.url("full")) as a, YClient(hub.url("full")) as b:
            await a.wait_synced()
            await b.wait_synced()
            async with YClient(hub.url("full")) as third:
                await asyncio.wait_for(third.closed.wait(), 5)
                assert third.close_code == 4409
            async with YClient(hub.url("other")) as elsewhere:
                await elsewhere.wait_synced()
    finally:
        hub.stop()


async def test_idle_document_is_unloaded_and_reloads_from_store(tmp_path: Path) -> None:
    hub = HubProcess(tmp_path, store="memory", idle_unload_seconds=0.5).start()
    try:
        async with YClient(hub.url("idle")) as client:
            await client.wait_synced()
            client.text += "kept"
            await eventually(lambda: hub.text("idle") == "kept")
        deadline = time.monotonic() + 10
        while httpx.get(f"{hub.http}/api/documents/idle/status").json()["loaded"]:
            assert time.monotonic() < deadline, "idle document never unloaded"
            await asyncio.sleep(0.1)
        assert "unloaded idle document 'idle'" in hub.log()
        async with YClient(hub.url("idle")) as again:
            await again.wait_synced()
            assert str(again.text) == "kept"
    finally:
        hub.stop()


async def test_sigterm_closes_sockets_with_restart_code_and_flushes(tmp_path: Path) -> None:
    hub = HubProcess(tmp_path).start()
    async with YClient(hub.url("bye")) as client:
        await client.wait_synced()
        for i in range(50):
            client.text += f"{i},"
        expected = "".join(f"{i}," for i in range(50))
        await eventually(lambda: hub.text("bye") == expected)
        started = time.monotonic()
        exit_code = await asyncio.to_thread(hub.terminate)
        # uvicorn re-raises the captured SIGTERM after its graceful shutdown.
        assert exit_code in (0, -15)
        assert time.monotonic() - started < 15
        await asyncio.wait_for(client.closed.wait(), 5)
        assert client.close_code in (1001, 1012)
    assert "shutdown: complete" in hub.log()
    restarted = HubProcess(tmp_path, store=hub.store, port=hub.port).start()
    try:
        assert restarted.text("bye") == expected
    finally:
        restarted.stop()


async def test_health_and_readiness(hub: HubProcess) -> None:
    assert httpx.get(f"{hub.http}/healthz").json()["status"] == "ok"
    ready = httpx.get(f"{hub.http}/readyz")
    assert ready.status_code == 200 and ready.json()["ready"] is True
    async with YClient(hub.url("measured")) as client:
        await client.wait_synced()
        client.text += "x"
        await eventually(
            lambda: "nova_updates_in_total 1.0" in httpx.get(f"{hub.http}/metrics").text,
            what="the update counted in /metrics",
        )
    metrics = httpx.get(f"{hub.http}/metrics").text
    # Per-document series are for an authorised scraper only (tests/test_http_access.py).
    assert "nova_connections" in metrics and 'document="measured"' not in metrics


async def test_query_awareness_returns_current_states(hub: HubProcess) -> None:
    async with YClient(hub.url("q"), presence={"user": {"name": "Ada"}}) as ada:
        await ada.wait_synced()
        await ada.wait_for(lambda c: ada.client_id in c.presence)
        async with connect(hub.url("q"), compression=None) as raw:
            await raw.send(crdt_core.frame_query_awareness())
            names = set()
            async with asyncio.timeout(5):
                while "Ada" not in names:
                    message = crdt_core.parse_message(await raw.recv())
                    if message.kind is crdt_core.MessageKind.AWARENESS:
                        names |= {e.state for e in crdt_core.decode_awareness(message.payload)}
                        names = {n for n in names if "Ada" in n} and {"Ada"}
