"""Where the ladder keeps its data, and the simulated distance to it.

:func:`open_store` picks the database for one run of the bot:

- ``STEADYBOT_DATABASE_URL`` set to PostgreSQL: the ladder's tables live in a schema of
  their own, never next to anything else in that database. With ``LADDER_SCHEMA`` set
  (``schema=``) that schema is used as it is and kept: a real deployment. Without it,
  each run creates a fresh schema named ``ladder_run_<random>`` and drops it (that
  schema only, which it created) when the bot closes, so a demo run starts empty and
  leaves nothing behind;
- ``STEADYBOT_DATABASE_URL`` set to SQLite: that file, as it is (kept: a deployment;
  the demo wants no URL or a PostgreSQL one);
- nothing set: a SQLite file in a temporary directory of its own, removed at close
  (the framework's default ``steadybot.sqlite3`` in the working directory would carry
  one demo run's players into the next).

:class:`RemoteLatency` stands for the network between the bot and the database the
production story had: a remote PostgreSQL, 250-700 ms per round trip and now and then
one much slower. Both versions
of the bot pay it per round trip; they differ in how many they make and in whether
they answer Discord before making them.
"""

from __future__ import annotations

import random
import re
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from steadybot.clock import Clock
from steadybot.config import Settings
from steadybot.storage import Database, Migration, StorageError, StorageOptions, open_database

__all__ = ["RUN_SCHEMA_PREFIX", "RemoteLatency", "Store", "open_store"]

RUN_SCHEMA_PREFIX: Final = "ladder_run_"
_SCHEMA_NAME: Final = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_POSTGRES: Final = ("postgresql://", "postgres://")


@dataclass
class Store:
    """An open ladder database and what to remove when the run ends."""

    database: Database
    description: str  # for figures and logs: never a password
    _base_url: str = ""  # the PostgreSQL URL without our schema (for the drop)
    _drop_schema: str = ""  # a run schema this store created
    _remove_dir: Path | None = None

    async def close(self) -> None:
        """Close the database; drop the run's own schema / temporary directory."""
        await self.database.close()
        if self._drop_schema:
            await _drop_schema(self._base_url, self._drop_schema)
        if self._remove_dir is not None:
            shutil.rmtree(self._remove_dir, ignore_errors=True)


async def open_store(
    settings: Settings,
    migrations: tuple[Migration, ...],
    *,
    clock: Clock,
    schema: str | None = None,
    private_sqlite: bool = False,
) -> Store:
    """Open the ladder's database for this run and apply ``migrations``.

    ``private_sqlite``: never the configured SQLite file, a temporary one (the naive
    baseline's schema differs and must not land in a user's file).
    """
    configured = "database_url" in settings.model_fields_set
    url = settings.database_url
    if configured and url.startswith(_POSTGRES):
        return await _open_postgres(settings, migrations, clock=clock, schema=schema)
    if configured and not private_sqlite:
        database = await open_database(url, clock=clock, migrations=migrations, settings=settings)
        return Store(database, f"sqlite ({url.removeprefix('sqlite:///')})")
    directory = Path(tempfile.mkdtemp(prefix="steadybot-ladder-"))
    path = directory / "ladder.sqlite3"
    try:
        database = await open_database(
            f"sqlite:///{path}", clock=clock, migrations=migrations, settings=settings
        )
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    return Store(database, "sqlite (a temporary file)", _remove_dir=directory)


async def _open_postgres(
    settings: Settings, migrations: tuple[Migration, ...], *, clock: Clock, schema: str | None
) -> Store:
    if schema is not None and not _SCHEMA_NAME.match(schema):
        raise StorageError(f"LADDER_SCHEMA must be a plain lowercase identifier, got {schema!r}")
    fresh = schema is None
    name = schema or f"{RUN_SCHEMA_PREFIX}{uuid.uuid4().hex[:12]}"
    base = settings.database_url
    admin = await open_database(base, options=StorageOptions(pool_size=1))
    try:
        if fresh:
            await admin.execute(f'CREATE SCHEMA "{name}"')  # fails rather than reuse one
        else:
            await admin.execute(f'CREATE SCHEMA IF NOT EXISTS "{name}"')
    finally:
        await admin.close()
    try:
        database = await open_database(
            _with_search_path(base, name), clock=clock, migrations=migrations, settings=settings
        )
    except BaseException:
        if fresh:
            await _drop_schema(base, name)
        raise
    return Store(
        database,
        f"postgresql (schema {name}{', dropped at close' if fresh else ''})",
        _base_url=base,
        _drop_schema=name if fresh else "",
    )


async def _drop_schema(base_url: str, name: str) -> None:
    """Drop the run schema ``name`` (one this module created) with its tables."""
    if not name.startswith(RUN_SCHEMA_PREFIX):
        raise StorageError(f"refusing to drop {name!r}: not a ladder run schema")
    admin = await open_database(base_url, options=StorageOptions(pool_size=1))
    try:
        await admin.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    finally:
        await admin.close()


def _with_search_path(url: str, schema: str) -> str:
    """``url`` whose connections look up tables in ``schema`` first."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "search_path"]
    query.append(("search_path", schema))
    return urlunsplit(parts._replace(query=urlencode(query)))


@dataclass
class RemoteLatency:
    """Simulated network time to a remote database, per round trip.

    Slept *before* the statements it stands for, outside any transaction: SQLite has
    one writer, and holding it through simulated network time would serialize the
    whole crowd, which a remote PostgreSQL (row locks only) would not.
    """

    clock: Clock
    per_trip: tuple[float, float] = (0.25, 0.7)
    # Now and then a trip is much slower (a lock wait, a busy server): the tail that
    # turns "usually 2 s" into "This interaction failed".
    slow_share: float = 0.04
    slow_extra: tuple[float, float] = (0.8, 2.0)
    seed: int = 7
    trips_made: int = 0
    slow_trips: int = 0
    _random: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    async def trips(self, count: int) -> None:
        """Wait ``count`` round trips."""
        self.trips_made += count
        total = 0.0
        for _ in range(count):
            total += self._random.uniform(*self.per_trip)
            if self._random.random() < self.slow_share:
                self.slow_trips += 1
                total += self._random.uniform(*self.slow_extra)
        await self.clock.sleep(total)
