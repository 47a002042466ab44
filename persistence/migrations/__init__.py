"""Versioned schema migrations, one SQL file per step: ``<dialect>/NNN_name.sql``.

Each adapter applies the files it has not applied yet (by version number, not by
"newer than the highest applied"), in order, each in one transaction together with its
row in ``schema_version``. Numbers are reserved per change by whoever plans the work, so
a later file may land before an earlier number exists: a database that applied 1, 2, 5
gets 3 and 4 when they appear. A database holding a version this program does not know
was written by a newer program and is refused. Files are never edited once released: a
schema change is a new file with a new number.
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
    """The migrations of ``dialect`` ("sqlite" or "postgres"), in version order, numbers unique."""
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
        raise RuntimeError(f"{dialect} migrations must have unique numbers from 1, found {found}")
    return migrations


def pending_migrations(migrations: list[Migration], applied: set[int], where: str) -> list[Migration]:
    """The migrations not applied yet; refuses a database with versions this program lacks."""
    unknown = sorted(applied - {migration.version for migration in migrations})
    if unknown:
        raise UnknownSchemaVersion(
            f"{where} has schema versions {unknown} this program does not know (written by a newer one?)"
        )
    return [migration for migration in migrations if migration.version not in applied]


class UnknownSchemaVersion(Exception):
    """The database was migrated by a newer program."""
