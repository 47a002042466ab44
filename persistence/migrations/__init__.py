"""Versioned schema migrations, one SQL file per step: ``<dialect>/NNN_name.sql``.

Each adapter applies the files it has not applied yet (by version number, so a number
reserved by one change and landed after a higher one is still applied), in order, each
in one transaction together with its row in ``schema_version``. Files are never edited
once released: a schema change is a new file with its own number.
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
    """The migrations of ``dialect`` ("sqlite" or "postgres") in version order; each number once."""
    folder = resources.files(__name__).joinpath(dialect)
    migrations = []
    for item in folder.iterdir():
        match = _FILE_NAME.match(item.name)
        if match:
            migrations.append(
                Migration(int(match.group(1)), match.group(2), item.read_text(encoding="utf-8"))
            )
    migrations.sort(key=lambda migration: migration.version)
    found = [migration.version for migration in migrations]
    if len(set(found)) != len(found) or (found and found[0] < 1):
        raise RuntimeError(f"{dialect} migrations must have distinct positive numbers, found {found}")
    return migrations


def pending_migrations(migrations: list[Migration], applied: set[int]) -> list[Migration]:
    """The migrations not applied yet; an applied version this program does not know is an error."""
    unknown = applied - {migration.version for migration in migrations}
    if unknown:
        raise ValueError(f"schema versions {sorted(unknown)} are newer than this program's migrations")
    return [migration for migration in migrations if migration.version not in applied]
