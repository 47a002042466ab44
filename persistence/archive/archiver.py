"""Archiver: continuous archiving of changed documents, and reading archived documents back.

A pass lists the store's documents and archives each one whose ``last_seq`` moved since
its last archived manifest: export the rows as stored, write the blobs the archive does
not have yet, then the manifest (``manifest.py``). A pass that fails part-way (object
store down, process killed) leaves every manifest pointing at complete objects: at worst
some new objects are not referenced yet, and the next pass writes the manifest.

Restoring reads a manifest and its objects (each checked against its digest) back into an
export: ``restore_store`` rebuilds an empty store from the whole archive and checks every
document equal; ``version_parts`` gives the parts of one document at a point in time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any

from persistence.archive.base import ObjectMissing, ObjectStore
from persistence.archive.manifest import (
    ArchiveCorrupt,
    Manifest,
    document_prefix,
    export_of,
    manifest_key,
    parse_manifest,
    plan,
    verified_object,
)
from persistence.base import DocumentExport, Store, StoredDocument, UnknownVersion

logger = logging.getLogger(__name__)

PARALLEL_PUTS = 8  # object writes in flight per document
PARALLEL_DOCUMENTS = 8  # documents archived (or read back) at once


@dataclass(slots=True)
class PassReport:
    documents: int = 0  # archived in this pass
    unchanged: int = 0
    objects: int = 0  # written (new)
    bytes: int = 0
    seconds: float = 0.0


@dataclass(slots=True)
class RestoreReport:
    documents: int = 0
    verified: int = 0
    rows: int = 0
    mismatches: list[str] = field(default_factory=list)


class Archiver:
    def __init__(self, store: Store, objects: ObjectStore) -> None:
        self.store = store
        self.objects = objects
        self._archived: dict[str, int] = {}  # document -> last_seq of its manifest
        self._known: dict[str, set[str]] = {}  # document -> object keys known to exist
        self._manifests: dict[str, Manifest] = {}  # document -> its newest manifest
        self._seeded = False

    async def _seed(self) -> None:
        """Learn what earlier runs archived (once per process)."""
        if self._seeded:
            return
        for manifest in await self.manifests():
            self._archived[manifest.document] = manifest.last_seq
            self._known[manifest.document] = set(manifest.object_keys)
            self._manifests[manifest.document] = manifest
        self._seeded = True

    async def run_pass(self) -> PassReport:
        """Archive every document that changed since its last manifest."""
        started = time.perf_counter()
        await self._seed()
        report = PassReport()
        changed = []
        for info in await self.store.list_documents():
            if self._archived.get(info.name) == info.last_seq:
                report.unchanged += 1
            else:
                changed.append(info.name)
        gate = asyncio.Semaphore(PARALLEL_DOCUMENTS)

        async def archive(name: str) -> None:
            async with gate:
                objects, size = await self.archive_document(name)
            report.documents += 1
            report.objects += objects
            report.bytes += size

        await _all(archive(name) for name in changed)
        report.seconds = time.perf_counter() - started
        return report

    async def archive_document(self, document: str) -> tuple[int, int]:
        """Write the document's new objects, then its manifest; return (objects, bytes) written."""
        export = await self.store.export_document(document)
        if not export.updates and not export.checkpoints:
            return 0, 0
        planned = plan(export, time.time(), self._manifests.get(document))
        known = self._known.setdefault(document, set())
        missing = [blob for blob in planned.blobs if blob.key not in known]
        gate = asyncio.Semaphore(PARALLEL_PUTS)

        async def put(key: str, data: bytes) -> None:
            async with gate:
                await self.objects.put(key, data)

        await _all(put(blob.key, blob.data) for blob in missing)
        known.update(blob.key for blob in missing)
        await self.objects.put(manifest_key(document), planned.manifest)  # last: names only what exists
        self._archived[document] = planned.last_seq
        self._manifests[document] = parse_manifest(planned.manifest)
        return len(missing) + 1, sum(len(blob.data) for blob in missing) + len(planned.manifest)

    # -- reading back --------------------------------------------------------------------

    async def manifests(self) -> list[Manifest]:
        keys = [key for key in await self.objects.list("docs/") if key.endswith("/manifest.json")]
        found: dict[str, Manifest] = {}
        gate = asyncio.Semaphore(PARALLEL_DOCUMENTS)

        async def read(key: str) -> None:
            async with gate:
                found[key] = parse_manifest(await self.objects.get(key))

        await _all(read(key) for key in keys)
        return [found[key] for key in keys]

    async def manifest(self, document: str) -> Manifest | None:
        try:
            return parse_manifest(await self.objects.get(manifest_key(document)))
        except ObjectMissing:
            return None

    async def read_export(self, manifest: Manifest) -> DocumentExport:
        objects: dict[str, bytes] = {}

        async def read(key: str) -> None:
            objects[key] = verified_object(key, await self.objects.get(key))

        await _all(read(key) for key in set(manifest.object_keys))
        return export_of(manifest, objects)

    async def erase(self, document: str) -> int:
        """Delete the document's archive: the manifest first, so nothing ever names a deleted object."""
        removed = await self.objects.delete([manifest_key(document)])
        removed += await self.objects.delete(await self.objects.list(document_prefix(document)))
        self._archived.pop(document, None)
        self._known.pop(document, None)
        self._manifests.pop(document, None)
        return removed


async def _all(calls: Iterable[Coroutine[Any, Any, None]]) -> None:
    """Run ``calls`` concurrently (each bounds itself); the first failure is raised as itself."""
    try:
        async with asyncio.TaskGroup() as group:
            for call in calls:
                group.create_task(call)
    except* Exception as failed:  # one failure stands for the batch (the others were cancelled)
        raise failed.exceptions[0] from None


async def check_archive(archiver: Archiver) -> tuple[int, list[str]]:
    """Read every manifest and every object it names, checking digests: (documents, problems)."""
    problems: list[str] = []
    manifests = await archiver.manifests()
    for manifest in manifests:
        for key in manifest.object_keys:
            try:
                verified_object(key, await archiver.objects.get(key))
            except (ObjectMissing, ArchiveCorrupt) as exc:
                problems.append(f"{manifest.document!r}: {exc}")
    return len(manifests), problems


async def restore_store(archiver: Archiver, target: Store) -> RestoreReport:
    """Rebuild every archived document into ``target`` (which must hold none of them) and check
    each one equal to its archive, history included."""
    report = RestoreReport()
    manifests = await archiver.manifests()
    # Objects are fetched a few documents ahead of the (sequential) writes into the store.
    exports: asyncio.Queue[DocumentExport | None] = asyncio.Queue(maxsize=PARALLEL_DOCUMENTS)

    async def fetch() -> None:
        gate = asyncio.Semaphore(PARALLEL_DOCUMENTS)

        async def one(manifest: Manifest) -> None:
            async with gate:
                export = await archiver.read_export(manifest)
            await exports.put(export)

        await _all(one(manifest) for manifest in manifests)
        await exports.put(None)

    async def write() -> None:
        while (export := await exports.get()) is not None:
            await target.import_document(export)
            report.documents += 1
            report.rows += len(export.updates) + len(export.checkpoints)
            if await target.export_document(export.document) == export:
                report.verified += 1
            else:
                report.mismatches.append(export.document)

    await _all([fetch(), write()])
    return report


def version_parts(
    export: DocumentExport, *, seq: int | None = None, at: float | None = None
) -> tuple[int, StoredDocument]:
    """The parts (as stored) that rebuild the document right after ``seq``, or as it was at
    time ``at`` (the newest update at or before it); the same rules as ``Store.read_version``."""
    if (seq is None) == (at is None):
        raise ValueError("give exactly one of seq or at")
    if seq is None:
        candidates = [u.seq for u in export.updates if at is not None and u.created_at <= at]
        if not candidates:
            raise UnknownVersion(f"{export.document!r} has no version at or before {at}")
        seq = max(candidates)
    if not any(u.seq == seq for u in export.updates):
        raise UnknownVersion(f"{export.document!r} has no version {seq} in the archive")
    base = max([c for c in export.checkpoints if c.seq <= seq], key=lambda c: c.seq, default=None)
    floor = base.seq if base else 0
    tail = [u for u in sorted(export.updates, key=lambda u: u.seq) if floor < u.seq <= seq]
    if any(u.payload is None for u in tail):
        raise UnknownVersion(
            f"version {seq} of {export.document!r} was compacted away before it was archived"
        )
    parts = [u.payload for u in tail if u.payload is not None]
    return seq, StoredDocument(base.snapshot if base else None, parts, seq)
