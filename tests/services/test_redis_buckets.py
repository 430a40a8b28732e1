"""Rate-limit slots shared through the real Redis on 127.0.0.1:6379.

Skipped when Redis is not reachable, unless STEADYBOT_REQUIRE_SERVICES=1 (CI), where
a missing Redis fails the run.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest
from redis.asyncio import Redis

from steadybot.clock import SystemClock
from steadybot.emulator import Emulator, RateLimitSettings
from steadybot.emulator.ratelimits import BucketLimit
from steadybot.rest.redis_slots import RedisSlotStore
from steadybot.rest.slots import Claim

pytestmark = pytest.mark.services

HAMMER = Path(__file__).with_name("hammer.py")


async def test_take_is_shared_between_two_stores_and_all_or_nothing(
    redis: Redis, redis_url: str, namespace: str
) -> None:
    one = RedisSlotStore(redis, namespace=namespace, token="t")
    two = RedisSlotStore(Redis.from_url(redis_url), namespace=namespace, token="t")
    other_token = RedisSlotStore(redis, namespace=namespace, token="u")
    claim = Claim("bucket:1", 3, 10.0)
    try:
        assert await one.take([claim]) == 0.0
        assert await two.take([claim]) == 0.0
        assert await one.take([claim]) == 0.0
        wait = await two.take([claim])
        assert 9.0 < wait <= 10.0  # full for both processes
        assert await other_token.take([claim]) == 0.0  # another token: its own slots
        # All or nothing: a full claim next to a free one records nothing on either.
        free = Claim("bucket:2", 1, 10.0)
        assert await one.take([free, claim]) > 9.0
        assert await two.take([free]) == 0.0
    finally:
        await two.close()


async def test_block_sync_route_sharing_and_probe_claims(redis: Redis, namespace: str) -> None:
    one = RedisSlotStore(redis, namespace=namespace, token="t")
    two = RedisSlotStore(redis, namespace=namespace, token="t")
    claim = Claim("bucket:1", 5, 1.0)
    await one.block("bucket:1", 5.0)
    assert 4.0 < await two.take([claim]) <= 5.0
    claim = Claim("bucket:2", 5, 1.0)
    await one.sync(claim, used=5, reset_after=0.8)
    assert 0.5 < await two.take([claim]) <= 0.8
    assert await two.route("GET /x") is None
    await one.learn_route("GET /x", "abc 5 1.0")
    assert await two.route("GET /x") == "abc 5 1.0"
    assert await one.claim_probe("?GET /x:1", 5.0)
    assert not await two.claim_probe("?GET /x:1", 5.0)
    await one.end_probe("?GET /x:1")
    assert await two.claim_probe("?GET /x:1", 5.0)
    keys = [key async for key in redis.scan_iter(f"{namespace}:*")]
    ttls = [await redis.pttl(key) for key in keys]
    assert keys
    assert all(ttl > 0 for ttl in ttls)  # nothing outlives its use
    assert not any(key.split(b":")[-1] == b"t" for key in keys)  # no raw token in keys


async def run_two_processes(emulator: Emulator, redis_url: str, namespace: str) -> list[dict]:
    """Two bot processes with one token create messages on one channel at once."""
    channel = emulator.channel_ids[0]
    args = [emulator.api_base, emulator.bot_token, channel, "15", redis_url, namespace]
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            str(HAMMER),
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        for _ in range(2)
    ]
    for process in processes:  # both imported and set up: now start them together
        assert process.stdout is not None
        ready = await asyncio.wait_for(process.stdout.readline(), timeout=20)
        assert ready.strip() == b"ready"
    outputs = []
    for process in processes:
        assert process.stdin is not None
        process.stdin.write(b"go\n")
        await process.stdin.drain()
    for process in processes:
        out, _ = await asyncio.wait_for(process.communicate(), timeout=25)
        assert process.returncode == 0
        outputs.append(json.loads(out.decode().strip().splitlines()[-1]))
    return outputs


@pytest.mark.timeout(60)
async def test_two_processes_sharing_one_token_through_redis_meet_no_429(
    redis_url: str, namespace: str
) -> None:
    # One fast bucket so the test takes seconds: 5 creates per 0.5 s per channel.
    limits = RateLimitSettings()
    limits.buckets["message-create"] = BucketLimit(5, 0.5)
    async with Emulator(clock=SystemClock(), members=5, rate_limits=limits) as emulator:
        shared = await run_two_processes(emulator, redis_url, namespace)
        rejected_shared = dict(emulator.statistics().rate_limited)
        # The control: the same two processes, each with only its own in-process slots.
        alone = await run_two_processes(emulator, "", namespace)
        rejected_alone = dict(emulator.statistics().rate_limited)

    assert [r["errors"] for r in shared] == [[], []]
    assert all("429" not in r["by_status"] for r in shared)
    assert rejected_shared == {"user": 0, "global": 0, "cloudflare": 0}
    # 30 creates at 5 per 0.5 s: at least 5 windows after the first, across both
    # processes (one may start a little after the other on a loaded machine).
    assert max(r["ended"] for r in shared) - min(r["started"] for r in shared) >= 2.5
    # Without the shared store the two overrun the bucket together.
    assert rejected_alone["user"] > 0
    assert any("429" in r["by_status"] for r in alone)
