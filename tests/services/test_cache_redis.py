"""Cache invalidation across processes through the real Redis on 127.0.0.1:6379.

Each "process" is a cache with its own Redis client and its own bus, as two bot
processes would have. Waits are on events with a bounded timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from redis.asyncio import Redis

from steadybot.cache import BoundedCache, Invalidation, RedisInvalidationBus
from steadybot.clock import SystemClock

pytestmark = pytest.mark.services

WAIT = 5.0  # seconds: generous for a loaded CI machine, instant when things work


@dataclass
class Process:
    redis: Redis
    bus: RedisInvalidationBus
    cache: BoundedCache[str]
    seen: asyncio.Queue[Invalidation]

    async def next_message(self) -> Invalidation:
        return await asyncio.wait_for(self.seen.get(), WAIT)


async def make_process(redis_url: str, namespace: str, name: str) -> Process:
    redis = Redis.from_url(redis_url, client_name=f"{namespace}:{name}".replace(" ", "_"))
    clock = SystemClock()
    bus = RedisInvalidationBus(redis, namespace, clock=clock, backoff_base=0.05, backoff_cap=0.2)
    cache: BoundedCache[str] = BoundedCache("members", clock=clock, max_size=100, ttl=60.0, bus=bus)
    seen: asyncio.Queue[Invalidation] = asyncio.Queue()
    await bus.start()
    await cache.start()  # subscribes first: the probe below sees messages after the cache
    bus.subscribe("members", seen.put_nowait)
    return Process(redis, bus, cache, seen)


@pytest.fixture
async def two(redis_url: str, namespace: str) -> AsyncIterator[tuple[Process, Process]]:
    one = await make_process(redis_url, namespace, "one")
    two = await make_process(redis_url, namespace, "two")
    yield one, two
    for process in (one, two):
        await process.cache.close()
        await process.bus.close()
        await process.redis.aclose()


async def test_an_invalidation_in_one_process_drops_the_key_in_the_other(
    two: tuple[Process, Process],
) -> None:
    one, other = two
    for process in (one, other):
        process.cache.set("user:1", "Ann", tags=["guild:9"])
        process.cache.set("user:2", "Bob", tags=["guild:9"])
        process.cache.set("role:1", "admin")
    assert one.cache.invalidate("user:1")
    one.cache.set("user:1", "Ann v2")  # stored at once: its own echo must not drop it
    message = await other.next_message()
    assert message == Invalidation("members", "key", "user:1", message.origin)
    assert "user:1" not in other.cache
    assert other.cache.get("user:2") == "Bob"
    echo = await one.next_message()  # the publisher hears its own message...
    assert echo.origin == message.origin
    assert one.cache.get("user:1") == "Ann v2"  # ...and ignores it

    other.cache.invalidate_tag("guild:9")
    assert (await one.next_message()).kind == "tag"
    assert (await other.next_message()).kind == "tag"  # its own echo, ignored
    assert "user:2" not in one.cache
    assert one.cache.get("user:1") == "Ann v2"  # the new value carries no tag

    one.cache.invalidate_prefix("role:")
    assert (await other.next_message()).kind == "prefix"
    assert "role:1" not in other.cache
    await one.bus.flush()
    assert one.bus.statistics().published == 2
    assert other.cache.statistics().remote_invalidations == 2


async def test_a_message_that_is_not_ours_is_counted_and_skipped(
    two: tuple[Process, Process], redis: Redis
) -> None:
    one, other = two
    other.cache.set("k", "v")
    await redis.publish(one.bus.channel, b"not json")
    await redis.publish(one.bus.channel, b'{"c": "members", "k": "everything", "v": ""}')
    one.cache.invalidate("k")
    await other.next_message()  # the valid one arrives after the two bad ones
    assert "k" not in other.cache
    assert other.bus.statistics().malformed == 2


async def test_after_losing_its_connection_the_bus_resubscribes_and_clears_its_caches(
    two: tuple[Process, Process], redis: Redis, namespace: str
) -> None:
    one, other = two
    other.cache.set("user:1", "Ann")
    other.cache.set("user:2", "Bob")
    # Kill only the other process's pub/sub connection (by its client name).
    victims = [
        client["id"]
        for client in await redis.client_list()
        if client.get("name") == f"{namespace}:two" and "subscribe" in client.get("cmd", "")
    ]
    assert len(victims) == 1, victims
    await redis.client_kill_filter(_id=victims[0])
    reset = await other.next_message()  # what the bus tells the caches when it is back
    assert reset == Invalidation("members", "prefix", "")
    assert len(other.cache) == 0  # anything may have changed during the gap
    assert other.bus.statistics().reconnects == 1
    assert other.bus.statistics().subscribed
    other.cache.set("user:3", "Cid")
    one.cache.invalidate("user:3")
    assert (await other.next_message()).value == "user:3"  # delivery works again
    assert "user:3" not in other.cache
