"""LocalObjectStore: objects as files under a directory (the embedded default's archive)."""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from persistence.archive.base import ArchiveUnavailable, ObjectMissing


class LocalObjectStore:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def describe(self) -> str:
        return f"directory {self.root}"

    def _path(self, key: str) -> Path:
        if key.startswith("/") or ".." in key.split("/"):
            raise ValueError(f"bad object key {key!r}")
        return self.root / key

    async def open(self) -> None:
        try:
            await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)
        except OSError as exc:
            raise ArchiveUnavailable(f"{self.describe()}: {exc}") from exc

    async def put(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(self._put, self._path(key), data)

    def _put(self, path: Path, data: bytes) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Write aside, fsync, rename: a crash leaves the old file or the new one.
            fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".put-")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(temporary, path)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise ArchiveUnavailable(f"{self.describe()}: writing {path.name}: {exc}") from exc

    async def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError as exc:
            raise ObjectMissing(f"{self.describe()}: no object {key!r}") from exc
        except OSError as exc:
            raise ArchiveUnavailable(f"{self.describe()}: reading {key!r}: {exc}") from exc

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self._path(key).is_file)

    async def list(self, prefix: str) -> list[str]:
        def walk() -> list[str]:
            if not self.root.is_dir():
                return []
            keys = []
            for path in self.root.rglob("*"):
                if path.is_file() and not path.name.startswith(".put-"):
                    key = path.relative_to(self.root).as_posix()
                    if key.startswith(prefix):
                        keys.append(key)
            return sorted(keys)

        return await asyncio.to_thread(walk)

    async def delete(self, keys: Sequence[str]) -> int:
        def remove() -> int:
            removed = 0
            for key in keys:
                path = self._path(key)
                if path.is_file():
                    path.unlink()
                    removed += 1
            return removed

        return await asyncio.to_thread(remove)
