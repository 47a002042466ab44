"""Hub, in process: shared loads, poisoned documents, revocations, the shutdown bound, the
connection state machine. Memory store, fake peers, no subprocess."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import pytest

from collab_server.app import socket_ports
from collab_server.auth import InvalidToken, mint
from collab_server.closecodes import CloseCode
from collab_server.connection import Connection, IllegalTransition, State
from collab_server.documents import DocumentUnavailable
from collab_server.hub import Hub
from collab_server.settings import Settings
from persistence.base import LogEntry
from persistence.memory import MemoryStore
from tests.fast.peers import FakePeer, typing
from tests.fast.stores import PoisonStore
from tests.support.waiting import eventually

pytestmark = pytest.mark.fast

SECRET = "fast-tier-secret-0123456789abcdef"


def settings(**overrides: object) -> Settings:
    base = Settings(store="memory", search="off", node_id="node-fast", maintenance_interval_seconds=0.05)
    return base.with_overrides(overrides).validate()


class StuckStore(MemoryStore):
    """Commits never finish (a database that hangs)."""

    async def append(self, entries: Sequence[LogEntry]) -> list[int]:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def test_concurrent_joiners_share_one_load() -> None:
    async with Hub(settings(), MemoryStore()) as hub:
        peers = [FakePeer(f"p{i}") for i in range(5)]
        rooms = await asyncio.gather(*(hub.documents.acquire("shared", peer) for peer in peers))
        assert len({id(room) for room in rooms}) == 1
        assert rooms[0].peers == set(peers)


async def test_a_poisoned_document_is_set_aside_and_the_others_keep_committing() -> None:
    store = PoisonStore("bad")
    async with Hub(settings(), store) as hub:
        good_writer, good_reader = FakePeer("gw"), FakePeer("gr")
        bad_writer = FakePeer("bw")
        good = await hub.documents.acquire("good", good_writer)
        await hub.documents.acquire("good", good_reader)
        bad = await hub.documents.acquire("bad", bad_writer)
        for update in typing("x", "y"):
            bad.apply_update(update, bad_writer, None)
            good.apply_update(update, good_writer, None)
        await eventually(
            lambda: bad_writer.closed is not None, timeout=5, what="bad document's client closed"
        )
        assert bad_writer.closed is not None and bad_writer.closed[0] is CloseCode.DOCUMENT_SET_ASIDE
        await eventually(lambda: good_reader.text() == "xy", timeout=5, what="good document relayed")
        assert len((await store.load("good")).tail) == 2
        assert "bad" not in hub.documents.rooms
        with pytest.raises(DocumentUnavailable, match="set aside"):
            await hub.documents.acquire("bad", FakePeer("late"))
        assert hub.metrics.registry.get_sample_value("nova_documents_set_aside_total") == 1
        assert hub.writer.healthy


async def test_shutdown_is_bounded_even_when_the_store_hangs() -> None:
    hub = Hub(settings(shutdown_timeout_seconds=0.3), StuckStore())
    await hub.__aenter__()
    writer = FakePeer("w")
    room = await hub.documents.acquire("doc", writer)
    for update in typing("never stored"):
        room.apply_update(update, writer, None)
    started = time.monotonic()
    await hub.__aexit__(None, None, None)
    assert time.monotonic() - started < 2.0


async def test_revocations_survive_a_restart_and_last_until_the_token_expiry() -> None:
    store = MemoryStore()
    token = mint(SECRET, "alice", [("*", "write")], token_id="t-1", ttl_seconds=600)
    async with Hub(settings(auth_secret=SECRET), store) as hub:
        principal = hub.auth.verify(token)
        await hub.sessions.revoke("t-1", by="root", expires_at=principal.expires_at)
        with pytest.raises(InvalidToken, match="revoked"):
            hub.auth.verify(token)
    [stored] = await store.revocations(time.time())
    assert stored.expires_at == principal.expires_at
    async with Hub(settings(auth_secret=SECRET), store) as restarted:
        with pytest.raises(InvalidToken, match="revoked"):
            restarted.auth.verify(token)


async def test_a_token_without_jti_is_refused_when_auth_is_on() -> None:
    import jwt

    no_id = jwt.encode({"sub": "bob", "exp": int(time.time()) + 60, "grants": []}, SECRET, algorithm="HS256")
    async with Hub(settings(auth_secret=SECRET), MemoryStore()) as hub:
        with pytest.raises(InvalidToken, match="jti"):
            hub.auth.verify(no_id)


async def test_an_idle_document_is_unloaded_and_its_counters_dropped() -> None:
    async with Hub(settings(idle_unload_seconds=0.05), MemoryStore()) as hub:
        peer = FakePeer("p")
        room = await hub.documents.acquire("idle", peer)
        for update in typing("a"):
            room.apply_update(update, peer, None)
        await hub.writer.flush()
        room.leave(peer)
        await eventually(lambda: "idle" not in hub.documents.rooms, timeout=5, what="unloaded")
        await eventually(lambda: hub.compactions.running == 0, timeout=5, what="compaction done")
        assert hub.compactions.pending("idle") == 0
        assert "idle" not in hub.writer.last_persisted


async def test_a_connection_refuses_an_illegal_state_transition() -> None:
    async def receive() -> dict[str, object]:
        raise AssertionError("not used")

    async def send(_message: object) -> None:
        raise AssertionError("not used")

    async with Hub(settings(), MemoryStore()) as hub:
        connection = Connection(
            socket_ports(hub), {"type": "websocket", "path": "/doc", "headers": []}, receive, send
        )
        assert connection.state is State.CONNECTING
        with pytest.raises(IllegalTransition):
            connection._move(State.CLOSING)
        connection._move(State.OPEN)
        connection._move(State.CLOSING)
        with pytest.raises(IllegalTransition):
            connection._move(State.OPEN)


async def test_the_last_persisted_gauge_follows_commits_and_comes_back_after_a_reload() -> None:
    async with Hub(
        settings(maintenance_interval_seconds=0.02, idle_unload_seconds=0.05), MemoryStore()
    ) as hub:

        def shown(document: str) -> float | None:
            return hub.metrics.registry.get_sample_value(
                "nova_last_persisted_timestamp_seconds", {"document": document}
            )

        for round_ in range(2):  # the second time, the document was unloaded and loaded again
            peer = FakePeer("p")
            room = await hub.documents.acquire("gauged", peer)
            for update in typing("ab" if round_ == 0 else "cd"):
                room.apply_update(update, peer, None)
            await hub.writer.flush()
            persisted = hub.writer.last_persisted["gauged"]
            await eventually(lambda p=persisted: shown("gauged") == p.at, timeout=5, what="gauge set")
            room.leave(peer)
            await eventually(lambda: "gauged" not in hub.documents.rooms, timeout=5, what="unloaded")
            await eventually(lambda: shown("gauged") is None, timeout=5, what="gauge removed")
