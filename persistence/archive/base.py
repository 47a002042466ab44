"""The object-store port the archiver writes to (S3-compatible services, a local directory)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class ArchiveUnavailable(Exception):
    """The object store cannot be reached or refused the request (retry later)."""


class ObjectMissing(ArchiveUnavailable):
    """The key does not exist."""


class ObjectStore(Protocol):
    async def open(self) -> None:
        """Check the store is reachable (create the bucket or directory if missing)."""

    async def put(self, key: str, data: bytes) -> None:
        """Write the whole object; a reader sees the old object or the new one, never a part."""

    async def get(self, key: str) -> bytes:
        """Raise ObjectMissing when there is no such key."""

    async def exists(self, key: str) -> bool: ...

    async def list(self, prefix: str) -> list[str]:
        """Every key starting with ``prefix``, sorted."""

    async def delete(self, keys: Sequence[str]) -> int:
        """Delete what exists of ``keys``; return how many were deleted."""

    def describe(self) -> str:
        """Where objects go, for messages (never a credential)."""
