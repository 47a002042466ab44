"""Host controls of a shared editor session (collab_server/session_lobby.py) against a real hub:
join requests answered by the host, guest tokens scoped to the session, removal and the end of
the session enforced by the hub (connections closed, tokens refused, also after a restart), and
the shared terminal's one writer."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from collab_server.auth import mint
from collab_server.client import YClient
from tests.support.hub import HubProcess
from tests.support.waiting import eventually

SECRET = "session-controls-secret-long-enough-for-hs256"
SESSION = "s1"
MANIFEST = f"nova-session/{SESSION}"
FILE = f"{MANIFEST}/a.txt"
TERMINAL_INPUT = f"{MANIFEST}-terminal-input"
HOST = mint(SECRET, "host", [("nova-session/*", "admin")], ttl_seconds=24 * 3600)
ADMIN = mint(SECRET, "root", [("*", "admin")], ttl_seconds=24 * 3600)


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[HubProcess]:
    process = HubProcess(tmp_path, auth_secret=SECRET).start()
    yield process
    process.stop()


def call(hub: HubProcess, method: str, path: str, token: str | None = HOST, **body: Any) -> httpx.Response:
    headers = {} if token is None else {"authorization": f"Bearer {token}"}
    return httpx.request(
        method,
        f"{hub.http}/api/sessions/{SESSION}{path}",
        json=body if method in ("POST", "PUT") else None,
        headers=headers,
        timeout=10,
    )


def join(hub: HubProcess, name: str, role: str = "write") -> tuple[str, str]:
    """A guest asks, the host approves: (participant id, guest token)."""
    asked = call(hub, "POST", "/requests", token=None, name=name)
    assert asked.status_code == 202, asked.text
    request, key = asked.json()["request"], asked.json()["key"]
    approved = call(hub, "POST", f"/requests/{request}/approve", role=role)
    assert approved.status_code == 200, approved.text
    answer = call(hub, "GET", f"/requests/{request}?key={key}", token=None).json()
    assert answer["status"] == "approved"
    return answer["participant"], answer["token"]


def text_of(hub: HubProcess, document: str) -> str:
    response = httpx.get(f"{hub.http}/api/documents/{document}/text", params={"token": ADMIN}, timeout=10)
    response.raise_for_status()
    text: str = response.json()["text"]
    return text


async def closed_with(client: YClient) -> tuple[int | None, str]:
    await asyncio.wait_for(client.closed.wait(), 30)
    return client.close_code, client.close_reason or ""


async def refused_code(hub: HubProcess, document: str, token: str) -> int | None:
    async with YClient(hub.url(document) + f"?token={token}") as client:
        await asyncio.wait_for(client.closed.wait(), 10)
        return client.close_code


async def test_join_request_is_answered_by_the_host_only(hub: HubProcess) -> None:
    assert call(hub, "POST", "/requests", token=None, name="Eve").status_code == 404  # not open yet
    assert call(hub, "POST", "/open").status_code == 200
    asked = call(hub, "POST", "/requests", token=None, name="Guest")
    assert asked.status_code == 202
    request, key = asked.json()["request"], asked.json()["key"]
    assert call(hub, "GET", f"/requests/{request}?key={key}", token=None).json() == {"status": "pending"}
    assert call(hub, "GET", f"/requests/{request}?key=wrong", token=None).status_code == 404
    assert [r["name"] for r in call(hub, "GET", "/requests").json()["requests"]] == ["Guest"]

    # Without a token, or with a guest's token, no host action is allowed: 401 / 403 JSON.
    assert call(hub, "POST", f"/requests/{request}/approve", token=None).status_code == 401
    _, guest = join(hub, "Other")
    for method, path in [
        ("POST", f"/requests/{request}/approve"),
        ("GET", "/requests"),
        ("GET", "/participants"),
        ("DELETE", "/participants/x"),
        ("PUT", "/terminal/writer"),
        ("POST", "/end"),
    ]:
        refused = call(hub, method, path, token=guest)
        assert refused.status_code == 403, (path, refused.text)
        assert refused.json()["error"]["code"] == "forbidden"

    refused = call(hub, "POST", f"/requests/{request}/refuse")
    assert refused.status_code == 200
    assert call(hub, "GET", f"/requests/{request}?key={key}", token=None).json() == {"status": "refused"}
    again = call(hub, "POST", f"/requests/{request}/approve", role="write")
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_answered"
    assert call(hub, "GET", "/requests").json()["requests"] == []
    assert call(hub, "POST", "/requests", token=None, name="x" * 65).status_code == 400
    bad = httpx.post(f"{hub.http}/api/sessions/bad%20id/requests", json={}, timeout=10)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_session"


async def test_read_only_guest_token_cannot_write_the_files(hub: HubProcess) -> None:
    assert call(hub, "POST", "/open").status_code == 200
    async with YClient(hub.url(FILE) + f"?token={HOST}") as host:
        await host.wait_synced()
        host.text += "shared text"
        await eventually(lambda: text_of(hub, FILE) == "shared text", what="the host's text on the hub")
        _, reader = join(hub, "Reader", role="read")
        async with YClient(hub.url(FILE) + f"?token={reader}") as guest:
            await guest.wait_for(lambda c: str(c.text) == "shared text", timeout=30)
            guest.text += " HACKED"  # a client that ignores read-only: the hub drops the update
            host.text += " more"
            # Where " more" lands beside the guest's local " HACKED" depends on the two
            # random client ids (concurrent inserts at one position), so wait on "contains".
            await guest.wait_for(lambda c: " more" in str(c.text), timeout=30)
        assert str(host.text) == "shared text more"
    assert text_of(hub, FILE) == "shared text more"
    edit = httpx.post(
        f"{hub.http}/api/documents/{FILE}/edits",
        json={"edits": [{"op": "insert", "index": 0, "text": "x"}]},
        headers={"authorization": f"Bearer {reader}"},
        timeout=10,
    )
    assert edit.status_code == 403
    # Its grants stop at the session: another session's files are not even readable.
    assert await refused_code(hub, "nova-session/s2/a.txt", reader) == 4403


async def test_removed_guest_is_disconnected_and_cannot_reconnect(hub: HubProcess) -> None:
    assert call(hub, "POST", "/open").status_code == 200
    participant, guest = join(hub, "Guest")
    _, staying = join(hub, "Stays")
    listed = call(hub, "GET", "/participants").json()["participants"]
    assert {p["name"] for p in listed} == {"Guest", "Stays"}
    async with (
        YClient(hub.url(FILE) + f"?token={guest}") as removed,
        YClient(hub.url(FILE) + f"?token={staying}") as other,
    ):
        await removed.wait_synced()
        await other.wait_synced()
        response = call(hub, "DELETE", f"/participants/{participant}")
        assert response.status_code == 200 and response.json()["closed_here"] == 1
        code, reason = await closed_with(removed)
        assert code == 4498 and "removed by the host" in reason
        other.text += "still here"
        await eventually(lambda: text_of(hub, FILE) == "still here", what="the other guest still writes")
        assert not other.closed.is_set()
    assert await refused_code(hub, FILE, guest) == 4498
    assert call(hub, "DELETE", f"/participants/{participant}").status_code == 404


async def test_ending_the_session_refuses_every_guest_token_even_after_a_restart(hub: HubProcess) -> None:
    assert call(hub, "POST", "/open").status_code == 200
    _, first = join(hub, "First")
    _, second = join(hub, "Second", role="read")
    async with (
        YClient(hub.url(MANIFEST) + f"?token={first}") as a,
        YClient(hub.url(FILE) + f"?token={second}") as b,
        YClient(hub.url(FILE) + f"?token={HOST}") as host,
    ):
        await asyncio.gather(a.wait_synced(), b.wait_synced(), host.wait_synced())
        ended = call(hub, "POST", "/end")
        assert ended.status_code == 200 and ended.json()["closed_here"] == 2
        for client in (a, b):
            code, reason = await closed_with(client)
            assert code == 4498 and "ended the session" in reason
        assert not host.closed.is_set()  # the host's own token is not a guest token
    assert call(hub, "POST", "/requests", token=None, name="Late").status_code == 410
    hub.terminate()
    hub.start()
    assert await refused_code(hub, FILE, first) in (4401, 4498)
    assert await refused_code(hub, MANIFEST, second) in (4401, 4498)


async def test_one_guest_may_type_in_the_shared_terminal(hub: HubProcess) -> None:
    assert call(hub, "POST", "/open").status_code == 200
    writer_id, writer = join(hub, "Writer")
    _, reader = join(hub, "Reader", role="read")
    # Nobody may type until the host says so; the terminal input is not in a guest's grants.
    assert call(hub, "POST", "/terminal/token", token=writer).status_code == 403
    assert await refused_code(hub, TERMINAL_INPUT, writer) == 4403
    assert call(hub, "PUT", "/terminal/writer", participant=writer_id).status_code == 200
    assert call(hub, "POST", "/terminal/token", token=reader).status_code == 403
    granted = call(hub, "POST", "/terminal/token", token=writer)
    assert granted.status_code == 200
    terminal = granted.json()["token"]
    terminal_of = {p["name"]: p["terminal"] for p in call(hub, "GET", "/participants").json()["participants"]}
    assert terminal_of == {"Writer": True, "Reader": False}
    async with YClient(hub.url(TERMINAL_INPUT) + f"?token={terminal}") as typing:
        await typing.wait_synced()
        typing.text += "ls\n"
        async with YClient(hub.url(TERMINAL_INPUT) + f"?token={HOST}") as host:
            await host.wait_for(lambda c: str(c.text) == "ls\n", timeout=30)
        # The host takes write access back: the input connection closes, the token is refused.
        assert call(hub, "PUT", "/terminal/writer").status_code == 200
        code, reason = await closed_with(typing)
        assert code == 4498 and "terminal write access revoked" in reason
    assert await refused_code(hub, TERMINAL_INPUT, terminal) == 4498
    assert call(hub, "POST", "/terminal/token", token=writer).status_code == 403
    assert text_of(hub, TERMINAL_INPUT) == "ls\n"


async def test_a_hub_without_auth_lets_everyone_join(tmp_path: Path) -> None:
    open_hub = HubProcess(tmp_path, store="memory").start()
    try:
        asked = httpx.post(f"{open_hub.http}/api/sessions/{SESSION}/requests", json={"name": "g"}, timeout=10)
        assert asked.status_code == 200 and asked.json() == {"status": "open"}
    finally:
        open_hub.stop()
