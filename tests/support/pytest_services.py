"""pytest plugin: real PostgreSQL and Redis servers for the test session.

Enable with ``pytest_plugins = ["tests.support.pytest_services"]`` in tests/conftest.py.

- ``postgres_server`` (session): one throwaway cluster for the whole run.
- ``postgres_dsn`` (function): a fresh, empty database on it for each test, dropped after.
- ``redis_server`` (session): one throwaway Redis for the whole run.
- ``kafka_server`` (session): one throwaway Kafka broker (KRaft, ~20 s to start) for the run;
  tests keep apart by topic.
- ``s3_server`` (function): a throwaway S3-compatible server (S3Proxy, ~2 s to start) per test.

A test that restarts or kills a session server must leave it running again. Tests that
need a server of their own use ``PostgresServer()`` / ``RedisServer()`` directly as
context managers. Missing binaries make these fixtures error (the test fails), never skip.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg  # type: ignore[import-untyped]
import pytest

from tests.support.services import KafkaServer, PostgresServer, RedisServer, S3ProxyServer


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        yield server


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="session")
def kafka_server() -> Iterator[KafkaServer]:
    with KafkaServer() as server:
        yield server


@pytest.fixture
def s3_server() -> Iterator[S3ProxyServer]:
    with S3ProxyServer() as server:
        yield server


@pytest.fixture
async def postgres_dsn(postgres_server: PostgresServer) -> AsyncIterator[str]:
    """A DSN to a database created for this test only."""
    if not postgres_server.running:  # an earlier test stopped it and failed before restarting
        await postgres_server.astart()
    name = f"test_{uuid.uuid4().hex[:16]}"
    admin = await asyncpg.connect(postgres_server.dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    yield postgres_server.dsn_for(name)
    if not postgres_server.running:
        await postgres_server.astart()
    admin = await asyncpg.connect(postgres_server.dsn)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
