"""Choose a Store adapter from a URL (the one place adapters are named)."""

from __future__ import annotations

from persistence.base import Store


def store_from_url(url: str) -> Store:
    if url in ("memory", "memory://"):
        from persistence.memory import MemoryStore

        return MemoryStore()
    if url.startswith("sqlite://") or url.endswith((".db", ".sqlite", ".sqlite3")):
        from persistence.sqlite import SqliteStore

        path = url[len("sqlite:///") :] if url.startswith("sqlite:///") else url
        return SqliteStore(path)
    if url.startswith(("postgresql://", "postgres://")):
        from persistence.postgres import PostgresStore

        return PostgresStore(url)
    raise ValueError(f"unknown store {url!r}: use 'memory', 'sqlite:///PATH' or 'postgresql://...'")
