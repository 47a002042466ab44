"""EncryptedStore: envelope encryption as a layer over any Store adapter.

Everything the hub writes about a document's content goes through here sealed with the
document's data key (AES-256-GCM, ``envelope.py``): update log payloads on ``append``,
checkpoint snapshots inside ``compact`` (the merge function is wrapped: open the inputs,
merge, seal the result). Metadata stays in the clear: document names, seqs, times,
actors, sizes, the audit log. Data keys are created on a document's first append, kept
wrapped by the current master key in the store's ``data_keys`` table, and held unwrapped
in a bounded in-memory cache.

Start-up refuses (``EncryptionError``, a StoreError) when a master key the data needs is
missing or wrong, or when the store holds documents written without encryption; a store
opened without a key provider refuses when it holds encrypted documents
(``check_plaintext_mode``). So plaintext is never silently written next to ciphertext.
"""

from __future__ import annotations

import asyncio
import base64
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from persistence.base import (
    ActivityEntry,
    CompactionResult,
    CorruptDocument,
    DocumentExport,
    LogEntry,
    LoggedUpdate,
    MergeFunction,
    Store,
    StoredDocument,
    StoreError,
    TieredDocument,
    VersionInfo,
    WrappedDataKey,
)
from persistence.encryption.envelope import OVERHEAD, DataKey, UnreadablePayload, new_data_key, rewrap, unwrap
from persistence.encryption.keys import KeyProvider, MasterKeyError
from persistence.layer import StoreLayer

DATA_KEY_CACHE = 10_000  # unwrapped data keys held in memory (LRU)
OFFLOAD_BYTES = 1 << 20  # seal batches larger than this on a worker thread


class EncryptionError(StoreError):
    """The store cannot be used with the configured keys (missing, wrong, or mixed data)."""


class EncryptedStore(StoreLayer):
    def __init__(self, inner: Store, keys: KeyProvider, cache_size: int = DATA_KEY_CACHE) -> None:
        self.inner = inner
        self.keys = keys
        self._cache: OrderedDict[str, DataKey] = OrderedDict()
        self._cache_size = cache_size

    def __repr__(self) -> str:
        return f"EncryptedStore({self.inner!r}, {self.keys.describe()})"

    # -- lifecycle ------------------------------------------------------------------

    async def open(self) -> None:
        await self.inner.open()
        try:
            await self._check_keys()
        except BaseException:
            await self.inner.close()
            raise

    async def _check_keys(self) -> None:
        try:
            self.keys.current()
            records = await self.inner.data_keys()
            checked: set[str] = set()
            for record in records:  # one unwrap per master key proves that key right
                if record.master_key_id not in checked:
                    unwrap(record, self.keys.get(record.master_key_id))
                    checked.add(record.master_key_id)
        except MasterKeyError as exc:
            raise EncryptionError(f"encryption at rest: {exc}") from exc
        keyed = {record.document for record in records}
        names = {info.name for info in await self.inner.list_documents()}
        names |= {deleted.name for deleted in await self.inner.deleted_documents()}
        names -= {tiered.name for tiered in await self.inner.tiered_documents()}  # keys in the archive
        plain = sorted(names - keyed)
        if plain:
            raise EncryptionError(
                f"encryption at rest: {len(plain)} stored documents have no data key (written without "
                f"encryption), e.g. {plain[0]!r}; refusing to mix plaintext and ciphertext"
            )

    async def close(self) -> None:
        self._cache.clear()
        await self.inner.close()

    # -- data keys ------------------------------------------------------------------

    def _remember(self, key: DataKey) -> DataKey:
        self._cache[key.document] = key
        self._cache.move_to_end(key.document)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return key

    async def _key(self, document: str, *, create: bool) -> DataKey | None:
        cached = self._cache.get(document)
        if cached is not None:
            self._cache.move_to_end(document)
            return cached
        record = await self.inner.data_key(document)
        if record is None:
            if not create:
                return None
            fresh, wrapped = new_data_key(document, self.keys.current())
            record = await self.inner.add_data_key(wrapped)
            if record == wrapped:
                return self._remember(fresh)
            # Another writer created the document's key first: use theirs.
        try:
            return self._remember(unwrap(record, self.keys.get(record.master_key_id)))
        except MasterKeyError as exc:
            raise EncryptionError(f"document {document!r}: {exc}") from exc

    async def _reading_key(self, document: str) -> DataKey:
        key = await self._key(document, create=False)
        if key is None:
            raise CorruptDocument(f"document {document!r} has stored rows but no data key")
        return key

    # -- content --------------------------------------------------------------------

    async def append(self, entries: Sequence[LogEntry]) -> list[int]:
        keys = {}
        for document in {entry.document for entry in entries}:
            key = await self._key(document, create=True)
            assert key is not None
            keys[document] = key

        def seal_all() -> list[LogEntry]:
            # The constructor, not dataclasses.replace: this runs per update on the commit path.
            return [
                LogEntry(e.document, keys[e.document].seal(e.update), e.actor, e.origin_node, e.timestamp)
                for e in entries
            ]

        big = sum(len(entry.update) for entry in entries) > OFFLOAD_BYTES
        sealed = await asyncio.to_thread(seal_all) if big else seal_all()
        return await self.inner.append(sealed)

    async def _opened(self, document: str, stored: StoredDocument) -> StoredDocument:
        if stored.is_empty:
            return stored
        key = await self._reading_key(document)

        def open_all() -> StoredDocument:
            try:
                snapshot = key.open(stored.snapshot) if stored.snapshot is not None else None
                return StoredDocument(snapshot, [key.open(part) for part in stored.tail], stored.last_seq)
            except UnreadablePayload as exc:
                raise CorruptDocument(f"document {document!r}: {exc}") from exc

        size = stored.size_bytes
        return await asyncio.to_thread(open_all) if size > OFFLOAD_BYTES else open_all()

    async def load(self, document: str) -> StoredDocument:
        return await self._opened(document, await self.inner.load(document))

    async def read_version(self, document: str, seq: int) -> StoredDocument:
        return await self._opened(document, await self.inner.read_version(document, seq))

    async def compact(
        self, document: str, merge: MergeFunction, upto: int | None = None
    ) -> CompactionResult | None:
        key = await self._key(document, create=False)
        if key is None:
            return None  # nothing stored yet

        def sealed_merge(parts: Sequence[bytes]) -> bytes:
            return key.seal(merge([key.open(part) for part in parts]))

        try:
            result = await self.inner.compact(document, sealed_merge, upto)
        except UnreadablePayload as exc:
            raise CorruptDocument(f"document {document!r}: {exc}") from exc
        return None if result is None else replace(result, snapshot_bytes=_plain_size(result.snapshot_bytes))

    # -- pass-through -----------------------------------------------------------------

    # Sizes in history and activity are of the content, as without encryption.

    async def history(self, document: str, limit: int = 100) -> list[VersionInfo]:
        versions = await self.inner.history(document, limit)
        return [replace(v, update_bytes=_plain_size(v.update_bytes)) for v in versions]

    async def activity(self, document: str, limit: int = 100) -> list[ActivityEntry]:
        entries = await self.inner.activity(document, limit)
        return [replace(e, update_bytes=_plain_size(e.update_bytes)) for e in entries]

    async def erase(self, document: str) -> int:
        """Erase the rows and the data key (crypto-shredding: any copy of the ciphertext left
        in database pages, WAL segments or backups can no longer be opened)."""
        self._cache.pop(document, None)
        return await self.inner.erase(document)

    async def tier_out(self, tiered: TieredDocument) -> bool:
        self._cache.pop(tiered.name, None)
        return await self.inner.tier_out(tiered)

    async def import_document(self, export: DocumentExport) -> None:
        self._cache.pop(export.document, None)
        await self.inner.import_document(export)

    # -- change events: log payloads are opened for the publisher, the rest passes through ----

    async def read_log(self, document: str, after_seq: int, limit: int) -> list[LoggedUpdate]:
        rows = await self.inner.read_log(document, after_seq, limit)
        if not any(row.update is not None for row in rows):
            return rows
        key = await self._reading_key(document)
        try:
            return [row if row.update is None else replace(row, update=key.open(row.update)) for row in rows]
        except UnreadablePayload as exc:
            raise CorruptDocument(f"document {document!r}: {exc}") from exc


def keys_of(store: Store) -> KeyProvider | None:
    """The master keys of an encrypted store, None for a plain one."""
    return store.keys if isinstance(store, EncryptedStore) else None


def open_with_key(
    stored: StoredDocument, record: WrappedDataKey | None, keys: KeyProvider | None
) -> StoredDocument:
    """Parts read outside a store (an archive): opened with their wrapped data key, or as
    they are when they were written without encryption."""
    if record is None:
        return stored
    if keys is None:
        raise EncryptionError(f"{record.document!r} was archived encrypted: a master key is needed")
    try:
        key = unwrap(record, keys.get(record.master_key_id))
        snapshot = key.open(stored.snapshot) if stored.snapshot is not None else None
        return StoredDocument(snapshot, [key.open(part) for part in stored.tail], stored.last_seq)
    except MasterKeyError as exc:
        raise EncryptionError(f"{record.document!r}: {exc}") from exc
    except UnreadablePayload as exc:
        raise CorruptDocument(f"archived {record.document!r}: {exc}") from exc


def _plain_size(stored_bytes: int) -> int:
    return max(0, stored_bytes - OVERHEAD)


class IndexTextSealer:
    """Seals search-index chunk text with the document's data key, so erasing the document
    (its data key) makes any copy the vector store still holds unreadable.

    Called from the vector store's worker threads; data keys come from the store's event
    loop (``loop``), which is free while those threads work."""

    PREFIX = "nve1:"

    def __init__(self, store: EncryptedStore, loop: asyncio.AbstractEventLoop) -> None:
        self._store = store
        self._loop = loop

    def _key(self, document: str, *, create: bool) -> DataKey | None:
        cached = self._store._cache.get(document)
        if cached is not None:
            return cached
        future = asyncio.run_coroutine_threadsafe(self._store._key(document, create=create), self._loop)
        return future.result(timeout=60)

    def seal(self, document: str, text: str) -> str:
        key = self._key(document, create=True)
        assert key is not None
        return self.PREFIX + base64.b64encode(key.seal(text.encode())).decode()

    def open(self, document: str, sealed: str) -> str | None:
        if not sealed.startswith(self.PREFIX):
            return None  # written without encryption: not served from an encrypted hub
        key = self._key(document, create=False)
        if key is None:
            return None
        try:
            return key.open(base64.b64decode(sealed[len(self.PREFIX) :])).decode()
        except (UnreadablePayload, ValueError):
            return None


def text_sealer(store: Store, loop: asyncio.AbstractEventLoop) -> IndexTextSealer | None:
    """The search index's sealer when ``store`` is encrypted, else None (text kept as is)."""
    return IndexTextSealer(store, loop) if isinstance(store, EncryptedStore) else None


async def check_plaintext_mode(store: Store) -> None:
    """For an opened store: if it is NOT encrypted, refuse when it holds encrypted documents."""
    if isinstance(store, EncryptedStore):
        return  # checked its keys when it opened
    records = await store.data_keys()
    if records:
        raise EncryptionError(
            f"the store holds {len(records)} encrypted documents (e.g. {records[0].document!r}) but no "
            "master key is configured (--master-key-file or NOVA_MASTER_KEYS)"
        )


@dataclass(slots=True)
class VerifyReport:
    documents: int = 0
    rows: int = 0
    failures: list[str] = field(default_factory=list)


async def verify_store(store: Store, keys: KeyProvider) -> VerifyReport:
    """Open every stored payload and checkpoint of every document with the current keys."""
    report = VerifyReport()
    names = {info.name for info in await store.list_documents()}
    names |= {deleted.name for deleted in await store.deleted_documents()}
    for name in sorted(names):
        report.documents += 1
        export = await store.export_document(name)
        if export.data_key is None:
            report.failures.append(f"{name!r}: no data key")
            continue
        try:
            key = unwrap(export.data_key, keys.get(export.data_key.master_key_id))
        except MasterKeyError as exc:
            report.failures.append(f"{name!r}: {exc}")
            continue
        payloads = [(f"update {u.seq}", u.payload) for u in export.updates if u.payload is not None]
        payloads += [(f"checkpoint {c.seq}", c.snapshot) for c in export.checkpoints]
        for what, payload in payloads:
            report.rows += 1
            try:
                key.open(payload)
            except UnreadablePayload as exc:
                report.failures.append(f"{name!r} {what}: {exc}")
    return report


async def rotate_master_key(store: Store, keys: KeyProvider) -> tuple[int, int]:
    """Re-wrap every data key not wrapped by the current master key (content untouched).

    Safe while hubs serve: each re-wrap is a compare-and-set on the old wrapping, and a
    running hub keeps its already unwrapped data keys. Returns (re-wrapped, already current).
    """
    current = keys.current()
    rewrapped = unchanged = 0
    for record in await store.data_keys():
        if record.master_key_id == current.id:
            unchanged += 1
            continue
        try:
            fresh = rewrap(record, keys.get(record.master_key_id), current)
        except MasterKeyError as exc:
            raise EncryptionError(f"cannot re-wrap the data key of {record.document!r}: {exc}") from exc
        if await store.rewrap_data_key(record, fresh):
            rewrapped += 1
    return rewrapped, unchanged
