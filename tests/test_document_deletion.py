"""Deleting documents: soft delete and restore, hard erase proven by scanning what is left on
disk, purge after the grace period, and roles on all of it (collab_server/lifecycle.py)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from collab_server.auth import mint
from collab_server.client import YClient
from persistence.encryption.keys import new_key_entry
from tests.support.hub import HubProcess, collab_cli
from tests.support.waiting import eventually

SECRET = "deletion-test-secret-long-enough-for-hs256"
ERASED_TEXT = "Saffron-quokka ledger: the vault combination is nineteen-forty-two."
KEPT_TEXT = "Lighthouse keepers log the tides and weather every evening at dusk."


def call(
    hub: HubProcess, method: str, path: str, token: str | None = None, **kwargs: object
) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return httpx.request(method, f"{hub.http}{path}", headers=headers, timeout=60, **kwargs)  # type: ignore[arg-type]


def write(hub: HubProcess, name: str, text: str, token: str | None = None) -> None:
    response = call(hub, "POST", f"/api/documents/{name}/edits", token, json={"text": text})
    assert response.status_code == 200, response.text


async def open_close_code(url: str) -> int | None:
    client = YClient(url)
    try:
        async with client:
            await asyncio.wait_for(client.closed.wait(), 10)
    except ConnectionClosed:
        pass
    return client.close_code


async def test_soft_delete_hides_refuses_and_restores_with_roles(tmp_path: Path) -> None:
    hub = HubProcess(tmp_path, auth_secret=SECRET).start()
    writer = mint(SECRET, "writer", [("*", "write")])
    admin = mint(SECRET, "ops", [("*", "admin")])
    try:
        write(hub, "notes.md", "hello before delete", writer)
        async with YClient(f"{hub.url('notes.md')}?token={writer}") as open_client:
            await open_client.wait_synced()
            denied = call(hub, "DELETE", "/api/documents/notes.md", writer)
            assert denied.status_code == 403 and denied.json()["error"]["code"] == "forbidden"

            deleted = call(hub, "DELETE", "/api/documents/notes.md", admin)
            assert deleted.status_code == 200, deleted.text
            assert deleted.json()["purge_after"] > time.time() + 6 * 24 * 3600  # default grace: 7 days
            await asyncio.wait_for(open_client.closed.wait(), 10)
            assert open_client.close_code == 4410

        listed = call(hub, "GET", "/api/documents", admin).json()
        assert "notes.md" not in str(listed)
        gone = call(hub, "GET", "/api/documents/notes.md/text", writer)
        assert gone.status_code == 404 and gone.json()["error"]["code"] == "document_deleted"
        assert await open_close_code(f"{hub.url('notes.md')}?token={writer}") == 4410
        again = call(hub, "DELETE", "/api/documents/notes.md", admin)
        assert again.status_code == 404
        assert [d["document"] for d in call(hub, "GET", "/api/admin/deleted", admin).json()["deleted"]] == [
            "notes.md"
        ]
        assert call(hub, "GET", "/api/admin/deleted", writer).status_code == 403

        assert call(hub, "POST", "/api/documents/notes.md/undelete", writer).status_code == 403
        assert call(hub, "POST", "/api/documents/notes.md/erase", writer).status_code == 403
        restored = call(hub, "POST", "/api/documents/notes.md/undelete", admin)
        assert restored.status_code == 200, restored.text
        text = call(hub, "GET", "/api/documents/notes.md/text", writer)
        assert text.status_code == 200 and text.json()["text"] == "hello before delete"
        assert "notes.md" in str(call(hub, "GET", "/api/documents", admin).json())
        actions = [
            e["action"] for e in call(hub, "GET", "/api/audit?document=notes.md", admin).json()["events"]
        ]
        assert "delete" in actions and "undelete" in actions
    finally:
        hub.stop()


def files_under(*roots: Path) -> list[Path]:
    found: list[Path] = []
    for root in roots:
        found += [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
    return found


def containing(needle: bytes, files: list[Path]) -> list[str]:
    return [str(p) for p in files if needle in p.read_bytes()]


async def test_hard_erase_leaves_nothing_on_disk_or_in_the_index(tmp_path: Path) -> None:
    """With encryption at rest on (the index's chunk text is sealed too): chromadb's own
    write-ahead queue may keep an erased chunk until its next flush, as ciphertext whose data
    key the erase destroyed."""
    keys = tmp_path / "keys"
    keys.write_text(new_key_entry("k1") + "\n")
    hub = HubProcess(
        tmp_path,
        search="embedded",
        search_interval_seconds=0.5,
        compact_after_updates=3,
        master_key_file=keys,
        archive=str(tmp_path / "archive"),
        archive_interval_seconds=3600,
    ).start()
    try:
        for n in range(6):  # several updates and at least one checkpoint
            write(hub, "secret.md", f"{ERASED_TEXT} (revision {n})")
        write(hub, "kept.md", KEPT_TEXT)

        def found(query: str, document: str) -> bool:
            response = call(hub, "GET", "/api/search", params={"q": query})
            return response.status_code == 200 and any(
                hit["document"] == document for hit in response.json()["results"]
            )

        await eventually(lambda: found("vault combination", "secret.md"), timeout=120, what="indexed")
        snippets = call(hub, "GET", "/api/search", params={"q": "vault combination"}).json()["results"]
        assert any("Saffron-quokka" in hit["snippet"] for hit in snippets)  # the index held the text
        await eventually(lambda: found("tides at dusk", "kept.md"), timeout=60, what="kept indexed")

        archived = call(hub, "POST", "/api/admin/archive")
        assert archived.status_code == 200 and archived.json()["documents"] == 2, archived.text
        erased = await asyncio.to_thread(collab_cli, "documents", "erase", "secret.md", "--hub", hub.http)
        assert erased.returncode == 0, erased.stderr
        assert '"erased": true' in erased.stdout and '"search_chunks": 0' not in erased.stdout
        assert '"archive_objects": 0' not in erased.stdout
        assert not found("vault combination", "secret.md")
        assert call(hub, "GET", "/api/documents/secret.md/history").json()["versions"] == []
        audit = call(hub, "GET", "/api/audit?document=secret.md").json()["events"]
        assert audit[0]["action"] == "erase" and "rows" in audit[0]["detail"]
    finally:
        hub.stop()

    stored = files_under(
        tmp_path / "hub.sqlite3",
        tmp_path / "hub.sqlite3-wal",
        tmp_path / "hub.sqlite3.search",
        tmp_path / "archive",
    )
    archive = [p for p in stored if "/archive/" in p.as_posix()]
    assert containing(b"kept.md", archive) != [] and containing(b"secret.md", archive) == []
    assert any("search" in str(p) for p in stored) and len(stored) > 3
    # The scan reads what is there: the kept document's name (metadata) is in both places.
    kept = containing(b"kept.md", stored)
    assert any(p.endswith("hub.sqlite3") or p.endswith("-wal") for p in kept)
    assert any("search" in p for p in kept)
    assert containing(b"Saffron-quokka", stored) == []
    assert containing(b"vault combination", stored) == []


@pytest.mark.parametrize("grace", [1.0])
async def test_soft_deleted_document_is_purged_after_the_grace_period(tmp_path: Path, grace: float) -> None:
    """Without encryption: the erased rows are gone from the SQLite file and its WAL."""
    hub = HubProcess(tmp_path, deletion_grace_seconds=grace).start()
    try:
        write(hub, "old.md", "short-lived zebra-mango paragraph")
        write(hub, "other.md", "long-lived heron-kiwi paragraph")
        assert call(hub, "DELETE", "/api/documents/old.md").status_code == 200

        def purged() -> bool:
            events = call(hub, "GET", "/api/audit?document=old.md").json()["events"]
            return any(event["action"] == "purge" for event in events)

        await eventually(purged, timeout=15, what="purge after the grace period")
        assert call(hub, "GET", "/api/admin/deleted").json()["deleted"] == []
        assert call(hub, "GET", "/api/documents/old.md/history").json()["versions"] == []
        write(hub, "old.md", "a new document under the old name")  # the name is free again
        assert hub.text("old.md") == "a new document under the old name"
    finally:
        hub.stop()
    files = files_under(tmp_path / "hub.sqlite3", tmp_path / "hub.sqlite3-wal")
    assert containing(b"heron-kiwi", files) != []  # the scan can find content
    assert containing(b"zebra-mango", files) == []
