"""Serialized work and the backend factory on the real Redis: two "processes" (two
coordinations on two connections) never run work for one key at the same time."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from redis.asyncio import Redis

from steadybot.clock import SystemClock
from steadybot.config import Settings
from steadybot.coordination import RedisLocks, coordination_from_settings
from steadybot.interactions.guards import HandlerGuards

pytestmark = [pytest.mark.services, pytest.mark.timeout(20)]


async def test_serialized_work_for_one_key_runs_one_at_a_time_across_processes(
    redis: Redis, redis_url: str, namespace: str
) -> None:
    settings = Settings(redis_url=redis_url, redis_prefix=namespace, lock_wait_poll=0.01)
    clock = SystemClock()
    sides = [
        HandlerGuards(coordination_from_settings(settings, clock), clock=clock, settings=settings)
        for _ in range(2)
    ]
    assert all(isinstance(side.locks, RedisLocks) for side in sides)
    done: list[str] = []
    # Runs of each key at the same moment, at most.
    active: dict[str, int] = {}
    peak: dict[str, int] = {}

    def counted(name: str, key: str) -> Callable[[], Awaitable[None]]:
        async def work() -> None:
            active[key] = active.get(key, 0) + 1
            peak[key] = max(peak.get(key, 0), active[key])
            await asyncio.sleep(0.05)
            active[key] -= 1
            done.append(name)

        return work

    try:
        await asyncio.gather(
            *(
                sides[n % 2].background(key, counted(f"{key}#{n}", key))
                for n in range(6)
                for key in ("user:1", "user:2")
            )
        )
        assert peak == {"user:1": 1, "user:2": 1}  # one at a time per key, across both
        assert len(done) == 12
        stats = [side.statistics() for side in sides]
        assert sum(s.background_done for s in stats) == 12
        assert sum(s.waited for s in stats) >= 6
        assert all(s.backend == "redis" and s.locks.active_keys == 0 for s in stats)
    finally:
        for side in sides:
            await side.close()
        keys = [key async for key in redis.scan_iter(f"{namespace}:*")]
        assert [k for k in keys if b":lock:" in k] == []  # nothing outlives its use
        if keys:
            await redis.delete(*keys)
