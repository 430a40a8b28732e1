"""The member cache against the emulator: paged warm-up, no per-member fetch after it,
role writes that keep it right (here and, through the bus, elsewhere), pins that
survive eviction pressure, TTL and refresh on an injected clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from support import emulator_bot

from steadybot import Bot, ManualClock
from steadybot.cache import BoundedCache, LocalInvalidationBus
from steadybot.emulator import Emulator, RateLimitSettings
from steadybot.members import MemberCache, MemberNotFound
from steadybot.models import Member

MEMBERS = 25
ONE = "GET /guilds/{guild_id}/members/{user_id}"
PAGE = "GET /guilds/{guild_id}/members"


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with Emulator(
        seed=9, members=MEMBERS, rate_limits=RateLimitSettings(enabled=False)
    ) as emulator:
        yield emulator


def make_bot(emulator: Emulator, clock: ManualClock | None = None, **settings: object) -> Bot:
    return emulator_bot(emulator, clock, watchdog_enabled=False, **settings)


def requests(emulator: Emulator, route: str) -> int:
    return emulator.statistics().requests_by_route.get(route, 0)


async def test_warm_up_pages_through_every_member_then_reads_memory(emulator: Emulator) -> None:
    bot = make_bot(emulator, member_warm_page_size=10)
    try:
        assert await bot.members.warm(emulator.guild_id) == MEMBERS
        assert requests(emulator, PAGE) == 3  # 10 + 10 + 5
        for user_id in emulator.user_ids:
            member = await bot.members.get(emulator.guild_id, user_id)
            assert member.user is not None
            assert member.user.id == user_id
        assert requests(emulator, ONE) == 0
        stats = bot.members.statistics()
        assert (stats.warmed, stats.pages, stats.fetched, stats.size) == (MEMBERS, 3, 0, MEMBERS)
    finally:
        await bot.close()


async def test_warm_up_stops_at_the_size_of_the_cache_it_fills(
    emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    bot = make_bot(emulator, member_cache_size=5, member_warm_page_size=2)
    try:
        assert await bot.members.warm(emulator.guild_id) == 6  # 3 pages: past the 5 held
        assert requests(emulator, PAGE) == 3  # not the 13 pages of the whole guild
        assert "STEADYBOT_MEMBER_CACHE_SIZE" in caplog.text
    finally:
        await bot.close()


async def test_a_miss_is_fetched_once_for_concurrent_readers(emulator: Emulator) -> None:
    bot = make_bot(emulator)
    try:
        guild, user = emulator.guild_id, emulator.user_ids[3]
        got = await asyncio.gather(*(bot.members.get(guild, user) for _ in range(5)))
        assert {m.user.id for m in got if m.user is not None} == {user}
        assert requests(emulator, ONE) == 1
        assert bot.members.statistics().fetched == 1
        with pytest.raises(MemberNotFound):
            await bot.members.get(guild, "42")
        assert bot.members.peek(guild, "42") is None  # a failure is not cached
    finally:
        await bot.close()


async def test_a_role_write_updates_this_cache_and_drops_the_member_elsewhere(
    emulator: Emulator,
) -> None:
    bus = LocalInvalidationBus()  # stands for Redis between two processes
    clock = ManualClock()
    caches = [
        BoundedCache[Member]("members", clock=clock, max_size=100, ttl=60.0, bus=bus)
        for _ in range(2)
    ]
    bot = make_bot(emulator)
    here, elsewhere = (MemberCache(lambda: bot.rest, cache, clock=clock) for cache in caches)
    for cache in caches:
        await cache.start()
    try:
        guild, user, staff = emulator.guild_id, emulator.user_ids[10], emulator.world.staff_role_id
        await here.warm(guild)
        await elsewhere.warm(guild)
        await here.add_role(guild, user, staff)
        assert emulator.world.members[user]["roles"] == [staff]  # Discord has it
        cached = here.peek(guild, user)
        assert cached is not None
        assert cached.roles == [staff]
        assert elsewhere.peek(guild, user) is None  # the other dropped its old copy
        assert (await elsewhere.get(guild, user)).roles == [staff]  # and reads it fresh
        await here.remove_role(guild, user, staff)
        assert emulator.world.members[user]["roles"] == []
        cached = here.peek(guild, user)
        assert cached is not None
        assert cached.roles == []
        assert here.statistics().fetched == 0
        assert here.statistics().role_writes == 2
    finally:
        for cache in caches:
            await cache.close()
        await bot.close()


async def test_a_pinned_member_survives_eviction_pressure_mid_operation(
    emulator: Emulator,
) -> None:
    bot = make_bot(emulator, member_cache_size=5)
    try:
        guild, user = emulator.guild_id, emulator.user_ids[0]
        async with bot.members.pinned(guild, user) as member:
            await bot.members.warm(guild)  # 25 members through a cache of 5
            stats = bot.members.cache.statistics()
            assert stats.evictions >= MEMBERS - 5 - 1
            assert stats.size == 5 + 1  # the bound, plus the pinned member
            assert bot.members.peek(guild, user) == member  # never evicted
            assert bot.members.statistics().pinned == 1
        assert bot.members.statistics().pinned == 0
        assert bot.members.peek(guild, user) == member  # back in, most recently used
    finally:
        await bot.close()


async def test_members_expire_after_the_ttl_and_the_refresh_renews_them(
    emulator: Emulator,
) -> None:
    clock = ManualClock()
    bot = make_bot(emulator, clock, member_cache_ttl=100.0, member_refresh_interval=60.0)
    bot.warm_members()
    try:
        await bot.start()  # the warm-up is a start hook
        assert bot.members.statistics().guilds_warmed == 1
        assert requests(emulator, PAGE) == 1
        await clock.advance(60.0)  # the refresh re-warms by page
        for _ in range(50):
            if requests(emulator, PAGE) == 2:
                break
            await asyncio.sleep(0.01)
        assert requests(emulator, PAGE) == 2
        await clock.advance(59.0)  # 119 s after the warm-up, 59 s after the refresh
        await bot.members.get(emulator.guild_id, emulator.user_ids[1])
        assert requests(emulator, ONE) == 0  # renewed by the refresh, not expired
        await bot.members.close()  # no more refreshes
        await clock.advance(101.0)
        await bot.members.get(emulator.guild_id, emulator.user_ids[1])
        assert requests(emulator, ONE) == 1  # expired: fetched once
    finally:
        await bot.close()


async def test_the_caches_are_in_the_metrics(emulator: Emulator) -> None:
    bot = make_bot(emulator)
    bot.warm_members(emulator.guild_id)
    try:
        await bot.start()
        await bot.members.get(emulator.guild_id, emulator.user_ids[2])
        text = bot.metrics.exposition().decode()
        assert f"steadybot_members_warmed_total {MEMBERS}.0" in text
        assert 'steadybot_cache_hits_total{cache="members"} 1.0' in text
        assert 'steadybot_cache_size{cache="members"} 25.0' in text
    finally:
        await bot.close()


def test_a_bad_page_size_is_refused() -> None:
    with pytest.raises(ValueError, match="1-1000"):
        MemberCache(
            lambda: None,  # type: ignore[arg-type, return-value]
            BoundedCache[Member]("m", clock=ManualClock(), max_size=1, ttl=None),
            clock=ManualClock(),
            page_size=1001,
        )
