"""Storage fixtures: the same tests on SQLite and on the real PostgreSQL.

``database_url`` is parametrized over ``sqlite`` (a file in ``tmp_path``) and
``postgresql`` (``STEADYBOT_TEST_DATABASE_URL``, default
``postgresql://postgres@127.0.0.1:5432/test``). Each PostgreSQL test gets a fresh schema
of its own (its URL carries ``?search_path=<schema>``, which asyncpg passes as a server
setting), dropped with everything in it afterwards, so parallel runs never collide.
An unreachable PostgreSQL skips the test, or fails it when
``STEADYBOT_REQUIRE_SERVICES=1``.

``database`` is an open :class:`~steadybot.storage.Database` on that URL with a
:class:`~steadybot.clock.ManualClock` (``database.clock``), closed after the test.

Imported by ``tests/services/conftest.py``; other conftests can import them too.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlencode

import asyncpg
import pytest

from steadybot.clock import ManualClock
from steadybot.storage import Database, open_database

__all__ = ["BACKENDS", "POSTGRES_URL", "database", "database_url", "fresh_database_url"]

POSTGRES_URL = os.environ.get(
    "STEADYBOT_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
BACKENDS = ("sqlite", "postgresql")


def _unreachable(url: str, exc: BaseException) -> None:
    if os.environ.get("STEADYBOT_REQUIRE_SERVICES") == "1":
        pytest.fail(f"PostgreSQL is required (STEADYBOT_REQUIRE_SERVICES=1) but: {exc}")
    pytest.skip(f"PostgreSQL not reachable at {url}: {exc}")


@asynccontextmanager
async def fresh_database_url(backend: str, directory: Path) -> AsyncIterator[str]:
    """A URL to an empty database of ``backend``, removed afterwards.

    SQLite: a new file in ``directory``. PostgreSQL: a new schema in the test database.
    """
    if backend == "sqlite":
        yield f"sqlite:///{directory / f'steadybot-{uuid.uuid4().hex[:12]}.sqlite3'}"
        return
    if backend != "postgresql":
        raise ValueError(f"unknown backend {backend!r}")
    schema = f"steadybot_test_{uuid.uuid4().hex[:16]}"
    try:
        admin = await asyncpg.connect(POSTGRES_URL, timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        _unreachable(POSTGRES_URL, exc)
        raise  # not reached: skip/fail raise
    try:
        await admin.execute(f'CREATE SCHEMA "{schema}"')
        separator = "&" if "?" in POSTGRES_URL else "?"
        yield f"{POSTGRES_URL}{separator}{urlencode({'search_path': schema})}"
    finally:
        try:
            await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await admin.close()


@pytest.fixture(params=BACKENDS)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, empty database's URL, once on SQLite and once on PostgreSQL."""
    async with fresh_database_url(request.param, tmp_path) as url:
        yield url


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """An open database on :func:`database_url`, with a ManualClock; closed after."""
    db = await open_database(database_url, clock=ManualClock())
    try:
        yield db
    finally:
        await db.close()
