"""Bad input closes only the offending connection, with a named code; nothing else changes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

import crdt_core
from collab_server.client import YClient
from tests.support.hub import HubProcess
from tests.support.waiting import eventually


@pytest.fixture
def strict_hub(tmp_path: Path) -> Iterator[HubProcess]:
    """A hub with small limits so each one can be hit quickly."""
    process = HubProcess(
        tmp_path,
        store="memory",
        max_message_bytes=4096,
        max_messages_per_second=50.0,
        message_burst=100,
    ).start()
    yield process
    process.stop()


def stored_seq(hub: HubProcess, document: str) -> object:
    return httpx.get(f"{hub.http}/api/documents/{document}/status", timeout=5).json()["last_persisted_seq"]


async def run_bad_client(hub: HubProcess, document: str, frames: list[bytes | str]) -> tuple[int, str]:
    """Send frames on a fresh socket; return the close code and reason the hub answered with."""
    async with connect(hub.url(document), compression=None) as ws:
        for frame in frames:
            await ws.send(frame)
        async with asyncio.timeout(10):
            with contextlib.suppress(ConnectionClosed):
                async for _ in ws:
                    pass
        assert ws.close_code is not None
        return ws.close_code, ws.close_reason or ""


BAD_FRAMES: list[tuple[str, list[bytes | str], int, str]] = [
    ("truncated varint", [b"\x00\x80"], 1007, "truncated varuint"),
    ("truncated payload", [b"\x00\x02\x10abc"], 1007, "truncated byte array"),
    ("unknown message type", [b"\x09\x00"], 1007, "unknown message type 9"),
    ("unknown sync type", [b"\x00\x07\x00"], 1007, "unknown sync message type 7"),
    ("garbage update", [crdt_core.frame_update(b"\x05\xff\xff\xff\x01")], 1007, "invalid update"),
    ("garbage awareness", [crdt_core.frame_awareness(b"\x02\x01")], 1007, "truncated"),
    ("text frame", ["hello"], 1003, "text frames are not supported"),
    (
        "oversized frame",
        [b"\x00\x02" + crdt_core.encode_var_uint(8000) + b"\x00" * 8000],
        1009,
        "message too big",
    ),
    ("flood", [crdt_core.frame_query_awareness()] * 400, 4429, "rate limit"),
]


@pytest.mark.parametrize(("label", "frames", "code", "reason"), BAD_FRAMES, ids=[b[0] for b in BAD_FRAMES])
async def test_bad_input_closes_only_that_connection(
    strict_hub: HubProcess, label: str, frames: list[bytes | str], code: int, reason: str
) -> None:
    async with YClient(strict_hub.url("victim")) as writer, YClient(strict_hub.url("victim")) as reader:
        await writer.wait_synced()
        await reader.wait_synced()
        writer.text += "intact"
        await reader.wait_for(lambda c: str(c.text) == "intact")
        seq_before = stored_seq(strict_hub, "victim")
        assert seq_before is not None

        got_code, got_reason = await run_bad_client(strict_hub, "victim", frames)

        assert got_code == code, (label, got_code, got_reason)
        assert reason in got_reason
        # The document, the stored log and the other clients are untouched and still live.
        assert strict_hub.text("victim") == "intact"
        assert stored_seq(strict_hub, "victim") == seq_before
        writer.text += " still"
        await reader.wait_for(lambda c: str(c.text) == "intact still")
        assert not writer.closed.is_set() and not reader.closed.is_set()
    # The hub logged the close with the document's name.
    assert "victim" in strict_hub.log() and str(code) in strict_hub.log()


async def test_invalid_document_name_is_refused(strict_hub: HubProcess) -> None:
    code, reason = await run_bad_client(strict_hub, "%01bad", [])
    assert code == 4400
    assert "invalid document name" in reason


async def test_garbage_update_is_never_applied_in_part(strict_hub: HubProcess) -> None:
    """A valid update followed by junk in one message is rejected whole."""
    async with YClient(strict_hub.url("atomic")) as client:
        await client.wait_synced()
        client.text += "x"
        await eventually(lambda: strict_hub.text("atomic") == "x")
    donor = YClient(strict_hub.url("unused"))
    donor.text += "SHOULD NOT APPEAR"
    good = donor.doc.get_update()
    mangled = good[:-3] + b"\xff\xff\xff\xff"
    code, _ = await run_bad_client(strict_hub, "atomic", [crdt_core.frame_update(mangled)])
    assert code == 1007
    assert strict_hub.text("atomic") == "x"
