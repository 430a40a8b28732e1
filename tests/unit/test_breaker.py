"""The circuit breaker's every transition, on a manual clock."""

from __future__ import annotations

import asyncio
import logging

import pytest

from steadybot.clock import ManualClock
from steadybot.errors import UserFacingError
from steadybot.resilience.breaker import (
    BreakerState,
    CircuitBreaker,
    CircuitOpen,
)
from steadybot.resilience.taxonomy import FailureKind, classify

CLOSED = BreakerState.CLOSED
OPEN = BreakerState.OPEN
HALF_OPEN = BreakerState.HALF_OPEN


class Down(Exception):
    pass


async def ok() -> str:
    return "ok"


async def down() -> str:
    raise Down("dependency down")


def breaker(clock: ManualClock, **overrides: object) -> CircuitBreaker:
    options: dict[str, object] = {
        "failure_rate": 0.5,
        "window": 10.0,
        "buckets": 10,
        "min_calls": 4,
        "open_for": 15.0,
    }
    options.update(overrides)
    return CircuitBreaker("db", clock, **options)  # type: ignore[arg-type]


async def fail(b: CircuitBreaker, times: int = 1) -> None:
    for _ in range(times):
        with pytest.raises(Down):
            await b.call(down)


async def succeed(b: CircuitBreaker, times: int = 1) -> None:
    for _ in range(times):
        assert await b.call(ok) == "ok"


async def trip(b: CircuitBreaker) -> None:
    await fail(b, 4)
    assert b.state is OPEN


async def test_opens_at_the_failure_rate_only_after_min_calls() -> None:
    b = breaker(ManualClock(), min_calls=10)
    await fail(b, 9)  # 100% failures, but fewer than min_calls outcomes
    assert b.state is CLOSED
    await fail(b)
    assert b.state is OPEN
    assert b.statistics().opened_count == 1


async def test_stays_closed_below_the_failure_rate() -> None:
    b = breaker(ManualClock(), min_calls=10)
    await succeed(b, 6)
    await fail(b, 5)  # 5 of 11: 45%
    assert b.state is CLOSED
    assert b.statistics().failure_rate == pytest.approx(5 / 11)
    await fail(b)  # 6 of 12: 50%
    assert b.state is OPEN


async def test_open_rejects_at_once_with_retry_after() -> None:
    clock = ManualClock()
    b = breaker(clock)
    await trip(b)
    called: list[str] = []

    async def spy() -> str:
        called.append("x")
        return "x"

    await clock.advance(5.0)
    with pytest.raises(CircuitOpen) as info:
        await b.call(spy)
    assert info.value.name == "db"
    assert info.value.retry_after == pytest.approx(10.0)
    assert classify(info.value) is FailureKind.FEATURE
    assert called == []
    stats = b.statistics()
    assert (stats.state, stats.rejected, stats.calls, stats.failures) == (OPEN, 1, 4, 4)
    assert stats.last_opened_at == 1000.0

    await clock.advance(9.999)
    with pytest.raises(CircuitOpen):
        await b.call(spy)
    assert called == []


async def test_after_open_for_exactly_one_probe_and_concurrent_callers_are_rejected() -> None:
    clock = ManualClock()
    b = breaker(clock)
    await trip(b)
    await clock.advance(15.0)
    release = asyncio.Event()
    probes: list[str] = []

    async def slow_probe() -> str:
        probes.append("probe")
        await release.wait()
        return "recovered"

    probe = asyncio.create_task(b.call(slow_probe))
    await clock.settle()
    assert b.state is HALF_OPEN
    for _ in range(3):
        with pytest.raises(CircuitOpen) as info:
            await b.call(slow_probe)
        assert info.value.retry_after == 15.0
    assert probes == ["probe"]

    release.set()
    assert await probe == "recovered"
    assert b.state is CLOSED
    stats = b.statistics()
    assert (stats.window_calls, stats.window_failures, stats.failure_rate) == (0, 0, 0.0)
    assert stats.rejected == 3


async def test_probe_success_closes_with_a_cleared_window() -> None:
    clock = ManualClock()
    b = breaker(clock, window=60.0)  # the old failures would still be in the window
    await trip(b)
    await clock.advance(15.0)
    await succeed(b)
    assert b.state is CLOSED
    # The four old failures are gone: three new ones (under min_calls) do not reopen it.
    await fail(b, 3)
    assert b.state is CLOSED
    await fail(b)
    assert b.state is OPEN


async def test_probe_failure_reopens_for_another_open_for() -> None:
    clock = ManualClock()
    b = breaker(clock)
    await trip(b)
    await clock.advance(20.0)
    await fail(b)
    assert b.state is OPEN
    stats = b.statistics()
    assert stats.opened_count == 2
    assert stats.last_opened_at == 1020.0
    with pytest.raises(CircuitOpen) as info:
        await b.call(ok)
    assert info.value.retry_after == 15.0
    await clock.advance(15.0)
    await succeed(b)
    assert b.state is CLOSED


async def test_old_failures_slide_out_of_the_window() -> None:
    clock = ManualClock()
    b = breaker(clock)
    await fail(b, 3)
    await clock.advance(10.0)
    await fail(b)  # the first three are out of the window: 1 of 1, under min_calls
    assert b.state is CLOSED
    assert b.statistics().window_calls == 1


async def test_failures_inside_the_window_still_count() -> None:
    clock = ManualClock()
    b = breaker(clock)
    await fail(b, 3)
    await clock.advance(9.0)
    await fail(b)
    assert b.state is OPEN


async def test_window_memory_is_bounded_by_buckets() -> None:
    clock = ManualClock()
    b = breaker(clock, min_calls=1_000_000)
    for _ in range(100):
        await succeed(b, 50)
        await clock.advance(0.25)
    assert len(b._bins) <= 10
    assert b.statistics().window_calls <= 50 * 40


async def test_cancellation_is_not_a_failure() -> None:
    clock = ManualClock()
    b = breaker(clock, min_calls=1)

    async def hang() -> str:
        await clock.sleep(60)
        return "late"

    task = asyncio.create_task(b.call(hang))
    await clock.settle()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert b.state is CLOSED
    stats = b.statistics()
    assert (stats.failures, stats.window_calls) == (0, 0)


async def test_a_cancelled_probe_lets_the_next_caller_probe() -> None:
    clock = ManualClock()
    b = breaker(clock)
    await trip(b)
    await clock.advance(15.0)

    async def hang() -> str:
        await clock.sleep(60)
        return "late"

    task = asyncio.create_task(b.call(hang))
    await clock.settle()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert b.state is HALF_OPEN
    await succeed(b)
    assert b.state is CLOSED


async def test_user_facing_errors_are_not_failures() -> None:
    b = breaker(ManualClock(), min_calls=1)

    async def refuse() -> str:
        raise UserFacingError("No such item.")

    for _ in range(5):
        with pytest.raises(UserFacingError):
            await b.call(refuse)
    assert b.state is CLOSED
    assert b.statistics().failures == 0
    assert b.statistics().window_calls == 5


async def test_failure_on_decides_what_counts() -> None:
    b = breaker(ManualClock(), min_calls=1, failure_on=lambda exc: not isinstance(exc, Down))
    await fail(b, 5)
    assert b.state is CLOSED

    async def other() -> str:
        raise ValueError("bad")

    for _ in range(4):  # 4 failures in 9 calls
        with pytest.raises(ValueError, match="bad"):
            await b.call(other)
    assert b.state is CLOSED
    with pytest.raises(ValueError, match="bad"):
        await b.call(other)
    assert b.state is OPEN


async def test_outcomes_of_calls_from_an_earlier_state_change_nothing() -> None:
    clock = ManualClock()
    b = breaker(clock, window=60.0)  # a stale failure would meet the window's four

    async def slow(outcome: str) -> str:
        await clock.sleep(30)
        if outcome == "fail":
            raise Down(outcome)
        return outcome

    slow_fail = asyncio.create_task(b.call(lambda: slow("fail")))
    slow_ok = asyncio.create_task(b.call(lambda: slow("ok")))
    await clock.settle()
    await trip(b)  # at t=0
    await clock.advance(15.0)
    probe = asyncio.create_task(b.call(lambda: slow("ok")))  # probe until t=45
    await clock.advance(15.0)  # the closed-era calls finish at t=30
    with pytest.raises(Down):
        await slow_fail
    assert await slow_ok == "ok"
    assert b.state is HALF_OPEN  # neither the stale success nor failure decided
    assert b.statistics().opened_count == 1
    await clock.advance(15.0)
    assert await probe == "ok"
    assert b.state is CLOSED
    assert b.statistics().failures == 5


async def test_run_degrades_through_the_fallback() -> None:
    clock = ManualClock()
    b = breaker(clock)
    seen: list[Exception] = []

    async def cached(exc: CircuitOpen | Exception) -> str:
        seen.append(exc)
        return "cached"

    assert await b.run(ok, fallback=cached) == "ok"
    assert await b.run(down, fallback=cached) == "cached"  # failure counted, then degraded
    assert isinstance(seen[-1], Down)
    assert b.state is CLOSED
    for _ in range(2):  # 3 failures in 4 calls
        assert await b.run(down, fallback=cached) == "cached"
    assert b.state is OPEN
    assert await b.run(ok, fallback=cached) == "cached"
    assert isinstance(seen[-1], CircuitOpen)
    assert b.statistics().failures == 3
    assert len(seen) == 4


async def test_run_without_fallback_raises_and_user_errors_skip_the_fallback() -> None:
    clock = ManualClock()
    b = breaker(clock)

    async def cached(exc: CircuitOpen | Exception) -> str:
        return "cached"

    async def refuse() -> str:
        raise UserFacingError("No.")

    with pytest.raises(UserFacingError):
        await b.run(refuse, fallback=cached)
    assert b.statistics().failures == 0
    b = breaker(clock)
    await trip(b)
    with pytest.raises(CircuitOpen):
        await b.run(ok)


async def test_transitions_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    clock = ManualClock()
    b = breaker(clock)
    with caplog.at_level(logging.INFO, logger="steadybot.breaker"):
        await trip(b)
        await clock.advance(15.0)
        await succeed(b)
    messages = [r.getMessage() for r in caplog.records if r.name == "steadybot.breaker"]
    assert messages == [
        "circuit 'db': closed -> open for 15.0s (window: 4 failures in 4 calls)",
        "circuit 'db': open -> half_open",
        "circuit 'db': half_open -> closed",
    ]
    assert caplog.records[0].levelno == logging.WARNING


@pytest.mark.parametrize(
    "overrides",
    [
        {"failure_rate": 0.0},
        {"failure_rate": 1.5},
        {"window": 0.0},
        {"open_for": -1.0},
        {"min_calls": 0},
        {"buckets": 0},
    ],
)
def test_limits_are_validated(overrides: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="must"):
        breaker(ManualClock(), **overrides)
