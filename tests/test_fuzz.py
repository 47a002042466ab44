"""Fuzzing: the message parser on both backends, and whole connections against a live hub.

A short run is part of the suite; `scripts/fuzz.sh` runs a long one (FUZZ_EXAMPLES).
Properties: the parser returns a message or raises ProtocolError, nothing else; the hub
stays up, other clients keep syncing, and the stored log holds only valid updates (it
reloads after a restart to exactly what the clients have).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pycrdt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidMessage

import crdt_core
from collab_server.client import YClient
from tests.support.hub import HubProcess
from tests.support.waiting import eventually

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "120"))


def valid_frames() -> list[bytes]:
    doc: pycrdt.Doc[Any] = pycrdt.Doc(client_id=1234)  # fixed: hypothesis needs deterministic data
    text = doc.get("content", type=pycrdt.Text)
    text += "seed"
    update = doc.get_update()
    awareness = crdt_core.encode_awareness([crdt_core.AwarenessEntry(7, 1, '{"user":{"name":"f"}}')])
    return [
        crdt_core.frame_sync_step1(doc.get_state()),
        crdt_core.frame_sync_step2(update),
        crdt_core.frame_update(update),
        crdt_core.frame_awareness(awareness),
        crdt_core.frame_query_awareness(),
        crdt_core.frame_auth_denied("x"),
    ]


VALID_FRAMES = valid_frames()


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    frame = bytearray(draw(st.sampled_from(VALID_FRAMES)))
    for _ in range(draw(st.integers(1, 4))):
        choice = draw(st.integers(0, 3))
        if choice == 0 and frame:
            frame[draw(st.integers(0, len(frame) - 1))] = draw(st.integers(0, 255))
        elif choice == 1 and frame:
            del frame[draw(st.integers(0, len(frame) - 1)) :]
        elif choice == 2:
            frame += draw(st.binary(max_size=8))
        else:
            at = draw(st.integers(0, len(frame)))
            frame[at:at] = draw(st.binary(min_size=1, max_size=4))
    return bytes(frame)


frames = st.one_of(st.binary(max_size=64), mutated())
BACKENDS = ["python"] + (["rust"] if crdt_core.BACKEND == "rust" else [])


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=EXAMPLES * 10, deadline=None)
@given(data=frames)
def test_parser_returns_a_message_or_a_protocol_error(backend: str, data: bytes) -> None:
    functions = crdt_core.backend_functions(backend)
    try:
        message = functions.parse_message(data)
    except crdt_core.ProtocolError:
        return
    assert isinstance(message.kind, crdt_core.MessageKind)


@pytest.fixture(scope="module")
def fuzz_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    process = HubProcess(Path(tmp_path_factory.mktemp("fuzz")), max_message_bytes=4096).start()
    yield process
    process.stop()


async def send_frames(hub: HubProcess, batch: list[bytes]) -> None:
    with contextlib.suppress(ConnectionClosed, InvalidMessage, OSError, TimeoutError):
        async with asyncio.timeout(5), connect(hub.url("fuzzed"), compression=None) as ws:
            for frame in batch:
                await ws.send(frame)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.05):
                    async for _ in ws:
                        pass


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(frames, min_size=1, max_size=6))
def test_random_frames_never_hurt_the_hub_or_other_clients(fuzz_hub: HubProcess, batch: list[bytes]) -> None:
    async def scenario() -> None:
        await send_frames(fuzz_hub, batch)
        assert fuzz_hub.process is not None and fuzz_hub.process.poll() is None, "hub died"
        async with YClient(fuzz_hub.url("fuzzed")) as control:
            await control.wait_synced()
            control.text += "."
            await eventually(
                lambda: fuzz_hub.text("fuzzed") == str(control.text), what="control client synced"
            )

    asyncio.run(scenario())


def test_stored_log_reloads_to_what_clients_have(fuzz_hub: HubProcess) -> None:
    """Runs after the fuzzing above (same module hub): a restart reloads only valid updates."""

    async def scenario() -> None:
        async with YClient(fuzz_hub.url("fuzzed")) as control:
            await control.wait_synced()
            expected = str(control.text)
        fuzz_hub.stop()
        fuzz_hub.start()
        assert fuzz_hub.text("fuzzed") == expected

    asyncio.run(scenario())
