"""Choose a Store adapter from a URL (the one place adapters are named).

- ``memory`` or ``memory://``: MemoryStore (nothing survives a restart).
- ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` (as in SQLAlchemy),
  or a plain path ending in ``.db``, ``.sqlite`` or ``.sqlite3``: SqliteStore.
- ``postgresql://...`` or ``postgres://...``: PostgresStore.

Error messages name only the URL's scheme: a URL can carry a password. ``StoreOptions``
(the hub's ``store_*`` connection settings) reach the adapter that uses them; without them
each adapter keeps its own defaults (tests, tools).
"""

from __future__ import annotations

from dataclasses import dataclass

from persistence.base import Store
from persistence.encryption.keys import KeyProvider

_SQLITE_PREFIX = "sqlite:///"
_SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
_ACCEPTED = "'memory', 'sqlite:///PATH.db', a path ending in .db/.sqlite/.sqlite3, or 'postgresql://...'"


@dataclass(frozen=True, slots=True)
class StoreOptions:
    """How the adapter connects: PostgreSQL's pool and timeouts, SQLite's wait for the write lock."""

    max_connections: int
    connect_timeout_seconds: float
    command_timeout_seconds: float
    acquire_timeout_seconds: float
    busy_timeout_seconds: float


def store_from_url(url: str, keys: KeyProvider | None = None, options: StoreOptions | None = None) -> Store:
    """The adapter ``url`` names; with ``keys``, wrapped in envelope encryption."""
    store = _adapter(url, options)
    if keys is None:
        return store
    from persistence.encryption.store import EncryptedStore

    return EncryptedStore(store, keys)


def _adapter(url: str, options: StoreOptions | None) -> Store:
    if url in ("memory", "memory://"):
        from persistence.memory import MemoryStore

        return MemoryStore()
    if url.startswith("sqlite:"):
        path = url[len(_SQLITE_PREFIX) :] if url.startswith(_SQLITE_PREFIX) else ""
        if not path:
            raise ValueError(
                f"sqlite store URL needs a file path: use {_SQLITE_PREFIX}PATH (relative) or ////PATH"
            )
        return _sqlite(path, options)
    if url.startswith(("postgresql://", "postgres://")):
        from persistence.postgres import PostgresStore

        if options is None:
            return PostgresStore(url)
        return PostgresStore(
            url,
            connect_timeout=options.connect_timeout_seconds,
            command_timeout=options.command_timeout_seconds,
            acquire_timeout=options.acquire_timeout_seconds,
            max_connections=options.max_connections,
        )
    if "://" not in url and url.endswith(_SQLITE_SUFFIXES):
        return _sqlite(url, options)
    scheme = url.split("://", 1)[0] + "://" if "://" in url else "(no scheme)"
    raise ValueError(f"unknown store URL with scheme {scheme!r}: use {_ACCEPTED}")


def _sqlite(path: str, options: StoreOptions | None) -> Store:
    from persistence.sqlite import SqliteStore

    if options is None:
        return SqliteStore(path)
    return SqliteStore(path, busy_timeout_seconds=options.busy_timeout_seconds)
