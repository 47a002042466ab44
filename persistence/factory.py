"""Choose a Store adapter from a URL (the one place adapters are named).

- ``memory`` or ``memory://``: MemoryStore (nothing survives a restart).
- ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` (as in SQLAlchemy),
  or a plain path ending in ``.db``, ``.sqlite`` or ``.sqlite3``: SqliteStore.
- ``postgresql://...`` or ``postgres://...``: PostgresStore.

Error messages name only the URL's scheme: a URL can carry a password.
"""

from __future__ import annotations

from persistence.base import Store
from persistence.encryption.keys import KeyProvider

_SQLITE_PREFIX = "sqlite:///"
_SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
_ACCEPTED = "'memory', 'sqlite:///PATH.db', a path ending in .db/.sqlite/.sqlite3, or 'postgresql://...'"


def store_from_url(url: str, keys: KeyProvider | None = None) -> Store:
    """The adapter ``url`` names; with ``keys``, wrapped in envelope encryption."""
    store = _adapter(url)
    if keys is None:
        return store
    from persistence.encryption.store import EncryptedStore

    return EncryptedStore(store, keys)


def _adapter(url: str) -> Store:
    if url in ("memory", "memory://"):
        from persistence.memory import MemoryStore

        return MemoryStore()
    if url.startswith("sqlite:"):
        path = url[len(_SQLITE_PREFIX) :] if url.startswith(_SQLITE_PREFIX) else ""
        if not path:
            raise ValueError(
                f"sqlite store URL needs a file path: use {_SQLITE_PREFIX}PATH (relative) or ////PATH"
            )
        from persistence.sqlite import SqliteStore

        return SqliteStore(path)
    if url.startswith(("postgresql://", "postgres://")):
        from persistence.postgres import PostgresStore

        return PostgresStore(url)
    if "://" not in url and url.endswith(_SQLITE_SUFFIXES):
        from persistence.sqlite import SqliteStore

        return SqliteStore(url)
    scheme = url.split("://", 1)[0] + "://" if "://" in url else "(no scheme)"
    raise ValueError(f"unknown store URL with scheme {scheme!r}: use {_ACCEPTED}")
