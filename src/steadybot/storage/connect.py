"""Open a :class:`Database` from a URL, and apply migrations at start.

``sqlite:///relative/file.db``, ``sqlite:////absolute/file.db``, ``sqlite:///:memory:``
or ``postgresql://user[:password]@host:port/database`` (``postgres://`` too). Extra
query parameters of a PostgreSQL URL become server settings, e.g.
``?search_path=myschema``. A bad URL is a :class:`StorageError` naming the scheme; a
password never appears in an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from steadybot.clock import Clock, SystemClock
from steadybot.storage._sql import redact_url
from steadybot.storage.database import Database, StorageOptions
from steadybot.storage.errors import StorageError
from steadybot.storage.migrations import Migration

if TYPE_CHECKING:
    from steadybot.config import Settings

__all__ = ["DEFAULT_DATABASE_URL", "open_database"]

DEFAULT_DATABASE_URL: Final = "sqlite:///steadybot.sqlite3"
"""Where steadybot keeps its data when nothing is configured: a file in the working dir."""

_SQLITE_PREFIX: Final = "sqlite:///"
_POSTGRES_SCHEMES: Final = ("postgresql://", "postgres://")


async def open_database(
    url: str | None = None,
    *,
    clock: Clock | None = None,
    migrations: Sequence[Migration] = (),
    settings: Settings | None = None,
    options: StorageOptions | None = None,
) -> Database:
    """Open the database at ``url`` and apply ``migrations`` not applied yet.

    ``url`` defaults to ``settings.database_url`` (``STEADYBOT_DATABASE_URL``), then to
    :data:`DEFAULT_DATABASE_URL`. Limits come from ``options``, else from ``settings``,
    else from the environment's :class:`~steadybot.config.Settings`.
    """
    if options is None:
        if settings is None:
            from steadybot.config import Settings

            settings = Settings()
        options = StorageOptions.from_settings(settings)
    if url is None:
        url = (settings.database_url if settings is not None else "") or DEFAULT_DATABASE_URL
    clock = clock or SystemClock()
    database = await _connect(url, clock=clock, options=options)
    try:
        if migrations:
            await database.migrate(migrations)
    except BaseException:
        await database.close()
        raise
    return database


async def _connect(url: str, *, clock: Clock, options: StorageOptions) -> Database:
    if url.startswith(_SQLITE_PREFIX):
        from steadybot.storage._sqlite import open_sqlite

        path = url[len(_SQLITE_PREFIX) :]
        if not path:
            raise StorageError("sqlite URL needs a path: sqlite:///file.db or sqlite:///:memory:")
        return await open_sqlite(path, clock=clock, options=options)
    if url.startswith(_POSTGRES_SCHEMES):
        from steadybot.storage._postgres import open_postgres

        return await open_postgres(url, clock=clock, options=options)
    scheme = url.partition("://")[0] if "://" in url else ""
    shown = f"scheme {scheme!r}" if scheme else f"URL {redact_url(url)!r} (no scheme)"
    raise StorageError(
        f"unsupported database {shown}: use sqlite:///path/file.db or "
        "postgresql://user@host:port/database"
    )
