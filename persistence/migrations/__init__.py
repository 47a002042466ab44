"""Versioned schema migrations, one SQL file per step: ``<dialect>/NNN_name.sql``.

Each adapter applies the files it has not applied yet, in order, each in one
transaction together with its row in ``schema_version``. Files are never edited once
released: a schema change is a new file with the next number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

_FILE_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations(dialect: str) -> list[Migration]:
    """The migrations of ``dialect`` ("sqlite" or "postgres"), numbered 1, 2, 3... without gaps."""
    folder = resources.files(__name__).joinpath(dialect)
    migrations = []
    for item in folder.iterdir():
        match = _FILE_NAME.match(item.name)
        if match:
            migrations.append(
                Migration(int(match.group(1)), match.group(2), item.read_text(encoding="utf-8"))
            )
    migrations.sort(key=lambda migration: migration.version)
    expected = list(range(1, len(migrations) + 1))
    if [migration.version for migration in migrations] != expected:
        found = [migration.version for migration in migrations]
        raise RuntimeError(f"{dialect} migrations must be numbered {expected} without gaps, found {found}")
    return migrations
