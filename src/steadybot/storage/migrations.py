"""Versioned schema migrations, applied at start, each exactly once.

A :class:`Migration` is ``(version, name, sql)``; ``sql`` is one script for both
backends or a ``{dialect: script}`` mapping where they differ. Migrations belong to a
``scope`` (``"app"`` unless said otherwise): steadybot's own packages (the credits
ledger, the outbox) and the application each number theirs from 1 without colliding.

The ``schema_migrations`` table records ``(scope, version, name, applied_at)``. Each
migration runs in its own transaction together with its record, so a crash leaves
either both or neither. On PostgreSQL every migration transaction first takes a
transaction-level advisory lock: two processes starting at once apply each migration
once (the loser waits, then sees it recorded and skips it). SQLite's
``BEGIN IMMEDIATE`` serializes them already.

A recorded version whose name differs from the one given is a :class:`MigrationError`:
someone renumbered or replaced a migration that a database already ran.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Final, NamedTuple

from steadybot.storage.errors import MigrationError

if TYPE_CHECKING:
    from steadybot.storage.database import Connection, Database

__all__ = ["MIGRATIONS_TABLE", "Migration", "applied_versions", "apply_migrations"]

MIGRATIONS_TABLE: Final = "schema_migrations"

# An arbitrary constant key for pg_advisory_xact_lock: "steadybot migrations".
_ADVISORY_LOCK_KEY: Final = 0x5354_4442_4D49_4752

_CREATE_TABLE: Final = f"""
CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} (
    scope TEXT NOT NULL,
    version BIGINT NOT NULL,
    name TEXT NOT NULL,
    applied_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (scope, version)
)
"""


class Migration(NamedTuple):
    """One schema change. ``sql`` is a script, or ``{"sqlite": ..., "postgresql": ...}``."""

    version: int
    name: str
    sql: str | Mapping[str, str]
    scope: str = "app"

    def script_for(self, dialect: str) -> str:
        if isinstance(self.sql, str):
            return self.sql
        try:
            return self.sql[dialect]
        except KeyError:
            raise MigrationError(
                f"migration {self.scope}/{self.version} ({self.name!r}) has no SQL for "
                f"{dialect}; it has {sorted(self.sql)}"
            ) from None


def _validate(migrations: Sequence[Migration]) -> list[Migration]:
    seen: set[tuple[str, int]] = set()
    for migration in migrations:
        if not isinstance(migration, Migration):
            raise MigrationError(f"not a Migration: {migration!r}")
        if isinstance(migration.version, bool) or not isinstance(migration.version, int):
            raise MigrationError(f"migration version must be an int: {migration.version!r}")
        if migration.version < 1:
            raise MigrationError(f"migration versions start at 1: {migration.version}")
        if not migration.name:
            raise MigrationError(f"migration {migration.version} needs a name")
        key = (migration.scope, migration.version)
        if key in seen:
            raise MigrationError(f"duplicate migration version {migration.scope}/{key[1]}")
        seen.add(key)
    return sorted(migrations, key=lambda m: (m.scope, m.version))


async def _lock(connection: Connection) -> None:
    if connection.dialect == "postgresql":
        await connection.execute("SELECT pg_advisory_xact_lock($1)", _ADVISORY_LOCK_KEY)


async def apply_migrations(database: Database, migrations: Sequence[Migration]) -> list[int]:
    """Apply each migration not yet recorded, in (scope, version) order; returns the
    versions applied by this call."""
    ordered = _validate(migrations)
    async with database.transaction() as connection:
        await _lock(connection)
        await connection.execute(_CREATE_TABLE)
    applied: list[int] = []
    for migration in ordered:
        script = migration.script_for(database.dialect)
        async with database.transaction() as connection:
            await _lock(connection)
            recorded = await connection.fetchval(
                f"SELECT name FROM {MIGRATIONS_TABLE} WHERE scope = $1 AND version = $2",
                migration.scope,
                migration.version,
            )
            if recorded is not None:
                if recorded != migration.name:
                    raise MigrationError(
                        f"migration {migration.scope}/{migration.version} was applied as "
                        f"{recorded!r} but is now named {migration.name!r}"
                    )
                continue
            await connection.execute_script(script)
            await connection.execute(
                f"INSERT INTO {MIGRATIONS_TABLE} (scope, version, name, applied_at) "
                "VALUES ($1, $2, $3, $4)",
                migration.scope,
                migration.version,
                migration.name,
                database.clock.time(),
            )
        applied.append(migration.version)
    return applied


async def applied_versions(database: Database, scope: str) -> list[int]:
    """The versions of ``scope`` recorded as applied, ascending; empty when none were
    (or no migration ever ran on this database). For tools that read a package's
    tables and want to say "not set up here" instead of "no such table"."""
    async with database.transaction() as connection:
        exists = await connection.fetchval(_TABLE_EXISTS[database.dialect], MIGRATIONS_TABLE)
        if not exists:
            return []
        rows = await connection.fetch(
            f"SELECT version FROM {MIGRATIONS_TABLE} WHERE scope = $1 ORDER BY version", scope
        )
    return [int(row["version"]) for row in rows]


_TABLE_EXISTS: Final = {
    "sqlite": "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = $1",
    "postgresql": "SELECT to_regclass($1) IS NOT NULL",
}
