"""Row helpers shared by the SQL adapters: integrity checks and history assembly."""

from __future__ import annotations

import zlib
from collections.abc import Iterable

from persistence.base import CorruptDocument, DocumentExport, VersionInfo


def checksum(data: bytes) -> int:
    """CRC-32 of a payload, stored beside it to detect rows damaged on disk or by hand."""
    return zlib.crc32(data)


def verified(document: str, what: str, value: object, expected_crc: object) -> bytes:
    """``value`` as bytes if it is an intact payload, else CorruptDocument naming the row."""
    if not isinstance(value, bytes | bytearray | memoryview):
        raise CorruptDocument(f"document {document!r}: {what} is {type(value).__name__}, not bytes")
    data = bytes(value)
    if not isinstance(expected_crc, int) or checksum(data) != expected_crc:
        raise CorruptDocument(f"document {document!r}: {what} fails its checksum ({len(data)} bytes)")
    return data


def merge_history(
    checkpoints: Iterable[VersionInfo], updates: Iterable[VersionInfo], limit: int
) -> list[VersionInfo]:
    """Checkpoints and not-yet-compacted updates as one list, newest first."""
    versions = {version.seq: version for version in updates}
    versions.update({version.seq: version for version in checkpoints})
    return [versions[seq] for seq in sorted(versions, reverse=True)][:limit]


UpdateRow = tuple[int, str, bytes | None, int, int, str | None, str, float]


def log_rows(export: DocumentExport) -> list[UpdateRow]:
    """An export's log as (seq, document, payload, crc, update_bytes, actor, node, created_at) rows.

    A compacted row (no payload) gets the CRC of nothing: nothing reads it again."""
    return [
        (
            u.seq,
            export.document,
            u.payload,
            checksum(u.payload or b""),
            u.update_bytes,
            u.actor,
            u.origin_node,
            u.created_at,
        )
        for u in export.updates
    ]
