"""The test-service harness itself: throwaway PostgreSQL and Redis start, restart, crash, clean up."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest
import redis.asyncio as aioredis

from tests.support import services
from tests.support.services import PostgresServer, RedisServer, ServiceBinaryMissing


def refuses_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
    except OSError:
        return True
    return False


def process_uid(pid: int) -> int:
    return Path(f"/proc/{pid}").stat().st_uid


async def test_postgres_session_server_is_reachable_and_durable(postgres_server: PostgresServer) -> None:
    connection = await asyncpg.connect(postgres_server.dsn)
    try:
        settings = {
            name: await connection.fetchval(f"SHOW {name}")
            for name in ("fsync", "synchronous_commit", "listen_addresses")
        }
    finally:
        await connection.close()
    assert settings == {"fsync": "on", "synchronous_commit": "on", "listen_addresses": "127.0.0.1"}


async def test_postgres_dsn_is_a_fresh_database(postgres_dsn: str, postgres_server: PostgresServer) -> None:
    connection = await asyncpg.connect(postgres_dsn)
    try:
        assert await connection.fetchval("SELECT current_database()") != "postgres"
        assert await connection.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == 0
    finally:
        await connection.close()


async def test_postgres_restart_and_crash_keep_committed_data() -> None:
    with PostgresServer() as server:
        directory, port = server.directory, server.port
        if os.geteuid() == 0:  # PostgreSQL refuses root: the harness runs it as another user
            assert process_uid(server.pid) != 0
        connection = await asyncpg.connect(server.dsn)
        await connection.execute("CREATE TABLE t (v int)")
        await connection.execute("INSERT INTO t VALUES (1)")
        await connection.close()

        await server.astop()
        assert not server.running and refuses_connections(port)
        await server.astart()
        assert server.port == port

        connection = await asyncpg.connect(server.dsn)
        await connection.execute("INSERT INTO t VALUES (2)")  # committed (and fsynced) before the crash
        await connection.close()
        await server.akill()
        assert refuses_connections(port)
        await server.arestart()  # crash recovery

        connection = await asyncpg.connect(server.dsn)
        try:
            assert [r[0] for r in await connection.fetch("SELECT v FROM t ORDER BY v")] == [1, 2]
        finally:
            await connection.close()
    assert not directory.exists()


async def test_redis_server_restart_keeps_port_and_loses_data(redis_server: RedisServer) -> None:
    port = redis_server.port
    client = aioredis.from_url(redis_server.url)
    try:
        await client.set("k", "v")
        assert await client.get("k") == b"v"
    finally:
        await client.aclose()
    await redis_server.arestart()
    assert redis_server.port == port
    client = aioredis.from_url(redis_server.url)
    try:
        assert await client.get("k") is None  # no persistence: a restart starts empty
    finally:
        await client.aclose()


def test_redis_kill_and_cleanup() -> None:
    server = RedisServer()
    with server:
        port, directory = server.port, server.directory
        server.kill()
        assert refuses_connections(port)
        server.start()
        assert not refuses_connections(port)
    assert not server.running and not directory.exists()


@pytest.mark.fast
def test_missing_binaries_fail_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(services, "POSTGRES_BIN_GLOB", "/nonexistent/postgresql/*/bin")
    with pytest.raises(ServiceBinaryMissing, match=r"install_services\.sh"):
        PostgresServer()
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(shutil, "which", lambda *args, **kwargs: None)
    with pytest.raises(ServiceBinaryMissing, match=r"install_services\.sh"):
        RedisServer()
