"""The Store's change-event part (cursors, leases, log reads, delivery log, dead letters),
run over every adapter like the rest of the contract (tests/test_store_contract.py)."""

from __future__ import annotations

import time

import crdt_core
from persistence.base import AuditEvent, DeadLetter, DeliveryRecord, Store
from tests.test_store_contract import Backend, backend, entry, opened, store, typed

__all__ = ["backend", "store"]  # fixtures shared with the main contract suite
# Their memory and SQLite cases are in the fast tier (`pytest.mark.fast` on the backend params).


async def test_pending_events_follow_the_cursor_per_sink(store: Store) -> None:
    updates, _ = typed(["a", "b", "c"])
    seqs = await store.append([entry("one", u) for u in updates])
    other = await store.append([entry("two", updates[0])])
    pending = {p.document: p for p in await store.pending_events("kafka")}
    assert pending["one"].cursor == 0 and pending["one"].last_seq == seqs[-1] and pending["one"].pending == 3
    assert pending["two"].last_seq == other[0]
    await store.advance_event_cursors("kafka", {"one": seqs[1]})
    await store.advance_event_cursors("kafka", {"one": seqs[0]})  # never backwards
    assert await store.event_cursor("kafka", "one") == seqs[1]
    pending = {p.document: p for p in await store.pending_events("kafka")}
    assert pending["one"].pending == 1 and pending["one"].cursor == seqs[1]
    assert {p.document for p in await store.pending_events("webhook:x")} == {"one", "two"}  # own cursor
    assert [p.document for p in await store.pending_events("kafka", after_seq=other[0])] == []
    await store.advance_event_cursors("kafka", {"one": seqs[-1], "two": other[0]})
    assert await store.pending_events("kafka") == []


async def test_read_log_returns_rows_in_order_and_marks_compacted_ones(store: Store) -> None:
    updates, _ = typed(["x", "y", "z"])
    seqs = await store.append([entry("doc", u, actor=f"a{i}") for i, u in enumerate(updates)])
    rows = await store.read_log("doc", 0, 10)
    assert [r.seq for r in rows] == seqs and [r.update for r in rows] == updates
    assert [r.actor for r in rows] == ["a0", "a1", "a2"]
    assert [r.seq for r in await store.read_log("doc", seqs[0], 1)] == [seqs[1]]
    result = await store.compact("doc", crdt_core.merge_updates, upto=seqs[1])  # held at seqs[1]
    assert result is not None and result.covered_seq == seqs[1]
    rows = await store.read_log("doc", 0, 10)
    assert [r.update is None for r in rows] == [True, True, False]
    assert await store.compact("doc", crdt_core.merge_updates, upto=seqs[0]) is None  # nothing to cover


async def test_lease_has_one_live_holder_and_expires(backend: Backend) -> None:
    async with opened(backend) as first, opened(backend) as second:
        assert await first.acquire_lease("kafka/partition-0", "node-a", 30)
        assert not await second.acquire_lease("kafka/partition-0", "node-b", 30)
        assert await first.acquire_lease("kafka/partition-0", "node-a", 0.2)  # renewal
        deadline = time.monotonic() + 5
        while not await second.acquire_lease("kafka/partition-0", "node-b", 30):
            assert time.monotonic() < deadline, "an expired lease was not taken over"
        assert not await first.acquire_lease("kafka/partition-0", "node-a", 30)
        await second.release_lease("kafka/partition-0", "node-b")
        assert await first.acquire_lease("kafka/partition-0", "node-a", 30)


async def test_audit_reads_by_id(store: Store) -> None:
    await store.append_audit([AuditEvent(time.time(), "restore", "ops", "doc", "n", "to 3")])
    await store.append_audit([AuditEvent(time.time(), "revoke", "ops", None, "n", "token t")])
    records = await store.read_audit(0, 10)
    assert [r.event.action for r in records] == ["restore", "revoke"]
    assert [r.event.action for r in await store.read_audit(records[0].id, 10)] == ["revoke"]


async def test_delivery_log_and_dead_letters(store: Store) -> None:
    now = time.time()
    await store.record_deliveries(
        [
            DeliveryRecord("webhook:a", "doc@1", "document.changed", 1, now, False, 500, "HTTP 500", 3.0),
            DeliveryRecord("webhook:a", "doc@1", "document.changed", 2, now, True, 204, "", 2.0),
            DeliveryRecord("webhook:b", "doc@1", "document.changed", 1, now, True, 200, "", 1.0),
        ]
    )
    log = await store.deliveries("webhook:a")
    assert [(r.attempt, r.ok, r.status) for r in log] == [(2, True, 204), (1, False, 500)]
    letter = DeadLetter(
        0, "webhook:a", "doc@2", "document.changed", "doc", '{"id":"doc@2"}', "refused", 5, now
    )
    first = await store.add_dead_letter(letter)
    second = await store.add_dead_letter(
        DeadLetter(0, "webhook:b", "x@3", "document.changed", "x", "{}", "e", 5, now)
    )
    assert [d.id for d in await store.dead_letters()] == [second, first]
    assert [d.event_id for d in await store.dead_letters("webhook:a")] == ["doc@2"]
    removed = await store.remove_dead_letter(first)
    assert removed is not None and removed.payload == '{"id":"doc@2"}' and removed.attempts == 5
    assert await store.remove_dead_letter(first) is None
