"""The archive's object layout and encodings (pure functions, no I/O).

Per document, under ``docs/<hash of the name>/``:

- ``objects/<sha256>``: immutable, content-addressed blobs: a checkpoint snapshot as stored,
  or a *log segment* (the update-log rows between two checkpoints, or after the last one),
  JSON. A segment closed by a checkpoint never changes again, so later passes find its
  object already there; only the open tail segment is new each time.
- ``manifest.json``: what the document consists of (its checkpoints, segments and wrapped
  data key), written after every object it names, so it never points at a missing object.

Everything is copied as stored: with encryption on, payloads and snapshots are ciphertext
and the data key is wrapped by a master key, so the archive holds no plaintext either.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from persistence.base import DocumentExport, ExportedCheckpoint, ExportedUpdate, WrappedDataKey

FORMAT = 1
MANIFEST = "manifest.json"


class ArchiveCorrupt(Exception):
    """An object does not match its digest or a manifest does not parse."""


def document_prefix(document: str) -> str:
    """Names can hold any character: the folder is a hash, the name is in the manifest."""
    return "docs/" + hashlib.sha256(document.encode()).hexdigest()[:40] + "/"


def object_key(document: str, data: bytes) -> str:
    return document_prefix(document) + "objects/" + hashlib.sha256(data).hexdigest()


def manifest_key(document: str) -> str:
    return document_prefix(document) + MANIFEST


def verified_object(key: str, data: bytes) -> bytes:
    if hashlib.sha256(data).hexdigest() != key.rsplit("/", 1)[-1]:
        raise ArchiveCorrupt(f"object {key} does not match its digest")
    return data


@dataclass(frozen=True, slots=True)
class Blob:
    key: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Planned:
    """One document's archive: the blobs it needs, then its manifest."""

    blobs: list[Blob]
    manifest: bytes
    last_seq: int


def plan(export: DocumentExport, archived_at: float, previous: Manifest | None = None) -> Planned:
    """Cut an export into content-addressed blobs and a manifest naming them. Checkpoints the
    previous manifest has and the store has since pruned stay in the archive (older history)."""
    blobs: list[Blob] = []
    current = {c.seq for c in export.checkpoints}
    oldest = min(current, default=None)
    checkpoints = [
        kept
        for kept in (previous.checkpoints if previous is not None else [])
        if kept["seq"] not in current and (oldest is None or kept["seq"] < oldest)
    ]
    for checkpoint in export.checkpoints:
        key = object_key(export.document, checkpoint.snapshot)
        blobs.append(Blob(key, checkpoint.snapshot))
        checkpoints.append(
            {
                "seq": checkpoint.seq,
                "created_at": checkpoint.created_at,
                "merged": checkpoint.merged,
                "actors": list(checkpoint.actors),
                "object": key,
                "bytes": len(checkpoint.snapshot),
            }
        )
    segments = []
    for rows in _segments(export.updates, [c.seq for c in export.checkpoints]):
        data = _encode_segment(export.document, rows)
        key = object_key(export.document, data)
        blobs.append(Blob(key, data))
        segments.append(
            {
                "first_seq": rows[0].seq,
                "last_seq": rows[-1].seq,
                "rows": len(rows),
                "object": key,
                "bytes": len(data),
            }
        )
    checkpoints.sort(key=lambda c: int(c["seq"]))
    manifest = {
        "format": FORMAT,
        "document": export.document,
        "last_seq": export.last_seq,
        "archived_at": archived_at,
        "data_key": _key_json(export.data_key),
        "checkpoints": checkpoints,
        "segments": segments,
    }
    return Planned(blobs, json.dumps(manifest, sort_keys=True).encode(), export.last_seq)


def _segments(updates: Sequence[ExportedUpdate], boundaries: Sequence[int]) -> list[list[ExportedUpdate]]:
    """Rows cut at checkpoint seqs: (-, cp1], (cp1, cp2], ..., (cpN, -)."""
    segments: list[list[ExportedUpdate]] = []
    edges = sorted(boundaries)
    current: list[ExportedUpdate] = []
    edge_index = 0
    for row in sorted(updates, key=lambda u: u.seq):
        while edge_index < len(edges) and row.seq > edges[edge_index]:
            if current:
                segments.append(current)
                current = []
            edge_index += 1
        current.append(row)
    if current:
        segments.append(current)
    return segments


def _encode_segment(document: str, rows: Sequence[ExportedUpdate]) -> bytes:
    encoded = [
        [
            row.seq,
            None if row.payload is None else base64.b64encode(row.payload).decode(),
            row.update_bytes,
            row.actor,
            row.origin_node,
            row.created_at,
        ]
        for row in rows
    ]
    return json.dumps({"document": document, "rows": encoded}, sort_keys=True).encode()


def decode_segment(data: bytes) -> list[ExportedUpdate]:
    try:
        rows = json.loads(data)["rows"]
        return [
            ExportedUpdate(seq, None if payload is None else base64.b64decode(payload), size, actor, node, at)
            for seq, payload, size, actor, node, at in rows
        ]
    except (ValueError, KeyError, TypeError) as exc:
        raise ArchiveCorrupt(f"a log segment does not decode: {exc}") from exc


def _key_json(key: WrappedDataKey | None) -> dict[str, Any] | None:
    if key is None:
        return None
    return {
        "key_id": key.key_id,
        "master_key_id": key.master_key_id,
        "wrapped": base64.b64encode(key.wrapped).decode(),
        "created_at": key.created_at,
    }


@dataclass(frozen=True, slots=True)
class Manifest:
    document: str
    last_seq: int
    archived_at: float
    data_key: WrappedDataKey | None
    checkpoints: list[dict[str, Any]]
    segments: list[dict[str, Any]]

    @property
    def object_keys(self) -> list[str]:
        return [c["object"] for c in self.checkpoints] + [s["object"] for s in self.segments]


def parse_manifest(data: bytes) -> Manifest:
    try:
        raw = json.loads(data)
        if raw.get("format") != FORMAT:
            raise ArchiveCorrupt(f"manifest format {raw.get('format')!r} is not {FORMAT}")
        key = raw["data_key"]
        document = raw["document"]
        wrapped = (
            None
            if key is None
            else WrappedDataKey(
                document,
                key["key_id"],
                key["master_key_id"],
                base64.b64decode(key["wrapped"]),
                key["created_at"],
            )
        )
        return Manifest(
            document, raw["last_seq"], raw["archived_at"], wrapped, raw["checkpoints"], raw["segments"]
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise ArchiveCorrupt(f"a manifest does not parse: {exc}") from exc


def export_of(manifest: Manifest, objects: dict[str, bytes]) -> DocumentExport:
    """Rebuild the export a manifest describes from its (verified) objects."""
    updates: list[ExportedUpdate] = []
    for segment in manifest.segments:
        updates += decode_segment(objects[segment["object"]])
    checkpoints = [
        ExportedCheckpoint(c["seq"], objects[c["object"]], c["created_at"], c["merged"], list(c["actors"]))
        for c in manifest.checkpoints
    ]
    return DocumentExport(manifest.document, updates, checkpoints, manifest.data_key)
