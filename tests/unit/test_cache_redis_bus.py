"""The Redis invalidation bus when Redis is not there: nothing blocks, nothing crashes,
the send queue stays bounded, one warning per outage, close() ends in bounded time.

Redis is "down" by pointing the client at a closed port on 127.0.0.1 (no server
needed); the real-Redis tests are in tests/services/test_cache_redis.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from steadybot.cache import BoundedCache, RedisInvalidationBus
from steadybot.cache.redis_bus import INVALIDATION_CHANNEL
from steadybot.clock import ManualClock
from steadybot.config import Settings


async def eventually(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    """Wait for socket I/O (a refused connection) that no clock controls, bounded."""
    async with asyncio.timeout(seconds):
        while not condition():  # noqa: ASYNC110 (no event exists for socket state)
            await asyncio.sleep(0.005)


def unreachable_redis() -> Redis:
    # Port 1 on loopback: refused at once. No retries inside redis-py: the bus retries.
    return Redis(host="127.0.0.1", port=1, retry=Retry(NoBackoff(), 0), socket_connect_timeout=1)


async def test_while_redis_is_down_publish_queues_boundedly_and_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = ManualClock()
    redis = unreachable_redis()
    bus = RedisInvalidationBus(
        redis, "ns", clock=clock, max_pending=3, backoff_base=1.0, backoff_cap=2.0, close_timeout=5
    )
    cache: BoundedCache[int] = BoundedCache("c", clock=clock, max_size=5, ttl=10.0, bus=bus)
    with caplog.at_level(logging.INFO, logger="steadybot.cache.bus"):
        await bus.start()  # does not raise: it keeps trying in the background
        await cache.start()
        cache.set("k", 1)
        for i in range(5):
            cache.invalidate(f"k{i}")  # never blocks, never raises
        # Both tasks are now waiting out a backoff on the clock; let them retry a while.
        await eventually(lambda: clock.pending_sleepers == 3)  # sender, listener, sweeper
        for _ in range(5):
            await clock.advance(2.0)
            await eventually(lambda: clock.pending_sleepers == 3)
    stats = bus.statistics()
    assert (stats.published, stats.pending, stats.dropped) == (0, 3, 2)
    assert not stats.subscribed
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sum("lost Redis" in w for w in warnings) == 1, warnings
    assert sum("cannot publish" in w for w in warnings) == 1, warnings
    closing = asyncio.ensure_future(bus.close())
    await eventually(lambda: clock.pending_sleepers >= 1)
    await clock.advance(5.0)  # close_timeout on the clock: it gives up on the 3 unsent
    await closing
    await cache.close()
    await redis.aclose()
    assert "unsent at close" in caplog.text
    assert clock.pending_sleepers == 0


def test_bad_arguments_and_settings() -> None:
    redis = unreachable_redis()
    with pytest.raises(ValueError, match="namespace"):
        RedisInvalidationBus(redis, "")
    with pytest.raises(ValueError, match="max_pending"):
        RedisInvalidationBus(redis, "ns", max_pending=0)
    with pytest.raises(ValueError, match="backoff"):
        RedisInvalidationBus(redis, "ns", backoff_base=2.0, backoff_cap=1.0)
    bus = RedisInvalidationBus(redis, "ns")
    with pytest.raises(ValueError, match="kind"):
        bus.publish("c", "all", "")  # type: ignore[arg-type]
    bus = RedisInvalidationBus.from_settings(redis, Settings(redis_prefix="bot7"))
    assert bus.channel == f"bot7:{INVALIDATION_CHANNEL}"


async def test_flush_before_start_is_an_error() -> None:
    bus = RedisInvalidationBus(unreachable_redis(), "ns")
    with pytest.raises(RuntimeError, match="not started"):
        await bus.flush()
