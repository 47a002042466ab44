"""Quotas count real identities: client addresses behind trusted proxies, subjects only with auth."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from collab_server.auth import ANONYMOUS, Principal
from collab_server.client_address import ClientAddress, TrustedProxies
from collab_server.closecodes import CloseCode
from collab_server.hub import Hub
from collab_server.sessions import QuotaExceeded
from collab_server.settings import Settings
from persistence.memory import MemoryStore
from tests.support.hub import HubProcess


def test_a_socket_from_an_untrusted_address_is_that_address_whatever_it_claims() -> None:
    trusted = TrustedProxies("127.0.0.1,::1")
    assert trusted.resolve("203.0.113.9", ["198.51.100.1"]) == ClientAddress("203.0.113.9", True)


def test_a_trusted_proxy_names_the_client_right_to_left() -> None:
    trusted = TrustedProxies("127.0.0.1, 10.0.0.0/8")
    # A client may prepend anything; the first untrusted hop from the right is who connected.
    forwarded = ["6.6.6.6, 198.51.100.7:5123", "10.1.2.3"]
    assert trusted.resolve("127.0.0.1", forwarded) == ClientAddress("198.51.100.7", True)
    assert trusted.resolve("::1", ["198.51.100.8"]) == ClientAddress("::1", True)  # ::1 is not trusted here
    assert trusted.resolve("10.9.9.9", ["[2001:db8::1]:443"]) == ClientAddress("2001:db8::1", True)


def test_a_trusted_address_that_names_no_client_is_not_attributable() -> None:
    trusted = TrustedProxies("127.0.0.1,::1")
    assert trusted.resolve("127.0.0.1", []) == ClientAddress("127.0.0.1", False)
    assert TrustedProxies("*").resolve("192.0.2.4", ["198.51.100.3"]) == ClientAddress("198.51.100.3", True)
    with pytest.raises(ValueError, match="not an address"):
        TrustedProxies("localhost")
    with pytest.raises(ValueError, match="trusted_proxies"):
        Settings(trusted_proxies="10.0.0.0/33").validate()


@dataclass(eq=False)
class FakeSession:
    principal: Principal
    client_ip: str
    quota_ip: str | None
    document: str = "doc"

    def request_close(self, code: CloseCode, detail: str | None = None) -> None:
        raise AssertionError("not closed in these tests")


def test_without_auth_every_socket_is_anonymous_and_no_subject_quota_applies() -> None:
    hub = Hub(Settings(max_connections_per_subject=2, max_connections_per_ip=3), MemoryStore())
    local = [FakeSession(ANONYMOUS, "127.0.0.1", None) for _ in range(50)]
    for session in local:
        hub.sessions.admit(session)  # local sockets and the anonymous subject are not quota identities
    remote = [FakeSession(ANONYMOUS, "198.51.100.1", "198.51.100.1") for _ in range(4)]
    for session in remote[:3]:
        hub.sessions.admit(session)
    with pytest.raises(QuotaExceeded, match="one address"):
        hub.sessions.admit(remote[3])
    hub.sessions.release(remote[0])
    hub.sessions.admit(remote[3])
    for session in local + remote[1:]:
        hub.sessions.release(session)
    assert not hub.sessions.sessions


def test_with_auth_the_subject_quota_counts_each_subject() -> None:
    hub = Hub(Settings(auth_secret="s" * 32, max_connections_per_subject=2), MemoryStore())
    alice = Principal("alice", "human", ())
    bob = Principal("bob", "human", ())
    hub.sessions.admit(FakeSession(alice, "127.0.0.1", None))
    hub.sessions.admit(FakeSession(alice, "127.0.0.1", None))
    with pytest.raises(QuotaExceeded, match="alice"):
        hub.sessions.admit(FakeSession(alice, "127.0.0.1", None))
    hub.sessions.admit(FakeSession(bob, "127.0.0.1", None))


async def test_a_live_hub_limits_forwarded_clients_not_its_local_proxy(tmp_path: Path) -> None:
    """Auth off, tiny quotas: local sockets are all accepted; a client named by the proxy is counted."""
    hub = HubProcess(
        tmp_path, store="memory", max_connections_per_subject=2, max_connections_per_ip=2
    ).start()
    try:
        async with contextlib.AsyncExitStack() as stack:
            for _ in range(5):  # more than either quota: none applies to unattributed local sockets
                local = await stack.enter_async_context(connect(hub.url("quota"), compression=None))
                await local.recv()  # the hub's sync step 1: admitted
            forwarded = {"X-Forwarded-For": "198.51.100.23"}
            for _ in range(2):
                client = await stack.enter_async_context(
                    connect(hub.url("quota"), compression=None, additional_headers=forwarded)
                )
                await client.recv()
            third = await stack.enter_async_context(
                connect(hub.url("quota"), compression=None, additional_headers=forwarded)
            )
            with pytest.raises(ConnectionClosed):
                async with asyncio.timeout(10):
                    while True:
                        await third.recv()
            assert third.close_code == 4429 and "one address" in (third.close_reason or "")
    finally:
        hub.stop()
