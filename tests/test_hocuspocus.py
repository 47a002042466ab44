"""Real Hocuspocus providers (@hocuspocus/provider 3.4.4 on Node 20, 4.8.0 on Node 24) against the hub.

The hub speaks Hocuspocus on ``ws://HOST:PORT/`` (no document in the path): every message
carries its document name, so one socket holds many documents.
"""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from collab_server import hocuspocus_protocol as hp
from collab_server.auth import mint
from tests.support.hocuspocus import HocuspocusClients
from tests.support.hub import HubProcess
from tests.support.waiting import eventually_async

SECRET = "hocuspocus-test-secret-of-enough-length"


@pytest.fixture(params=[3, 4], ids=["provider3", "provider4"])
async def clients(request: pytest.FixtureRequest) -> AsyncIterator[HocuspocusClients]:
    async with HocuspocusClients(request.param) as driver:
        yield driver


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    """One hub for the module (each test uses its own documents): hub start-ups are most of its time."""
    process = HubProcess(
        tmp_path_factory.mktemp("hocuspocus-hub"), ping_interval_seconds=1.0, ping_timeout_seconds=1.0
    )
    process.start()
    yield process
    process.stop()


def doc(clients: HocuspocusClients, name: str) -> str:
    """A document name of its own for each provider version (they share the module's hub)."""
    return f"provider{clients.version}/{name}"


@pytest.fixture(scope="module")
def auth_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    process = HubProcess(
        tmp_path_factory.mktemp("hocuspocus-auth-hub"),
        auth_secret=SECRET,
        max_documents_per_socket=3,
        ping_interval_seconds=1.0,
        ping_timeout_seconds=1.0,
    )
    process.start()
    yield process
    process.stop()


async def a_and_b(clients: HocuspocusClients, hub: HubProcess, name: str) -> None:
    """Providers ``a`` (socket s1) and ``b`` (socket s2) on document ``name``."""
    await clients.socket("s1", hub.ws)
    await clients.socket("s2", hub.ws)
    await clients.open("a", "s1", doc(clients, name))
    await clients.open("b", "s2", doc(clients, name))


async def test_two_providers_converge_and_the_hub_has_their_text(
    hub: HubProcess, clients: HocuspocusClients
) -> None:
    await a_and_b(clients, hub, "converge")
    await clients.call("insert", client="a", index=0, text="hello world")
    await clients.call("wait_text", client="b", text="hello world")
    await clients.edit_concurrently("a", "b")

    async def same() -> bool:
        return await clients.text("a") == await clients.text("b")

    await eventually_async(same, what="convergence")
    final = await clients.text("a")
    assert final.count("A") > 0 and final.count("b") > 0

    async def stored() -> bool:
        return hub.text(doc(clients, "converge")) == final

    await eventually_async(stored, what="hub text equal to the clients'")
    # Sync-status acknowledgements: every local change was acknowledged by the hub.
    for client in ("a", "b"):
        await clients.call("wait_acknowledged", client=client)
        status = await clients.status(client)
        assert status["unsynced"] == 0 and status["scope"] == "read-write"


async def test_late_joiner_gets_everything(hub: HubProcess, clients: HocuspocusClients) -> None:
    await clients.socket("s1", hub.ws)
    await clients.open("a", "s1", doc(clients, "late"))
    for i in range(40):
        await clients.call("insert", client="a", index=i, text=chr(ord("a") + i % 26))
    expected = await clients.text("a")
    await clients.socket("s2", hub.ws)
    await clients.open("late", "s2", doc(clients, "late"))
    assert await clients.text("late") == expected  # synced means the hub's whole state arrived


async def test_ten_documents_share_one_socket(hub: HubProcess, clients: HocuspocusClients) -> None:
    await clients.socket("writer", hub.ws)
    await clients.socket("reader", hub.ws)
    names = [doc(clients, f"multi/{i}") for i in range(10)]
    for i, name in enumerate(names):
        await clients.open(f"w{i}", "writer", name)
        await clients.open(f"r{i}", "reader", name)
    for i in range(10):
        await clients.call("insert", client=f"w{i}", index=0, text=f"document {i} only")
    for i, name in enumerate(names):
        await clients.call("wait_text", client=f"r{i}", text=f"document {i} only")
        assert hub.text(name) == f"document {i} only"


async def test_abrupt_drop_removes_presence_within_a_second(
    hub: HubProcess, clients: HocuspocusClients
) -> None:
    await clients.socket("s1", hub.ws)
    await clients.socket("s2", hub.ws)
    a_id = await clients.open("a", "s1", doc(clients, "presence"))
    await clients.open("a2", "s1", doc(clients, "presence-other"))
    await clients.open("b", "s2", doc(clients, "presence"))
    await clients.call("awareness", client="a", state={"user": {"name": "Ada"}})

    async def seen() -> bool:
        return str(a_id) in await clients.call("peers", client="b")

    await eventually_async(seen, what="presence of a at b")
    assert (await clients.call("peers", client="b"))[str(a_id)]["user"]["name"] == "Ada"
    await clients.call("kill", socket="s1")
    dropped = time.monotonic()

    async def gone() -> bool:
        return str(a_id) not in await clients.call("peers", client="b")

    await eventually_async(gone, timeout=5.0, what="presence of a removed")
    assert time.monotonic() - dropped < 1.0


async def test_bad_envelope_closes_only_its_document(hub: HubProcess, clients: HocuspocusClients) -> None:
    await clients.socket("s1", hub.ws)
    await clients.socket("s2", hub.ws)
    await clients.open("bad", "s1", doc(clients, "bad-doc"))
    await clients.open("good", "s1", doc(clients, "good-doc"))
    await clients.open("peer", "s2", doc(clients, "good-doc"))
    # An unknown message type for "bad-doc", on the socket that also carries "good-doc".
    unknown = hp.prefix(doc(clients, "bad-doc")) + bytes((99,))
    await clients.call("raw", socket="s1", bytes=base64.b64encode(unknown).decode())

    async def closed() -> bool:
        return bool((await clients.status("bad"))["closes"])

    await eventually_async(closed, what="close of bad-doc")
    close = (await clients.status("bad"))["closes"][0]
    assert close["reason"].startswith("1007 ") and "unknown Hocuspocus message type 99" in close["reason"]
    # A truncated sync message for a document of the other socket closes that document there.
    await clients.open("bad2", "s2", doc(clients, "bad-doc-2"))
    truncated = hp.prefix(doc(clients, "bad-doc-2")) + bytes((0, 2, 50, 1))
    await clients.call("raw", socket="s2", bytes=base64.b64encode(truncated).decode())

    async def closed2() -> bool:
        return bool((await clients.status("bad2"))["closes"])

    await eventually_async(closed2, what="close of bad-doc-2")
    assert (await clients.status("bad2"))["closes"][0]["reason"].startswith("1007 ")
    # The other documents on both sockets still work both ways.
    await clients.call("insert", client="good", index=0, text="still here")
    await clients.call("wait_text", client="peer", text="still here")
    await clients.call("insert", client="peer", index=0, text=">")
    await clients.call("wait_text", client="good", text=">still here")
    assert (await clients.status("good"))["closes"] == []


async def test_stateless_messages_reach_the_other_clients_of_the_document(
    hub: HubProcess, clients: HocuspocusClients
) -> None:
    await a_and_b(clients, hub, "chat")
    await clients.open("other", "s2", doc(clients, "elsewhere"))
    await clients.call("stateless", client="a", payload='{"kind": "ping", "n": 1}')

    async def received() -> bool:
        return await clients.call("received", client="b") == ['{"kind": "ping", "n": 1}']

    await eventually_async(received, what="stateless message at b")
    assert await clients.call("received", client="a") == []
    assert await clients.call("received", client="other") == []


async def test_tokens_map_onto_roles_read_only_included(
    auth_hub: HubProcess, clients: HocuspocusClients
) -> None:
    writer = mint(SECRET, "wendy", [("team/*", "write")])
    reader = mint(SECRET, "rita", [("team/*", "read")])
    outsider = mint(SECRET, "olga", [("other/*", "write")])
    await clients.socket("s1", auth_hub.ws)
    await clients.socket("s2", auth_hub.ws)
    await clients.open("w", "s1", f"team/plan-{clients.version}", token=writer)
    await clients.open("r", "s2", f"team/plan-{clients.version}", token=reader)
    assert (await clients.status("w"))["scope"] == "read-write"
    assert (await clients.status("r"))["scope"] == "readonly"
    await clients.call("insert", client="w", index=0, text="agreed")
    await clients.call("wait_text", client="r", text="agreed")
    # The reader's edit is refused (sync status "not applied", permission denied once), never relayed.
    await clients.call("insert", client="r", index=0, text="VANDAL ")

    async def refused() -> bool:
        return "read-only" in " ".join((await clients.status("r"))["authFailed"])

    await eventually_async(refused, what="permission denied for the read-only write")
    assert (await clients.status("r"))["unsynced"] > 0
    await clients.call("insert", client="w", index=6, text=" today")
    await clients.call("wait_text", client="r", text="VANDAL agreed today")
    assert await clients.text("w") == "agreed today"
    # A token without a grant for the document, and no token at all, are denied; the socket lives on.
    await clients.socket("s3", auth_hub.ws)
    await clients.open("o", "s3", f"team/plan-{clients.version}", token=outsider, wait=False)
    await clients.open("n", "s2", f"team/secret-{clients.version}", wait=False)

    async def denied() -> bool:
        return bool((await clients.status("o"))["authFailed"]) and bool(
            (await clients.status("n"))["authFailed"]
        )

    await eventually_async(denied, what="permission denied for outsider and anonymous")
    assert "no access" in (await clients.status("o"))["authFailed"][0]
    assert not (await clients.status("o"))["synced"] and not (await clients.status("n"))["synced"]
    await clients.call("insert", client="w", index=0, text="!")

    async def still_reading() -> bool:  # where "!" lands beside "VANDAL " depends on client ids
        return sorted(await clients.text("r")) == sorted("VANDAL !agreed today")

    await eventually_async(still_reading, what="the writer's later edit at the reader")
    assert await clients.text("w") == "!agreed today"


async def test_documents_per_socket_are_limited_one_document_at_a_time(
    auth_hub: HubProcess, clients: HocuspocusClients
) -> None:
    writer = mint(SECRET, "wendy", [("limit/*", "write")])
    await clients.socket("s", auth_hub.ws)
    names = [f"limit/{clients.version}-{i}" for i in range(4)]
    for i, name in enumerate(names[:3]):
        await clients.open(f"c{i}", "s", name, token=writer)
    await clients.open("c3", "s", names[3], token=writer, wait=False)  # the hub's limit is 3

    async def refused() -> bool:
        return bool((await clients.status("c3"))["closes"])

    await eventually_async(refused, what="the fourth document refused")
    reason = (await clients.status("c3"))["closes"][0]["reason"]
    assert reason.startswith("4429 ") and "more than 3 documents on one socket" in reason
    # The three documents already open on that socket keep working.
    await clients.call("insert", client="c2", index=0, text="still open")
    await clients.call("wait_acknowledged", client="c2")
    assert not (await clients.status("c3"))["synced"]


async def test_provider_4_sessions_of_one_document_share_a_socket(hub: HubProcess) -> None:
    # Provider 4.x's sessionAwareness names each message "document\0session": two editors of one
    # document on one socket, each with its own presence.
    async with HocuspocusClients(4) as clients:
        await clients.socket("s", hub.ws)
        name = "provider4/sessions"
        a_id = await clients.open("a", "s", name, sessionAwareness=True)
        await clients.open("b", "s", name, sessionAwareness=True)
        await clients.call("insert", client="a", index=0, text="one socket, two sessions")
        await clients.call("wait_text", client="b", text="one socket, two sessions")
        await clients.call("awareness", client="a", state={"user": {"name": "A"}})

        async def seen() -> bool:
            return str(a_id) in await clients.call("peers", client="b")

        await eventually_async(seen, what="session a's presence at session b")
        assert hub.text(name) == "one socket, two sessions"
