"""The manual clock wakes sleepers in order, including ones set while advancing."""

from __future__ import annotations

import asyncio

from steadybot.clock import ManualClock, SystemClock


async def test_sleepers_wake_in_order_and_chained_timers_fire() -> None:
    clock = ManualClock()
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.monotonic() - 1000.0))
        if name == "a":
            await clock.sleep(1.0)
            woke.append(("a2", clock.monotonic() - 1000.0))

    tasks = [asyncio.create_task(sleeper("b", 2.0)), asyncio.create_task(sleeper("a", 1.0))]
    await clock.advance(1.5)
    assert woke == [("a", 1.0)]
    await clock.advance(10)
    assert woke == [("a", 1.0), ("b", 2.0), ("a2", 2.0)]
    assert clock.monotonic() == 1011.5
    await asyncio.gather(*tasks)


async def test_wall_time_moves_with_monotonic_and_zero_sleep_yields() -> None:
    clock = ManualClock()
    before = clock.time()
    await clock.sleep(0)
    await clock.advance(3)
    assert clock.time() - before == 3
    assert clock.pending_sleepers == 0


async def test_system_clock_is_real() -> None:
    clock = SystemClock()
    start = clock.monotonic()
    await clock.sleep(0)
    assert clock.monotonic() >= start
    assert clock.time() > 1_600_000_000
