"""Real editing traces (two authors typing at once) merged by both backends and read by yjs."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pycrdt
import pytest

from load_tests.bench_crdt_traces import CONCURRENT, TEXT_NAME, load_trace, trace_updates
from load_tests.traces import TRACES_DIR, trace_path
from tests.test_crdt_core_support import backend, decode_state_vector, yjs_decode

# The native merge must stay within this factor of the document's own encoding.
MAX_SIZE_RATIO = 1.2


@pytest.fixture(scope="module")
def rs() -> SimpleNamespace:
    return backend("rust")


@pytest.fixture(params=CONCURRENT)
def trace(request: pytest.FixtureRequest) -> str:
    assert trace_path(request.param).exists(), f"trace {request.param} missing in {TRACES_DIR}"
    return str(request.param)


def test_native_merge_of_a_concurrent_trace(rs: SimpleNamespace, trace: str) -> None:
    updates = trace_updates(trace)
    end = load_trace(trace)["endContent"]
    merged = rs.merge_updates(updates)
    assert rs.text_of(merged, TEXT_NAME) == end

    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    for update in updates:
        doc.apply_update(update)
    own = doc.get_update()
    assert len(merged) <= MAX_SIZE_RATIO * len(own)
    assert decode_state_vector(rs.state_vector(merged)) == decode_state_vector(doc.get_state())

    compacted = rs.compact(updates[0], updates[1:])
    assert rs.text_of(compacted, TEXT_NAME) == end
    assert len(compacted) <= len(merged)

    decoded = yjs_decode({"native": [merged]}, roots={TEXT_NAME: "text"})["native"]
    assert decoded["applied"]["roots"][TEXT_NAME] == end
    assert decoded["merged"]["roots"][TEXT_NAME] == end
    assert decoded["applied"]["sv"] == decode_state_vector(doc.get_state())


def test_fallback_merge_of_a_trace_prefix(rs: SimpleNamespace, trace: str) -> None:
    # pycrdt's merge is quadratic: a prefix keeps this test fast.
    updates = trace_updates(trace)[:2000]
    py = backend("python")
    native, fallback = rs.merge_updates(updates), py.merge_updates(updates)
    assert rs.text_of(native, TEXT_NAME) == py.text_of(fallback, TEXT_NAME)
    assert len(native) < len(fallback)
