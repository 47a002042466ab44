"""Fuzzing: the message parser on both backends, presence, and whole connections against a live hub.

A short run is part of the suite; `scripts/fuzz.sh` runs a long one (FUZZ_EXAMPLES).
Properties: the parser returns a message or raises ProtocolError, nothing else; the hub
stays up, other clients keep syncing, and the stored log holds only valid updates (it
reloads after a restart to exactly what the clients have). Presence: whatever awareness
entries anyone sends, no owner's entry changes hands, the limits hold, every stored state
is JSON (stamped with its owner's identity when there is one), and a live observer keeps
seeing an honest client as it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
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
from awareness.identity import Identity
from awareness.registry import NULL_STATE, PresenceLimits, PresenceRegistry
from collab_server.client import YClient
from crdt_core import AwarenessEntry
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


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**60), 2**60) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
STATES = st.one_of(
    st.just(NULL_STATE),
    JSON_VALUES.map(json.dumps),
    st.builds(lambda name: json.dumps({"user": {"name": name, "kind": "agent", "id": "forged"}}), st.text()),
    st.text(max_size=24),  # mostly not JSON
    st.integers(0, 3000).map(lambda n: json.dumps("x" * n)),  # over the small test limit
)
CLIENT_IDS = st.one_of(st.sampled_from([1, 2, 3, 4, 5]), st.integers(0, 2**53 - 1))
ENTRIES = st.lists(
    st.builds(AwarenessEntry, CLIENT_IDS, st.integers(0, 2**53 - 1), STATES), min_size=1, max_size=8
)
OWNERS = ["ada", "bob", ("node", "n1")]
IDENTITIES = {"ada": Identity.of_subject("ada", "human"), "bob": None, ("node", "n1"): None}


@pytest.mark.fast  # in-process
@settings(max_examples=EXAMPLES * 4, deadline=None)
@given(steps=st.lists(st.tuples(st.sampled_from(OWNERS), ENTRIES, st.integers(0, 9)), max_size=12))
def test_presence_registry_keeps_owners_limits_and_json(
    steps: list[tuple[Any, list[AwarenessEntry], int]],
) -> None:
    limits = PresenceLimits(max_state_bytes=1024, max_clients_per_owner=3, max_entries=6, max_bytes=3000)
    registry = PresenceRegistry(limits=limits)
    owner_of: dict[int, object] = {}
    for owner, entries, action in steps:
        if action == 0:
            registry.remove_owner(owner)
            owner_of = {cid: o for cid, o in owner_of.items() if o != owner}
            continue
        node = isinstance(owner, tuple)
        applied = registry.apply_entries(entries, owner, identity=IDENTITIES[owner], limit_owner=not node)
        for entry in applied.changed:
            previous = owner_of.get(entry.client_id)
            assert previous in (None, owner), "an entry changed hands"
            owner_of[entry.client_id] = owner
            if entry.state != NULL_STATE:
                value = json.loads(entry.state)
                if IDENTITIES[owner] is not None:
                    assert value["user"]["id"] == "ada" and value["user"]["name"] == "ada"
        owner_of = {cid: o for cid, o in owner_of.items() if registry.owner_of(cid) is not None}
        for cid, stored_owner in owner_of.items():
            assert registry.owner_of(cid) == stored_owner
        per_owner = [registry.owner_of(cid) for cid in owner_of if registry.owner_of(cid) in ("ada", "bob")]
        assert all(per_owner.count(o) <= 3 for o in ("ada", "bob"))
        states = registry.states()
        assert len(owner_of) <= 6
        assert registry.state_bytes <= 3000
        assert all(len(state.encode()) <= 1024 for state in states.values())
        for state in states.values():
            json.loads(state)


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


@settings(
    max_examples=EXAMPLES // 2, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batch=st.lists(ENTRIES, min_size=1, max_size=4))
def test_random_presence_never_hijacks_or_breaks_an_honest_client(
    fuzz_hub: HubProcess, batch: list[list[AwarenessEntry]]
) -> None:
    async def scenario() -> None:
        honest_state = {"user": {"name": "honest", "color": "#2563eb"}}
        async with YClient(fuzz_hub.url("presence-fuzz"), presence=honest_state) as honest:
            await honest.wait_synced()
            frames = [
                crdt_core.frame_awareness(
                    crdt_core.encode_awareness(
                        [
                            AwarenessEntry(honest.client_id, e.clock, e.state) if e.client_id == 1 else e
                            for e in entries
                        ]
                    )
                )
                for entries in batch
            ]
            with contextlib.suppress(ConnectionClosed, InvalidMessage, OSError, TimeoutError):
                async with asyncio.timeout(5), connect(fuzz_hub.url("presence-fuzz"), compression=None) as ws:
                    for frame in frames:
                        await ws.send(frame)
                    await ws.send(crdt_core.frame_query_awareness())
                    async with asyncio.timeout(2):  # answered once everything before was handled
                        while crdt_core.parse_message(await ws.recv(decode=False)).kind is not (
                            crdt_core.MessageKind.AWARENESS
                        ):
                            pass
            assert fuzz_hub.process is not None and fuzz_hub.process.poll() is None, "hub died"
            # A joiner receives only JSON states (its decoder would fail otherwise) and the honest one intact.
            async with YClient(fuzz_hub.url("presence-fuzz")) as observer:
                await observer.wait_for(lambda c: c.presence.get(honest.client_id) == honest_state, timeout=5)

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
