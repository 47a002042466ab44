"""The hub's archive service: a pass over changed documents every ``archive_interval_seconds``
and on demand (admin API), while editing goes on; an object store outage is logged and
retried, and the pass after it catches up (only documents whose last archived seq moved are
written, so nothing is missed and nothing unchanged is rewritten)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection
from typing import TYPE_CHECKING

from collab_server.settings import Settings
from persistence.archive.archiver import Archiver, PassReport
from persistence.archive.base import ArchiveUnavailable, ObjectStore
from persistence.archive.factory import object_store_from_url
from persistence.archive.manifest import ArchiveCorrupt
from persistence.archive.tiering import TieringStore
from persistence.base import Store, StoreError

if TYPE_CHECKING:
    from collab_server.lifecycle import DocumentLifecycle

logger = logging.getLogger(__name__)

RETRY_SECONDS = 2.0  # first retry after a failed pass; doubles up to the interval


class ArchiveService:
    def __init__(
        self,
        store: Store,
        objects: ObjectStore,
        interval_seconds: float,
        *,
        tier_after_seconds: float = 0.0,
        loaded: Callable[[], Collection[str]] = frozenset,
    ) -> None:
        # With tiering, one archiver (over the rows below the tiering layer) does both jobs.
        self.tiering = _tiering_of(store) if tier_after_seconds > 0 else None
        self.archiver = self.tiering.archiver if self.tiering is not None else Archiver(store, objects)
        self.objects = self.archiver.objects
        self.interval = interval_seconds
        self.tier_after = tier_after_seconds
        self._loaded = loaded
        # Set by the change-event publisher: documents whose updates are not published yet are
        # never tiered out (tiering removes their rows, the events' only source).
        self.unpublished: Callable[[], Awaitable[Collection[str]]] | None = None
        self.tiered_out = 0
        self.last_report: PassReport | None = None
        self.last_success: float | None = None
        self.last_error: str | None = None
        self.passes = 0
        self.failures = 0
        self._lock = asyncio.Lock()  # one pass at a time (scheduled or on demand)
        self._opened = False

    async def archive_now(self) -> PassReport:
        """One pass now; raises ArchiveUnavailable, ArchiveCorrupt or StoreError."""
        async with self._lock:
            if not self._opened:
                await self.objects.open()
                self._opened = True
            try:
                report = await self.archiver.run_pass()
            except (ArchiveUnavailable, ArchiveCorrupt, StoreError) as exc:
                self.failures += 1
                self.last_error = str(exc)
                raise
            self.passes += 1
            self.last_report, self.last_success, self.last_error = report, time.time(), None
            if self.tiering is not None:
                keep = set(self._loaded())
                if self.unpublished is not None:
                    keep |= set(await self.unpublished())
                moved = await self.tiering.tier_out_cold(time.time() - self.tier_after, keep)
                self.tiered_out += len(moved)
                if moved:
                    logger.info("tiered out %d cold documents to the archive", len(moved))
            if report.documents:
                logger.info(
                    "archived %d documents (%d objects, %d bytes) in %.2fs",
                    report.documents,
                    report.objects,
                    report.bytes,
                    report.seconds,
                )
            return report

    async def run(self) -> None:
        """Archive forever (until cancelled)."""
        delay = min(RETRY_SECONDS, self.interval)
        while True:
            try:
                await self.archive_now()
            except (ArchiveUnavailable, ArchiveCorrupt, StoreError) as exc:
                logger.warning("archive pass failed (retrying in %.0fs): %s", delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.interval)
                continue
            except Exception:  # a bug here must not stop the hub: logged in full, retried
                self.failures += 1
                logger.exception("archive pass failed unexpectedly (retrying in %.0fs)", delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.interval)
                continue
            delay = min(RETRY_SECONDS, self.interval)
            await asyncio.sleep(self.interval)

    def status(self) -> dict[str, object]:
        report = self.last_report
        return {
            "archive": self.objects.describe(),
            "interval_seconds": self.interval,
            "passes": self.passes,
            "failures": self.failures,
            "tiered_out": self.tiered_out,
            "last_success": self.last_success,
            "last_error": self.last_error,
            "last_pass": None
            if report is None
            else {
                "documents": report.documents,
                "unchanged": report.unchanged,
                "objects": report.objects,
                "bytes": report.bytes,
                "seconds": report.seconds,
            },
        }


def _tiering_of(store: Store) -> TieringStore:
    """The tiering layer inside the store's wrappers (the app puts it there with the archive)."""
    layer: object = store
    while layer is not None:
        if isinstance(layer, TieringStore):
            return layer
        layer = getattr(layer, "inner", None)
    raise ValueError("tier_after_seconds needs the store wrapped in a TieringStore (see app.py)")


def archive_service(
    settings: Settings,
    store: Store,
    lifecycle: DocumentLifecycle,
    loaded: Callable[[], Collection[str]] = frozenset,
) -> ArchiveService | None:
    """The archive service `settings` ask for, or None (no --archive); an erased document's
    archive is erased too; documents in ``loaded()`` (held here) are never tiered out."""
    objects = object_store_from_url(
        settings.archive, settings.archive_access_key, settings.archive_secret_key
    )
    if objects is None:
        return None
    service = ArchiveService(
        store,
        objects,
        settings.archive_interval_seconds,
        tier_after_seconds=settings.tier_after_seconds,
        loaded=loaded,
    )
    lifecycle.archive_eraser = service.archiver.erase
    return service
