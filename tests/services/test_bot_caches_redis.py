"""Bot caches over the real Redis: two bots (two processes' worth) with the same
``STEADYBOT_REDIS_URL`` drop each other's entries, and a role write through one bot's
member cache drops the member in the other."""

from __future__ import annotations

import asyncio

import pytest

from steadybot import Bot
from steadybot.config import Settings
from steadybot.models import Member, User

pytestmark = pytest.mark.services


def bot_on(redis_url: str, namespace: str) -> Bot:
    return Bot(Settings(redis_url=redis_url, redis_prefix=namespace, watchdog_enabled=False))


async def until(condition: object, seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if callable(condition) and condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("not within time")


async def test_an_invalidation_in_one_bot_drops_the_entry_in_the_other(
    redis_url: str, namespace: str
) -> None:
    first, second = bot_on(redis_url, namespace), bot_on(redis_url, namespace)
    boards = [bot.cache("board", max_size=10, ttl=60.0) for bot in (first, second)]
    try:
        for bot in (first, second):
            await bot.start()
        for board in boards:
            board.set("open:tailor", ["cloak"], tags=["profession:tailor"])
        boards[0].invalidate_tag("profession:tailor")
        assert boards[0].get("open:tailor") is None
        await until(lambda: boards[1].get("open:tailor") is None)
        assert first.cache("board") is boards[0]  # one cache per name
        stats = first.caches.statistics()["board"]
        assert stats.invalidations == 1
    finally:
        await first.close()
        await second.close()


async def test_a_member_dropped_by_a_write_elsewhere(redis_url: str, namespace: str) -> None:
    first, second = bot_on(redis_url, namespace), bot_on(redis_url, namespace)
    member = Member(user=User(id="42", username="member0042"), roles=[])
    try:
        for bot in (first, second):
            bot.members  # noqa: B018 - made before the start, so their caches start with it
            await bot.start()
            bot.members.cache.set("7:42", member)
        first.members.invalidate("7", "42")  # what add_role does after its write
        await until(lambda: second.members.peek("7", "42") is None)
    finally:
        await first.close()
        await second.close()
