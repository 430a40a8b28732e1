"""Redis keyed locks and single flight against the real Redis on 127.0.0.1:6379.

Two ``RedisLocks`` on two connections stand for two processes. Redis's ``PX`` expiry
runs on real time, so TTLs here are small (0.3 s) and every real wait is bounded;
renewal and polling run on the injected clock (a ``ManualClock`` where a holder must
*not* renew, standing for a process paused or dead).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from steadybot.clock import ManualClock, SystemClock
from steadybot.coordination import (
    AlreadyRunning,
    FlightFailed,
    FlightTimeout,
    LockLost,
    LockTimeout,
    RedisFlights,
    RedisLocks,
)

pytestmark = [pytest.mark.services, pytest.mark.timeout(20)]


@pytest.fixture
async def other(redis_url: str) -> AsyncIterator[Redis]:
    """A second connection: the other process."""
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def cleanup(redis: Redis, namespace: str) -> AsyncIterator[None]:
    yield
    keys = [key async for key in redis.scan_iter(f"{namespace}:*")]
    if keys:
        await redis.delete(*keys)


def locks(redis: Redis, namespace: str, clock: object = None, **options: float) -> RedisLocks:
    return RedisLocks(
        redis,
        clock=clock if clock is not None else SystemClock(),  # type: ignore[arg-type]
        namespace=namespace,
        ttl=options.get("ttl", 5.0),
        poll=options.get("poll", 0.02),
    )


@pytest.mark.usefixtures("cleanup")
async def test_only_the_owner_releases_and_the_key_is_gone_after(
    redis: Redis, other: Redis, namespace: str
) -> None:
    one, two = locks(redis, namespace), locks(other, namespace)
    async with one("order:1") as lease:
        stored = await redis.get(f"{namespace}:lock:order:1")
        assert stored == lease.token.encode()  # the owner token, random per acquisition
        assert 0 < await redis.pttl(f"{namespace}:lock:order:1") <= 5000
        with pytest.raises(LockTimeout):
            async with two("order:1", timeout=0):
                pass
        # A release with another token (what the other process would send) is refused.
        assert await two._release_script(keys=[lease.redis_key], args=["not-the-owner"]) == 0
        assert await redis.get(f"{namespace}:lock:order:1") == lease.token.encode()
        async with two("order:2", timeout=0):  # other keys are free
            pass
    assert not lease.lost
    assert await redis.exists(f"{namespace}:lock:order:1") == 0
    async with two("order:1", timeout=0):  # free once released
        pass
    assert two.statistics().timeouts == 1
    assert one.active_keys() == two.active_keys() == 0


@pytest.mark.usefixtures("cleanup")
async def test_fences_strictly_increase_across_keys_and_processes(
    redis: Redis, other: Redis, namespace: str
) -> None:
    one, two = locks(redis, namespace), locks(other, namespace)
    fences = []
    for n in range(6):
        side = one if n % 2 else two
        async with side(f"key:{n % 3}") as lease:
            fences.append(lease.fence)
    assert fences == sorted(fences)
    assert len(set(fences)) == len(fences)
    assert fences[-1] - fences[0] == 5


@pytest.mark.usefixtures("cleanup")
async def test_a_waiter_gets_the_key_when_it_is_released(
    redis: Redis, other: Redis, namespace: str
) -> None:
    one, two = locks(redis, namespace), locks(other, namespace)
    order: list[str] = []

    async def holder() -> None:
        async with one("k") as lease:
            order.append(f"one {lease.fence}")
            await asyncio.sleep(0.15)
            order.append("one out")

    task = asyncio.ensure_future(holder())
    await asyncio.sleep(0.03)
    async with two("k", timeout=2.0) as lease:
        order.append(f"two {lease.fence}")
    await task
    assert order[1] == "one out"
    assert order[2].startswith("two")
    assert two.statistics().waited == 1
    with pytest.raises(LockTimeout, match="within"):
        async with one("k"), two("k", timeout=0.1):
            pass


@pytest.mark.usefixtures("cleanup")
async def test_ttl_frees_the_lock_of_a_holder_that_stopped_renewing_and_it_sees_it_lost(
    redis: Redis, other: Redis, namespace: str
) -> None:
    paused = ManualClock()  # this holder's renewals never come: it is "paused"
    one = locks(redis, namespace, paused, ttl=0.3)
    two = locks(other, namespace, ttl=0.3)
    # The second holder gets the key once the 0.3 s TTL ran out (real time).
    async with one("k") as stale, two("k", timeout=2.0) as fresh:
        assert fresh.fence > stale.fence
        await paused.advance(0.1)  # the paused holder wakes up; its renewal runs
        for _ in range(100):
            if stale.lost:
                break
            await asyncio.sleep(0.01)
        assert stale.lost
        with pytest.raises(LockLost):
            stale.check()
        assert not fresh.lost
        assert await redis.get(f"{namespace}:lock:k") == fresh.token.encode()
    assert one.statistics().lost == 1
    assert await redis.exists(f"{namespace}:lock:k") == 0


@pytest.mark.usefixtures("cleanup")
async def test_renewal_keeps_the_lock_past_its_ttl(
    redis: Redis, other: Redis, namespace: str
) -> None:
    one = locks(redis, namespace, ttl=0.3)
    two = locks(other, namespace, ttl=0.3)
    async with one("k") as lease:
        await asyncio.sleep(0.8)  # well past the TTL: renewed every 0.1 s
        with pytest.raises(LockTimeout):
            async with two("k", timeout=0):
                pass
        assert 0 < await redis.pttl(f"{namespace}:lock:k") <= 300
    assert not lease.lost
    assert one.statistics().lost == 0


@pytest.mark.usefixtures("cleanup")
async def test_a_cancelled_wait_leaves_no_lock_behind(redis: Redis, namespace: str) -> None:
    one = locks(redis, namespace)
    async with one("held"):
        waiter = asyncio.ensure_future(one("held", timeout=5.0).__aenter__())
        await asyncio.sleep(0.05)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
    assert one.active_keys() == 0
    for _ in range(50):  # a cancelled try that had won is released in the background
        if not await redis.exists(f"{namespace}:lock:held"):
            break
        await asyncio.sleep(0.01)
    assert not await redis.exists(f"{namespace}:lock:held")


def flights(client: Redis, namespace: str, clock: object = None, **options: float) -> RedisFlights:
    return RedisFlights(
        locks(client, namespace, clock, ttl=options.get("ttl", 5.0)),
        clock=clock if clock is not None else SystemClock(),  # type: ignore[arg-type]
        join_timeout=options.get("join_timeout", 5.0),
        poll=0.02,
    )


@pytest.mark.usefixtures("cleanup")
async def test_single_flight_rejects_and_joins_across_connections(
    redis: Redis, other: Redis, namespace: str
) -> None:
    one, two = flights(redis, namespace), flights(other, namespace)
    started, release = asyncio.Event(), asyncio.Event()
    runs: list[str] = []

    async def report(name: str) -> dict[str, int]:
        runs.append(name)
        started.set()
        await release.wait()
        return {"total": 42}

    first = asyncio.ensure_future(one.join("report:7", lambda: report("one"), result_type=dict))
    await started.wait()
    with pytest.raises(AlreadyRunning):
        await two.reject("report:7", lambda: report("two"))
    joiner = asyncio.ensure_future(
        two.join("report:7", lambda: report("two"), result_type=dict[str, int])
    )
    await asyncio.sleep(0.1)
    release.set()
    assert await first == {"total": 42}
    assert await joiner == {"total": 42}  # through Redis, as JSON
    assert runs == ["one"]
    assert two.statistics().joined == 1
    assert two.statistics().rejected == 1
    assert one.statistics().runs == 1
    # Done: the next call runs again (single flight is not a cache).
    assert await two.join("report:7", lambda: report("two"), result_type=dict) == {"total": 42}
    assert runs == ["one", "two"]


@pytest.mark.usefixtures("cleanup")
async def test_a_joiner_gets_the_runners_failure_or_times_out(
    redis: Redis, other: Redis, namespace: str
) -> None:
    one, two = flights(redis, namespace), flights(other, namespace, join_timeout=0.2)
    release = asyncio.Event()

    async def fails() -> int:
        await release.wait()
        raise ValueError("the report service said no")

    async def never() -> int:
        raise AssertionError("the joiner must not run it")

    runner = asyncio.ensure_future(one.join("r", fails, result_type=int))
    await asyncio.sleep(0.05)
    with pytest.raises(FlightTimeout):
        await two.join("r", never, result_type=int)
    joiner = asyncio.ensure_future(two.join("r", never, result_type=int, timeout=3.0))
    await asyncio.sleep(0.05)
    release.set()
    with pytest.raises(ValueError, match="said no"):
        await runner
    with pytest.raises(FlightFailed, match="ValueError: the report service said no"):
        await joiner


@pytest.mark.usefixtures("cleanup")
async def test_a_joiner_takes_over_when_the_runner_died(
    redis: Redis, other: Redis, namespace: str
) -> None:
    dead = ManualClock()  # never renews: its lock expires after the 0.3 s TTL
    one = flights(redis, namespace, dead, ttl=0.3)
    two = flights(other, namespace, ttl=0.3)
    hung = asyncio.Event()

    async def hangs() -> int:
        await hung.wait()  # the "process" stops here and never publishes
        return 1

    async def runs_again() -> int:
        return 2

    runner = asyncio.ensure_future(one.join("r", hangs, result_type=int))
    await asyncio.sleep(0.05)
    assert await two.join("r", runs_again, result_type=int, timeout=3.0) == 2
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner
