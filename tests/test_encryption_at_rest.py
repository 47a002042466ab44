"""Encryption at rest: no plaintext on disk or in a dump, key rotation while editing, and a
wrong or missing key refusing to start (persistence/encryption)."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path
from typing import Any

import pycrdt

import crdt_core
from collab_server.client import YClient
from persistence.base import LogEntry, StoredDocument
from persistence.encryption.keys import StaticKeyProvider, new_key_entry
from persistence.encryption.store import EncryptedStore, verify_store
from persistence.factory import store_from_url
from persistence.index.indexer import texts_of_stored
from tests.support.hub import HubProcess, collab_cli
from tests.support.services import postgres_bin_dir
from tests.support.waiting import eventually

SECRET = "purple-walrus-launch-code-7781"  # the known text grepped for
PIECES = [f"{SECRET} line {n}\n" for n in range(30)]


def key_file(path: Path, *entries: str) -> Path:
    path.write_text("".join(entry + "\n" for entry in entries), encoding="utf-8")
    return path


def raw_bytes(*paths: Path) -> bytes:
    """The files as they are on disk (SQLite file, WAL, shared memory), concatenated."""
    return b"".join(p.read_bytes() for p in paths if p.exists())


def sqlite_files(db: Path) -> list[Path]:
    return [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]


async def type_text(hub: HubProcess, document: str, pieces: list[str]) -> None:
    async with YClient(hub.url(document)) as client:
        await client.wait_synced()
        for piece in pieces:
            client.text += piece  # one update per piece
        expected = "".join(pieces)
        await eventually(lambda: hub.text(document) == expected, what="the hub has every piece")


async def test_sqlite_file_holds_no_plaintext_and_reads_back(tmp_path: Path) -> None:
    keys = key_file(tmp_path / "keys", new_key_entry("k1"))
    encrypted = HubProcess(tmp_path, master_key_file=keys, compact_after_updates=10).start()
    try:
        await type_text(encrypted, "secret.md", PIECES)
    finally:
        encrypted.terminate()  # SIGTERM: pending updates are flushed first
    # Control: the same writes without encryption do show up in the file, so the scan can fail.
    plain_dir = tmp_path / "plain"
    plain_dir.mkdir()
    plain = HubProcess(plain_dir, compact_after_updates=10).start()
    try:
        await type_text(plain, "secret.md", PIECES)
    finally:
        plain.terminate()
    assert SECRET.encode() in raw_bytes(*sqlite_files(plain_dir / "hub.sqlite3"))

    on_disk = raw_bytes(*sqlite_files(tmp_path / "hub.sqlite3"))
    assert len(on_disk) > 10_000
    assert SECRET.encode() not in on_disk
    assert b"walrus" not in on_disk

    # Checkpoints were written (compaction ran) and they are ciphertext too.
    again = HubProcess(tmp_path, master_key_file=keys).start()
    try:
        history = again.get("/api/documents/secret.md/history").json()["versions"]
        assert any(version["kind"] == "checkpoint" for version in history)
        assert again.text("secret.md") == "".join(PIECES)
    finally:
        again.stop()
    verified = collab_cli("keys", "verify", "--store", encrypted.store, "--master-key-file", str(keys))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "0 unreadable" in verified.stdout


async def test_postgres_dump_holds_no_plaintext(postgres_dsn: str, tmp_path: Path) -> None:
    keys = StaticKeyProvider(new_key_entry("k1"))
    store = EncryptedStore(store_from_url(postgres_dsn), keys)
    await store.open()
    try:
        await store.append([LogEntry("pg.md", _update(piece), "alice", "n", time.time()) for piece in PIECES])
        assert await store.compact("pg.md", crdt_core.merge_updates) is not None
        await store.append([LogEntry("pg.md", _update("tail " + SECRET), "bob", "n", time.time())])
        assert SECRET in _text(await store.load("pg.md"))
        report = await verify_store(store, keys)
        assert report.failures == [] and report.rows >= 2
    finally:
        await store.close()
    dumped = await asyncio.to_thread(
        subprocess.run,
        [str(postgres_bin_dir() / "pg_dump"), "--data-only", "--dbname", postgres_dsn],
        capture_output=True,
        timeout=60,
        check=True,
    )
    dump = dumped.stdout
    assert b"COPY public.updates" in dump and b"COPY public.checkpoints" in dump
    assert SECRET.encode() not in dump and b"walrus" not in dump
    # bytea is dumped as hex: look for the hex of the text too.
    assert SECRET.encode().hex().encode() not in dump
    assert b"walrus".hex().encode() not in dump


def _update(text: str) -> bytes:
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    doc.get("content", type=pycrdt.Text).insert(0, text)
    return doc.get_update()


def _text(stored: StoredDocument) -> str:
    return texts_of_stored(stored.parts).get("content", "")


def test_wrong_or_missing_key_refuses_to_start(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    right = key_file(tmp_path / "right", new_key_entry("k1"))
    wrong = key_file(tmp_path / "wrong", new_key_entry("k1"))  # same id, other bytes
    other = key_file(tmp_path / "other", new_key_entry("k2"))
    hub = HubProcess(tmp_path, master_key_file=right).start()
    try:
        asyncio.run(type_text(hub, "doc", ["some text"]))
    finally:
        hub.stop()

    def serve(*options: str) -> subprocess.CompletedProcess[str]:
        return collab_cli("serve", "--store", store, "--search", "off", "--port", "0", *options, timeout=30)

    refused = serve("--master-key-file", str(wrong))
    assert refused.returncode == 1
    assert "does not open the data key" in refused.stderr
    refused = serve("--master-key-file", str(other))
    assert refused.returncode == 1
    assert "no key 'k1'" in refused.stderr
    refused = serve()  # no key at all: must not start and write plaintext beside ciphertext
    assert refused.returncode == 1
    assert "encrypted documents" in refused.stderr and "no master key" in refused.stderr
    refused = serve("--master-key-file", str(tmp_path / "absent"))
    assert refused.returncode == 1 and "master key file" in refused.stderr

    # And the reverse: a store written without encryption is not silently mixed.
    plain_store = f"sqlite:///{tmp_path / 'plain.sqlite3'}"
    plain = HubProcess(tmp_path, store=plain_store).start()
    try:
        asyncio.run(type_text(plain, "doc", ["plain text"]))
    finally:
        plain.stop()
    refused = collab_cli("serve", "--store", plain_store, "--search", "off", "--master-key-file", str(right))
    assert refused.returncode == 1 and "without encryption" in refused.stderr


async def test_master_key_rotation_under_live_editing(tmp_path: Path) -> None:
    old, new = new_key_entry("k1"), new_key_entry("k2")
    keys = key_file(tmp_path / "keys", old)
    hub = HubProcess(tmp_path, master_key_file=keys, compact_after_updates=20).start()
    documents = [f"doc-{n}" for n in range(5)]
    typed: dict[str, list[str]] = {name: [] for name in documents}
    stop = asyncio.Event()

    async def writer(name: str) -> None:
        async with YClient(hub.url(name)) as client:
            await client.wait_synced()
            n = 0
            while not stop.is_set():
                piece = f"{name}:{n} "
                client.text += piece
                typed[name].append(piece)
                n += 1
                await asyncio.sleep(0.01)  # pacing of a typist, not synchronisation
            await eventually(lambda: hub.text(name) == "".join(typed[name]), what=f"{name} complete")

    try:
        async with asyncio.TaskGroup() as group:
            for name in documents:
                group.create_task(writer(name))
            await eventually(lambda: all(len(t) > 20 for t in typed.values()), what="editing under way")
            key_file(keys, new, old)  # the running hub re-reads the file: new data keys use k2
            rotated = await asyncio.to_thread(
                collab_cli, "keys", "rotate", "--store", hub.store, "--master-key-file", str(keys)
            )
            assert rotated.returncode == 0, rotated.stderr
            assert "re-wrapped 5 data keys with master key 'k2'" in rotated.stdout
            key_file(keys, new)  # the old key is gone from now on
            counts = {name: len(t) for name, t in typed.items()}
            await eventually(
                lambda: all(len(typed[n]) > counts[n] + 20 for n in documents), what="editing after rotation"
            )
            stop.set()
    finally:
        hub.stop()
    verified = collab_cli("keys", "verify", "--store", hub.store, "--master-key-file", str(keys))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    restarted = HubProcess(tmp_path, master_key_file=keys).start()  # only k2 now
    try:
        for name in documents:
            assert restarted.text(name) == "".join(typed[name])
    finally:
        restarted.stop()
