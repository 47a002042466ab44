"""Differential tests: the native backend against the pure-Python one, and both against yjs.

Framing, varints and awareness must give identical bytes (or both raise ProtocolError).
Merged updates are compared by what they decode to (roots and state vector), because
the native merge joins typing runs that pycrdt's merge leaves apart; diff, state vector
and text come from the same yrs code on both sides and must be identical bytes.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable
from functools import partial
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crdt_core import AwarenessEntry, Message, MessageKind, ProtocolError
from tests.test_crdt_core_support import Session, backend, content, decode_state_vector, yjs_decode

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DOC_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def py() -> SimpleNamespace:
    return backend("python")


@pytest.fixture(scope="module")
def rs() -> SimpleNamespace:
    return backend("rust")


def same_outcome(call: Callable[[SimpleNamespace], Any], py: SimpleNamespace, rs: SimpleNamespace) -> Any:
    """Both backends return equal values, or both raise ProtocolError."""
    outcomes = []
    for core in (py, rs):
        try:
            outcomes.append(("ok", call(core)))
        except ProtocolError:
            outcomes.append(("error", None))
    assert outcomes[0] == outcomes[1]
    return outcomes[1][1]


payloads = st.binary(max_size=40)
kinds = st.sampled_from(list(MessageKind))


@st.composite
def frames(draw: st.DrawFn) -> bytes:
    """Mostly valid frames, some mutated, some noise."""
    choice = draw(st.integers(0, 2))
    if choice == 2:
        return draw(st.binary(max_size=12))
    kind = draw(kinds)
    payload = b"" if kind is MessageKind.QUERY_AWARENESS else draw(payloads)
    if kind is MessageKind.AUTH:
        payload = draw(st.text(max_size=10)).encode("utf-8", "surrogatepass")
    framed = {
        MessageKind.SYNC_STEP1: b"\x00\x00",
        MessageKind.SYNC_STEP2: b"\x00\x01",
        MessageKind.SYNC_UPDATE: b"\x00\x02",
        MessageKind.AWARENESS: b"\x01",
        MessageKind.AUTH: b"\x02\x00",
        MessageKind.QUERY_AWARENESS: b"\x03",
    }[kind]
    if kind is not MessageKind.QUERY_AWARENESS:
        framed += bytes([len(payload)]) if len(payload) < 128 else b"\x80\x01"
        framed += payload
    if choice == 1 and framed:
        data = bytearray(framed)
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        framed = bytes(data[: draw(st.integers(0, len(data)))])
    return framed


def _parse(frame: bytes, core: SimpleNamespace) -> Any:
    return core.parse_message(frame)


def _frame(message: Message, core: SimpleNamespace) -> Any:
    return core.frame_messages([message])


@pytest.mark.fast
@SETTINGS
@given(batch=st.lists(frames(), max_size=8))
def test_parse_and_frame_agree(py: SimpleNamespace, rs: SimpleNamespace, batch: list[bytes]) -> None:
    for frame in batch:
        message = same_outcome(partial(_parse, frame), py, rs)
        if message is not None:
            assert same_outcome(partial(_frame, message), py, rs) == [frame]
    same_outcome(lambda core: core.parse_messages(batch), py, rs)


@pytest.mark.fast
@SETTINGS
@given(kind=kinds, payload=payloads, reason=st.text(max_size=20))
def test_framers_agree(
    py: SimpleNamespace, rs: SimpleNamespace, kind: MessageKind, payload: bytes, reason: str
) -> None:
    for name in ("frame_sync_step1", "frame_sync_step2", "frame_update", "frame_awareness"):
        assert getattr(py, name)(payload) == getattr(rs, name)(payload)
    try:
        expected = py.frame_auth_denied(reason)
    except UnicodeEncodeError:
        with pytest.raises(UnicodeEncodeError):
            rs.frame_auth_denied(reason)
    else:
        assert rs.frame_auth_denied(reason) == expected
    same_outcome(lambda core: core.frame_messages([Message(kind, payload)]), py, rs)


@pytest.mark.fast
@SETTINGS
@given(value=st.integers(0, 2**80), prefix=st.binary(max_size=3), noise=st.binary(max_size=12))
def test_varints_agree(
    py: SimpleNamespace, rs: SimpleNamespace, value: int, prefix: bytes, noise: bytes
) -> None:
    assert py.encode_var_uint(value) == rs.encode_var_uint(value)
    data = prefix + py.encode_var_uint(value)
    same_outcome(lambda core: core.decode_var_uint(data, len(prefix)), py, rs)
    same_outcome(lambda core: core.decode_var_uint(noise, 0), py, rs)


entries = st.builds(
    AwarenessEntry,
    client_id=st.integers(0, 2**53 - 1) | st.sampled_from([1, 2, 3]),
    clock=st.integers(0, 2**32),
    state=st.sampled_from(["null", "{}", '{"name":"ä😀"}'])
    | st.text(max_size=12).filter(lambda s: s.isprintable()),
)


@pytest.mark.fast
@SETTINGS
@given(updates=st.lists(st.lists(entries, max_size=5), max_size=6), noise=st.binary(max_size=10))
def test_awareness_agrees(
    py: SimpleNamespace, rs: SimpleNamespace, updates: list[list[AwarenessEntry]], noise: bytes
) -> None:
    encoded = [py.encode_awareness(u) for u in updates]
    assert encoded == [rs.encode_awareness(u) for u in updates]
    for update in encoded:
        assert py.decode_awareness(update) == rs.decode_awareness(update)
    assert py.coalesce_awareness(encoded) == rs.coalesce_awareness(encoded)
    same_outcome(lambda core: core.coalesce_awareness([*encoded, noise]), py, rs)
    same_outcome(lambda core: core.decode_awareness(noise), py, rs)


# --- documents -----------------------------------------------------------------------

fractions = st.floats(0, 1, allow_nan=False, exclude_max=True)
texts = st.text(alphabet=st.sampled_from("ab cdé😀\n"), min_size=1, max_size=6)
values = st.integers(-1000, 1000) | st.text(max_size=5) | st.booleans()
operations = st.one_of(
    st.tuples(st.just("insert_text"), st.integers(0, 3), fractions, texts),
    st.tuples(st.just("delete_text"), st.integers(0, 3), fractions, st.integers(1, 4)),
    st.tuples(st.just("set_map"), st.integers(0, 3), st.sampled_from("xyz"), values),
    st.tuples(st.just("delete_map"), st.integers(0, 3), st.sampled_from("xyz")),
    st.tuples(st.just("insert_array"), st.integers(0, 3), fractions, values),
    st.tuples(st.just("delete_array"), st.integers(0, 3), fractions),
    st.tuples(st.just("sync"), st.integers(0, 3), st.integers(0, 3)),
)


def run_session(clients: int, ops: list[tuple[Any, ...]]) -> Session:
    session = Session(clients=clients)
    for op in ops:
        session.run(op)
    return session


@DOC_SETTINGS
@given(
    clients=st.integers(1, 4),
    ops=st.lists(operations, min_size=1, max_size=40),
    seed=st.integers(0, 2**16),
)
@pytest.mark.fast
def test_update_functions_agree(
    py: SimpleNamespace, rs: SimpleNamespace, clients: int, ops: list[tuple[Any, ...]], seed: int
) -> None:
    session = run_session(clients, ops)
    updates = session.updates
    if not updates:
        return
    reference = content(updates)
    native, fallback = rs.merge_updates(updates), py.merge_updates(updates)
    assert content([native]) == reference
    assert content([fallback]) == reference
    assert decode_state_vector(rs.state_vector(native)) == decode_state_vector(py.state_vector(fallback))

    # A shuffled subset leaves gaps: both must keep the same structs pending.
    rng = random.Random(seed)
    subset = rng.sample(updates, k=rng.randint(1, len(updates)))
    native_part, fallback_part = rs.merge_updates(subset), py.merge_updates(subset)
    # (Not compared with applying the subset one by one: yrs then integrates some
    # structs whose earlier clocks are missing, which a merged update keeps pending.)
    assert content([native_part]) == content([fallback_part])
    assert content([native_part, *updates]) == reference

    # Same input bytes: same yrs code on both sides, identical output bytes.
    mid_sv = session.docs[rng.randrange(clients)].get_state()
    assert rs.diff_update(native, mid_sv) == py.diff_update(native, mid_sv)
    assert rs.state_vector(native) == py.state_vector(native)
    assert rs.text_of(native, "t") == py.text_of(native, "t") == reference["roots"]["t"]

    cut = rng.randint(0, len(updates))
    snapshot = rs.merge_updates(updates[:cut])
    assert content([rs.compact(snapshot, updates[cut:])]) == content([py.compact(snapshot, updates[cut:])])


@pytest.mark.fast
@DOC_SETTINGS
@given(data=st.data())
def test_native_survives_mutated_updates(rs: SimpleNamespace, data: st.DataObject) -> None:
    """Flipped and cut bytes give a result or ProtocolError, never a crash or another error."""
    session = run_session(2, data.draw(st.lists(operations, min_size=1, max_size=10)))
    if not session.updates:
        return
    update = bytearray(rs.merge_updates(session.updates))
    for _ in range(data.draw(st.integers(1, 3))):
        update[data.draw(st.integers(0, len(update) - 1))] = data.draw(st.integers(0, 255))
    bad = bytes(update[: data.draw(st.integers(0, len(update)))])
    calls: list[Callable[[], Any]] = [
        lambda: rs.merge_updates([bad, session.updates[0]]),
        lambda: rs.state_vector(bad),
        lambda: rs.diff_update(bad, b"\x00"),
        lambda: rs.text_of(bad, "t"),
        lambda: rs.compact(bad, session.updates[:1]),
        lambda: rs.update_v1_to_v2(bad),
        lambda: rs.update_v2_to_v1(bad),
    ]
    for call in calls:
        with contextlib.suppress(ProtocolError):
            call()


def random_sessions(count: int, seed: int) -> dict[str, list[bytes]]:
    """Seeded random multi-client sessions (hypothesis cannot batch one node call)."""
    rng = random.Random(seed)
    cases: dict[str, list[bytes]] = {}
    for index in range(count):
        clients = rng.randint(1, 4)
        session = Session(clients=clients)
        for _ in range(rng.randint(5, 60)):
            kind = rng.choice(
                ["insert_text"] * 4
                + ["delete_text", "set_map", "delete_map", "insert_array", "delete_array", "sync"]
            )
            i = rng.randrange(clients)
            if kind == "insert_text":
                session.run((kind, i, rng.random(), "".join(rng.choices("ab cé😀", k=rng.randint(1, 5)))))
            elif kind == "delete_text":
                session.run((kind, i, rng.random(), rng.randint(1, 4)))
            elif kind == "set_map":
                session.run((kind, i, rng.choice("xyz"), rng.randint(-5, 5)))
            elif kind == "delete_map":
                session.run((kind, i, rng.choice("xyz")))
            elif kind == "insert_array":
                session.run((kind, i, rng.random(), rng.choice(["v", 1, True])))
            elif kind == "delete_array":
                session.run((kind, i, rng.random()))
            else:
                session.run((kind, i, rng.randrange(clients)))
        if session.updates:
            cases[f"s{index}"] = session.updates
    return cases


def test_yjs_reads_merged_updates_as_pycrdt_does(py: SimpleNamespace, rs: SimpleNamespace) -> None:
    sessions = random_sessions(40, seed=4)
    cases: dict[str, list[bytes]] = {}
    for label, updates in sessions.items():
        cases[f"{label}/native"] = [rs.merge_updates(updates)]
        cases[f"{label}/fallback"] = [py.merge_updates(updates)]
        cases[f"{label}/updates"] = updates
    decoded = yjs_decode(cases)
    for label, updates in sessions.items():
        reference = content(updates)
        yjs_applied = decoded[f"{label}/updates"]["applied"]
        assert yjs_applied == reference, label
        for variant in ("native", "fallback"):
            case = decoded[f"{label}/{variant}"]
            assert case["applied"] == reference, (label, variant)
            # yjs merging our merge again, and its state vector of it
            assert case["merged"] == reference, (label, variant)
        assert decoded[f"{label}/native"]["merged_sv"] == decode_state_vector(
            rs.state_vector(cases[f"{label}/native"][0])
        )
