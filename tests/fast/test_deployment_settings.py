"""Limits a deployer tunes reach the part that enforces them: store connections, the HTTP body
bound, shared-session lobbies, the Kafka send bound. In process, no services."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from starlette.requests import Request

from collab_server.api.bodies import read_json_object
from collab_server.api.errors import ApiError
from collab_server.app import lobby_limits, store_options
from collab_server.auth import Grant, Principal, Role
from collab_server.events.wiring import kafka_options
from collab_server.session_lobby import LobbyError, SessionLobby
from collab_server.settings import Settings, settings_from_env
from persistence.factory import store_from_url
from persistence.postgres import PostgresStore
from persistence.sqlite import SqliteStore

pytestmark = pytest.mark.fast

SECRET = "deployment-settings-secret-0123456789"


def test_store_connection_settings_reach_the_adapter_the_url_names() -> None:
    settings = settings_from_env(
        {
            "NOVA_STORE_MAX_CONNECTIONS": "3",
            "NOVA_STORE_CONNECT_TIMEOUT_SECONDS": "1.5",
            "NOVA_STORE_COMMAND_TIMEOUT_SECONDS": "7",
            "NOVA_STORE_ACQUIRE_TIMEOUT_SECONDS": "2",
            "NOVA_STORE_BUSY_TIMEOUT_SECONDS": "4",
        }
    ).validate()
    postgres = store_from_url("postgresql://nova@127.0.0.1/nova", options=store_options(settings))
    assert isinstance(postgres, PostgresStore)
    assert (
        postgres._max_connections,
        postgres._connect_timeout,
        postgres._command_timeout,
        postgres._acquire_timeout,
    ) == (3, 1.5, 7.0, 2.0)
    sqlite = store_from_url("sqlite:///nova.db", options=store_options(settings))
    assert isinstance(sqlite, SqliteStore) and sqlite._busy_timeout == 4.0
    with pytest.raises(ValueError, match="store_max_connections"):
        Settings(store_max_connections=0).validate()


def test_the_hub_defaults_are_the_adapters_own() -> None:
    options = store_options(Settings())
    built = store_from_url("postgresql://nova@127.0.0.1/nova", options=options)
    plain = store_from_url("postgresql://nova@127.0.0.1/nova")
    assert isinstance(built, PostgresStore) and isinstance(plain, PostgresStore)
    names = ("_max_connections", "_connect_timeout", "_command_timeout", "_acquire_timeout")
    assert [getattr(built, n) for n in names] == [getattr(plain, n) for n in names]
    sqlite_built = store_from_url("sqlite:///nova.db", options=options)
    sqlite_plain = store_from_url("sqlite:///nova.db")
    assert isinstance(sqlite_built, SqliteStore) and isinstance(sqlite_plain, SqliteStore)
    assert sqlite_built._busy_timeout == sqlite_plain._busy_timeout


def request_with_body(body: bytes, settings: Settings) -> Request:
    chunks = [body[i : i + 1000] for i in range(0, len(body), 1000)] or [b""]

    async def receive() -> dict[str, Any]:
        chunk = chunks.pop(0) if chunks else b""
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/api/x",
        "headers": [],  # no content-length: the bound must hold while streaming
        "state": {"app": SimpleNamespace(settings=settings)},
    }
    return Request(scope, receive)


async def test_the_http_body_bound_is_the_setting() -> None:
    body = b'{"text": "' + b"x" * 5000 + b'"}'
    assert (await read_json_object(request_with_body(body, Settings())))["text"] == "x" * 5000
    with pytest.raises(ApiError) as refused:
        await read_json_object(request_with_body(body, Settings(max_http_body_bytes=4096)))
    assert (refused.value.status, refused.value.code) == (413, "body_too_large")


class NoRevocations:
    async def revoke(
        self, token_id: str, *, by: str | None, expires_at: float | None = None, why: str = "revoked"
    ) -> int:
        return 0


def host() -> Principal:
    return Principal("host", "human", (Grant("*", Role.ADMIN),))


def test_lobby_limits_are_the_settings() -> None:
    settings = Settings(
        max_sessions=1, max_session_join_requests=1, max_session_guests=1, session_guest_token_seconds=60
    )
    lobby = SessionLobby(SECRET, True, NoRevocations(), lobby_limits(settings))
    lobby.open(host(), "one")
    with pytest.raises(LobbyError) as full:
        lobby.open(host(), "two")
    assert (full.value.status, full.value.code) == (503, "too_many_sessions")
    first = lobby.ask("one", "ann")
    assert first is not None
    with pytest.raises(LobbyError) as waiting:
        lobby.ask("one", "bob")
    assert (waiting.value.status, waiting.value.code) == (429, "too_many_requests")
    guest = lobby.approve(host(), "one", first.id, "read")
    assert 0 < guest.expires_at - first.at <= 61  # the guest token's lifetime is the setting
    second = lobby.ask("one", "bob")
    assert second is not None
    with pytest.raises(LobbyError) as crowded:
        lobby.approve(host(), "one", second.id, "read")
    assert (crowded.value.status, crowded.value.code) == (409, "too_many_participants")


def test_an_unanswered_join_request_is_dropped_after_the_setting() -> None:
    lobby = SessionLobby(SECRET, True, NoRevocations(), lobby_limits(Settings(session_request_seconds=30)))
    lobby.open(host(), "s")
    request = lobby.ask("s", "ann")
    assert request is not None
    assert [r.id for r in lobby.pending(host(), "s")] == [request.id]
    request.at -= 31  # asked 31 s ago
    assert lobby.pending(host(), "s") == []


def test_the_kafka_send_bound_is_the_setting() -> None:
    assert kafka_options(Settings(events_kafka_send_timeout_seconds=2.5)).send_timeout_seconds == 2.5
    with pytest.raises(ValueError, match="events_kafka_send_timeout_seconds"):
        Settings(events_kafka_send_timeout_seconds=0).validate()
