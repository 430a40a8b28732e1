"""``Bot.use_clock`` against the real Redis: refused once the coordination backend is
made, so its Redis client is neither left on the old clock nor dropped unclosed."""

from __future__ import annotations

import uuid

import pytest
from redis.asyncio import Redis

from steadybot import Bot, ManualClock
from steadybot.config import Settings
from steadybot.errors import ClockInUse

pytestmark = pytest.mark.services


async def connections_named(redis: Redis, name: str) -> int:
    return sum(1 for client in await redis.client_list() if client.get("name") == name)


async def test_use_clock_after_locks_keeps_the_redis_client_and_close_closes_it(
    redis: Redis, redis_url: str, namespace: str
) -> None:
    name = f"steadybot-test-{uuid.uuid4().hex[:12]}"  # tells this bot's connections apart
    url = f"{redis_url}{'&' if '?' in redis_url else '?'}client_name={name}"
    bot = Bot(Settings(redis_url=url, redis_prefix=namespace, watchdog_enabled=False))
    try:
        async with bot.locks("order:1", timeout=1):
            pass
        assert await connections_named(redis, name) >= 1
        guards = bot.guards
        with pytest.raises(ClockInUse, match="guards"):
            bot.use_clock(ManualClock())
        assert bot.guards is guards  # not replaced: the one client stays the bot's
        async with bot.locks("order:1", timeout=1):
            pass
    finally:
        await bot.close()
    assert await connections_named(redis, name) == 0  # closed with the bot, none left
