"""Keyed locks, serial queues and single flight: order, exclusion, and no leftovers."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from steadybot.clock import ManualClock
from steadybot.coordination import (
    AlreadyRunning,
    FlightTimeout,
    KeyedLock,
    LockTimeout,
    Priority,
    RedisLocks,
    SerialQueue,
    SingleFlight,
)


async def test_keyed_lock_excludes_per_key_in_fifo_order_and_forgets_idle_keys() -> None:
    clock = ManualClock()
    locks: KeyedLock[str] = KeyedLock(clock)
    order: list[str] = []

    async def work(key: str, name: str) -> None:
        async with locks(key):
            order.append(f"{name} in")
            await clock.sleep(1.0)
            order.append(f"{name} out")

    tasks = [
        asyncio.ensure_future(work("user:1", "a")),
        asyncio.ensure_future(work("user:1", "b")),
        asyncio.ensure_future(work("user:2", "c")),
    ]
    await clock.settle()
    assert order == ["a in", "c in"]  # other keys are not held up
    assert locks.holds("user:1")
    await clock.advance(1.0)
    await clock.advance(1.0)
    await asyncio.gather(*tasks)
    assert order.index("b in") > order.index("a out")  # b waited for a, not for c
    assert order.index("c out") < order.index("b out")
    assert locks.active_keys() == 0


async def test_keyed_lock_timeout_on_the_injected_clock() -> None:
    clock = ManualClock()
    locks: KeyedLock[str] = KeyedLock(clock)
    release = asyncio.Event()

    async def hold() -> None:
        async with locks("k"):
            await release.wait()

    holder = asyncio.ensure_future(hold())
    await clock.settle()

    async def late() -> None:
        async with locks("k", timeout=0.5):
            pytest.fail("got a lock that was held")

    waiting = asyncio.ensure_future(late())
    await clock.settle()
    await clock.advance(0.5)
    with pytest.raises(LockTimeout):
        await waiting
    release.set()
    await holder
    assert locks.active_keys() == 0


async def test_serial_queue_runs_interactive_work_before_waiting_background_work() -> None:
    clock = ManualClock()
    queue: SerialQueue[str] = SerialQueue()
    order: list[str] = []

    def job(name: str, seconds: float = 1.0):  # type: ignore[no-untyped-def]
        async def run() -> str:
            order.append(name)
            await clock.sleep(seconds)
            return name

        return run

    first = asyncio.ensure_future(
        queue.run("user:1", job("background 1"), priority=Priority.BACKGROUND)
    )
    await clock.settle()
    later = [
        asyncio.ensure_future(
            queue.run("user:1", job("background 2"), priority=Priority.BACKGROUND)
        ),
        asyncio.ensure_future(queue.run("user:1", job("click"))),
    ]
    await clock.settle()
    assert queue.depth("user:1") == 2
    for _ in range(3):
        await clock.advance(1.0)
    results = await asyncio.gather(first, *later)
    assert order == ["background 1", "click", "background 2"]
    assert results == ["background 1", "background 2", "click"]
    assert queue.active_keys() == 0


async def test_serial_queue_survives_a_cancelled_waiter_and_a_failing_job() -> None:
    clock = ManualClock()
    queue: SerialQueue[str] = SerialQueue()

    async def boom() -> None:
        await clock.sleep(1.0)
        raise RuntimeError("boom")

    async def fine() -> str:
        return "fine"

    failing = asyncio.ensure_future(queue.run("k", boom))
    await clock.settle()
    cancelled = asyncio.ensure_future(queue.run("k", fine))
    after = asyncio.ensure_future(queue.run("k", fine))
    await clock.settle()
    cancelled.cancel()
    await clock.advance(1.0)
    with pytest.raises(RuntimeError):
        await failing
    assert await after == "fine"
    assert cancelled.cancelled()
    assert queue.active_keys() == 0


async def test_single_flight_joins_or_rejects_the_second_identical_request() -> None:
    clock = ManualClock()
    flights: SingleFlight[str] = SingleFlight()
    runs = 0

    async def create_channel() -> str:
        nonlocal runs
        runs += 1
        await clock.sleep(1.0)
        return "channel-1"

    first = asyncio.ensure_future(flights.join("apply:1", create_channel))
    await clock.settle()
    second = asyncio.ensure_future(flights.join("apply:1", create_channel))
    with pytest.raises(AlreadyRunning):
        await flights.reject("apply:1", create_channel)
    await clock.advance(1.0)
    assert await asyncio.gather(first, second) == ["channel-1", "channel-1"]
    assert runs == 1
    assert flights.active_keys() == 0
    # A failure reaches every joiner, and the key is free again after it.

    async def broken() -> str:
        await clock.sleep(1.0)
        raise ValueError("down")

    a = asyncio.ensure_future(flights.join("k", broken))
    await clock.settle()
    b = asyncio.ensure_future(flights.join("k", broken))
    await clock.settle()
    await clock.advance(1.0)
    for task in (a, b):
        with pytest.raises(ValueError, match="down"):
            await task
    assert flights.active_keys() == 0


async def test_keyed_lock_leases_carry_increasing_fences_and_timeout_zero_tries_once() -> None:
    clock = ManualClock()
    locks: KeyedLock[str] = KeyedLock(clock)
    fences = []
    async with locks("a") as first:
        fences.append(first.fence)
        assert not first.lost
        first.check()  # never lost in-process
        with pytest.raises(LockTimeout, match="is held"):
            async with locks("a", timeout=0):
                pass
        async with locks("b", timeout=0) as other:  # a free key: taken at once
            fences.append(other.fence)
    async with locks("a", timeout=0) as again:
        fences.append(again.fence)
    assert fences == [1, 2, 3]
    stats = locks.statistics()
    assert (stats.acquired, stats.waited, stats.timeouts, stats.active_keys) == (3, 1, 1, 0)


async def test_serial_queue_turn_is_bounded_and_a_late_turn_leaves_nothing_behind() -> None:
    clock = ManualClock()
    queue: SerialQueue[str] = SerialQueue(clock)
    release = asyncio.Event()
    ran: list[str] = []

    async def hold() -> None:
        await release.wait()

    async def late() -> None:
        ran.append("late")

    holder = asyncio.ensure_future(queue.run("k", hold))
    waiter = asyncio.ensure_future(queue.run("k", late, timeout=5.0))
    await clock.settle()
    assert queue.holds("k")
    assert queue.depth("k") == 1
    await clock.advance(5.0)
    with pytest.raises(LockTimeout, match="no turn"):
        await waiter
    assert queue.depth("k") == 0
    release.set()
    await holder
    assert ran == []  # the work never started
    assert queue.active_keys() == 0
    with pytest.raises(ValueError, match="needs SerialQueue"):
        await SerialQueue[str]().run("k", late, timeout=1.0)


async def test_single_flight_joiner_gives_up_after_its_timeout_while_the_run_goes_on() -> None:
    clock = ManualClock()
    flights: SingleFlight[str] = SingleFlight(clock, join_timeout=10.0)
    done = asyncio.Event()

    async def slow() -> str:
        await done.wait()
        return "report"

    runner = asyncio.ensure_future(flights.join("r", slow))
    await clock.settle()
    short = asyncio.ensure_future(flights.join("r", slow, result_type=str, timeout=1.0))
    default = asyncio.ensure_future(flights.join("r", slow))
    await clock.advance(1.0)
    with pytest.raises(FlightTimeout):
        await short
    assert not default.done()
    await clock.advance(9.0)
    with pytest.raises(FlightTimeout, match=r"still running after 10\.00s"):
        await default
    done.set()
    assert await runner == "report"
    stats = flights.statistics()
    assert (stats.runs, stats.joined, stats.rejected, stats.active_keys) == (1, 2, 0, 0)
    with pytest.raises(ValueError, match="needs a clock"):
        SingleFlight(join_timeout=1.0)


async def test_redis_locks_refuse_a_renewal_interval_that_cannot_keep_the_lock() -> None:
    client = Redis()  # never connects: registering scripts is local
    try:
        with pytest.raises(ValueError, match="renew interval"):
            RedisLocks(client, clock=ManualClock(), namespace="n", ttl=1.0, renew_interval=1.0)
        with pytest.raises(ValueError, match="positive"):
            RedisLocks(client, clock=ManualClock(), namespace="n", ttl=0)
    finally:
        await client.aclose()


async def test_keyed_lock_timeout_holds_when_the_lock_was_just_handed_to_a_waiter() -> None:
    # Between a release and the woken waiter running, asyncio.Lock.locked() is False
    # while the lock is promised to that waiter: a bounded acquire must still time out.
    clock = ManualClock()
    locks: KeyedLock[str] = KeyedLock(clock)
    release = asyncio.Event()
    outcome: list[str] = []

    async def waiter() -> None:
        async with locks("k"):
            await release.wait()

    async def first() -> None:
        async with locks("k"):
            await clock.sleep(1.0)
        # No suspension since the release: the waiter has not run yet.
        try:
            async with locks("k", timeout=0):
                outcome.append("got it")
        except LockTimeout:
            outcome.append("timeout")

    holder = asyncio.ensure_future(first())
    await clock.settle()
    queued = asyncio.ensure_future(waiter())
    await clock.settle()
    await clock.advance(1.0)
    await clock.settle()
    assert outcome == ["timeout"]  # told at once, not parked behind the waiter
    release.set()
    await asyncio.gather(holder, queued)
    assert locks.active_keys() == 0
