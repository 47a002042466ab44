"""Real editing traces replayed into one Yjs update per transaction (keystroke).

The traces are the editing-traces collection by Joseph Gentle and contributors
(automerge-paper prepared by Martin Kleppmann), CC BY 4.0, shipped unchanged in
``tests/data/editing-traces`` (attribution in ``tests/data/README.md``). Replaying a long trace through pycrdt takes a while, so the
updates are cached under ``${XDG_CACHE_HOME:-~/.cache}/nova-collab/traces/``.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import struct
from pathlib import Path
from typing import Any

import pycrdt

from load_tests.traces import trace_path

SEQUENTIAL = ("automerge-paper", "seph-blog1")
CONCURRENT = ("friendsforever", "clownschool")
TEXT_NAME = "text"
# Fixed client ids keep the replay, and so every figure derived from it, reproducible.
FIRST_CLIENT_ID = 0x1D_2B_3C_4D_5E
_CACHE_VERSION = 1


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "nova-collab" / "traces"


def load_trace(name: str) -> dict[str, Any]:
    with gzip.open(trace_path(name), "rt", encoding="utf-8") as f:
        trace: dict[str, Any] = json.load(f)
    return trace


def _pack(updates: list[bytes]) -> bytes:
    return b"".join(struct.pack("<I", len(u)) + u for u in updates)


def _unpack(data: bytes) -> list[bytes]:
    updates, offset = [], 0
    while offset < len(data):
        (size,) = struct.unpack_from("<I", data, offset)
        offset += 4
        updates.append(data[offset : offset + size])
        offset += size
    return updates


def trace_updates(name: str) -> list[bytes]:
    """All updates of a trace, one per transaction, from the cache or by replaying it."""
    source = trace_path(name)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    cached = cache_dir() / f"{name}-{digest}-v{_CACHE_VERSION}.bin"
    if cached.exists():
        return _unpack(cached.read_bytes())
    trace = load_trace(name)
    updates = _replay_concurrent(trace) if trace.get("kind") == "concurrent" else _replay_sequential(trace)
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(".tmp")
    tmp.write_bytes(_pack(updates))
    tmp.replace(cached)
    return updates


class _Editor:
    """Applies code-point patches to a pycrdt text, which indexes in UTF-8 bytes."""

    def __init__(self, text: pycrdt.Text) -> None:
        self.text = text
        self.mirror = str(text)

    def apply(self, patches: list[list[Any]]) -> None:
        for position, delete_count, insert in patches:
            mirror = self.mirror
            if mirror.isascii():
                start, size = position, delete_count
            else:
                start = len(mirror[:position].encode())
                size = len(mirror[position : position + delete_count].encode())
            if size:
                del self.text[start : start + size]
            if insert:
                self.text.insert(start, insert)
            self.mirror = mirror[:position] + insert + mirror[position + delete_count :]


def _replay_sequential(trace: dict[str, Any]) -> list[bytes]:
    doc: pycrdt.Doc[Any] = pycrdt.Doc(client_id=FIRST_CLIENT_ID)
    text = doc.get(TEXT_NAME, type=pycrdt.Text)
    text.insert(0, trace["startContent"])
    editor = _Editor(text)
    updates: list[bytes] = []
    subscription = doc.observe(lambda event: updates.append(event.update))
    for txn in trace["txns"]:
        with doc.transaction():
            editor.apply(txn["patches"])
    doc.unobserve(subscription)
    if str(text) != trace["endContent"]:
        raise RuntimeError("sequential replay did not reproduce endContent")
    return updates


def _replay_concurrent(trace: dict[str, Any]) -> list[bytes]:
    """One document per agent; before a transaction its agent's document gets every
    update of the transaction's ancestry it lacks, in causal order."""
    agents = trace["numAgents"]
    docs: list[pycrdt.Doc[Any]] = [pycrdt.Doc(client_id=FIRST_CLIENT_ID + i) for i in range(agents)]
    editors = [_Editor(doc.get(TEXT_NAME, type=pycrdt.Text)) for doc in docs]
    txns = trace["txns"]
    updates: list[bytes] = []
    recorded: list[bytes] = []
    subscriptions = [doc.observe(lambda event: recorded.append(event.update)) for doc in docs]
    applied: list[set[int]] = [set() for _ in range(agents)]
    for index, txn in enumerate(txns):
        agent = txn["agent"]
        doc, seen = docs[agent], applied[agent]
        stack = [p for p in txn["parents"] if p not in seen]
        order: list[int] = []
        while stack:
            current = stack[-1]
            missing = [p for p in txns[current]["parents"] if p not in seen and p not in order]
            if missing:
                stack.extend(missing)
                continue
            stack.pop()
            if current not in seen and current not in order:
                order.append(current)
        for ancestor in order:
            doc.apply_update(updates[ancestor])
            seen.add(ancestor)
        editors[agent].mirror = str(editors[agent].text)
        recorded.clear()
        with doc.transaction():
            editors[agent].apply(txn["patches"])
        if len(recorded) != 1:
            raise RuntimeError(f"transaction {index} produced {len(recorded)} updates")
        updates.append(recorded[0])
        seen.add(index)
    for doc, subscription in zip(docs, subscriptions, strict=True):
        doc.unobserve(subscription)
    final: pycrdt.Doc[Any] = pycrdt.Doc()
    for update in updates:
        final.apply_update(update)
    if str(final.get(TEXT_NAME, type=pycrdt.Text)) != trace["endContent"]:
        raise RuntimeError("concurrent replay did not reproduce endContent")
    return updates
