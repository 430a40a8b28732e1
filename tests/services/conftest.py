"""Fixtures for tests against the real services on 127.0.0.1: Redis and PostgreSQL.

A service that cannot be reached skips its tests with the reason, unless
``STEADYBOT_REQUIRE_SERVICES=1`` (CI), where it fails them instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

REDIS_URL = os.environ.get("STEADYBOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_URL = os.environ.get(
    "STEADYBOT_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def unreachable(service: str, url: str, exc: BaseException) -> None:
    """Skip (or, when services are required, fail) a test whose service is down."""
    if os.environ.get("STEADYBOT_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{service} is required (STEADYBOT_REQUIRE_SERVICES=1) but: {exc}")
    pytest.skip(f"{service} not reachable at {url}: {exc}")


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    """A connection to the real Redis (``STEADYBOT_TEST_REDIS_URL``)."""
    client = Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except Exception as exc:  # any failure to reach it
        await client.aclose()
        unreachable("Redis", REDIS_URL, exc)
    yield client
    await client.aclose()


@pytest.fixture
def redis_url(redis: Redis) -> str:
    """The real Redis's URL, once it answered a ping."""
    return REDIS_URL


@pytest.fixture
def namespace() -> str:
    """A key prefix of this test's own, so runs never see each other's keys."""
    return f"steadybot-test:{uuid.uuid4().hex}"


# --- storage: `database_url` / `database` on SQLite and PostgreSQL (storage_fixtures.py)
from storage_fixtures import database, database_url  # noqa: E402, F401
