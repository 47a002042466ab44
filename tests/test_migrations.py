"""Schema migrations are applied by version number, so reserved numbers may land out of order."""

from __future__ import annotations

import pytest

from persistence.migrations import Migration, UnknownSchemaVersion, load_migrations, pending_migrations

pytestmark = pytest.mark.fast


def test_both_dialects_have_the_same_unique_versions() -> None:
    sqlite = [(m.version, m.name) for m in load_migrations("sqlite")]
    postgres = [(m.version, m.name) for m in load_migrations("postgres")]
    assert sqlite == postgres
    assert len({version for version, _ in sqlite}) == len(sqlite)
    assert sqlite[:2] == [(1, "initial"), (2, "audit")]


def test_a_gap_filled_later_is_applied_and_unknown_versions_are_refused() -> None:
    files = [Migration(v, f"m{v}", "") for v in (1, 2, 3, 4, 5)]
    assert [m.version for m in pending_migrations(files, {1, 2, 5}, "db")] == [3, 4]
    assert pending_migrations(files, {1, 2, 3, 4, 5}, "db") == []
    with pytest.raises(UnknownSchemaVersion, match=r"\[7\]"):
        pending_migrations(files, {1, 2, 7}, "db")
