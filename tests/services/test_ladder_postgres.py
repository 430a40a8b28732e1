"""The ladder story on the real PostgreSQL: the crowd's checks hold, each run works in a
fresh schema of its own and drops it at close; a named schema is kept."""

from __future__ import annotations

import os
import uuid

import asyncpg
import pytest
from storage_fixtures import POSTGRES_URL
from support import assert_checks_pass, serving

from examples.ladder.app import Ladder
from examples.ladder.store import RUN_SCHEMA_PREFIX
from steadybot import Bot
from steadybot.config import Settings
from steadybot.crowd import run_crowd
from steadybot.demo import demo_rate_limits, load_story
from steadybot.emulator import Emulator

pytestmark = pytest.mark.services


async def schemas(prefix: str) -> set[str]:
    """The PostgreSQL schemas whose names start with ``prefix`` (skips when down)."""
    try:
        connection = await asyncpg.connect(POSTGRES_URL, timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        if os.environ.get("STEADYBOT_REQUIRE_SERVICES") == "1":
            pytest.fail(f"PostgreSQL is required (STEADYBOT_REQUIRE_SERVICES=1) but: {exc}")
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}: {exc}")
    try:
        rows = await connection.fetch(
            "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, $1)", prefix
        )
        return {row["nspname"] for row in rows}
    finally:
        await connection.close()


@pytest.mark.timeout(120)
async def test_ladder_story_on_postgresql(monkeypatch: pytest.MonkeyPatch) -> None:
    await schemas(RUN_SCHEMA_PREFIX)  # reachable, or skip
    monkeypatch.setenv("STEADYBOT_DATABASE_URL", POSTGRES_URL)
    monkeypatch.delenv("LADDER_SCHEMA", raising=False)
    async with Emulator(
        seed=11, members=40, faults="flaky", rate_limits=demo_rate_limits()
    ) as emulator:
        story = load_story(emulator, "ladder")
        story.scenario.pause = (0.02, 0.15)
        story.scenario.typing = (0.05, 0.2)
        story.ladder.remote.per_trip = (0.0, 0.02)
        async with serving(emulator, story.bot):
            schema = str(story.ladder.figures()["database"]).split("schema ")[1].split(",")[0]
            assert schema in await schemas(RUN_SCHEMA_PREFIX)
            report = await run_crowd(
                emulator,
                story.scenario,
                users=12,
                seconds=2.0,
                seed=11,
                bot_idle=lambda: story.bot.idle,
            )
    assert_checks_pass(report)
    assert story.figures(story.bot)["database"] == f"postgresql (schema {schema}, dropped at close)"
    assert schema not in await schemas(RUN_SCHEMA_PREFIX)  # nothing left behind


async def test_a_named_schema_is_kept_between_runs() -> None:
    name = f"ladder_test_{uuid.uuid4().hex[:12]}"
    await schemas(name)  # reachable, or skip
    settings = Settings(database_url=POSTGRES_URL)
    try:
        for run in range(2):
            bot = Bot(settings)
            ladder = Ladder(bot, schema=name, latency=(0.0, 0.0))
            await bot.start()
            try:
                players = await ladder.database.fetchval("SELECT count(*) FROM players")
                assert players == run  # the first run's player is still there
                await ladder.database.execute(
                    "INSERT INTO players (user_id, active, created_at) VALUES ($1, 0, 0)",
                    f"user-{run}",
                )
            finally:
                await bot.close()
        assert name in await schemas(name)
    finally:
        connection = await asyncpg.connect(POSTGRES_URL, timeout=5)
        try:
            await connection.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        finally:
            await connection.close()
