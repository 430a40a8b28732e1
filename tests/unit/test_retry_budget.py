"""Retry budgets spend and refill over their window; retry_call obeys policy and budget."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import pytest

from steadybot.clock import ManualClock
from steadybot.resilience.retry import RetryBudget, RetryPolicy, backoff_ceiling, retry_call


class Flaky(Exception):
    pass


def spend_all(budget: RetryBudget) -> int:
    spent = 0
    while budget.try_spend():
        spent += 1
        assert spent < 10_000
    return spent


def test_a_quiet_service_gets_min_per_second_over_the_window() -> None:
    budget = RetryBudget(ManualClock(), ratio=0.2, window=10.0, min_per_second=1.0)
    assert budget.can_retry()
    assert budget.can_retry()  # asking spends nothing
    assert spend_all(budget) == 10
    assert not budget.can_retry()
    assert budget.statistics().denied == 1


def test_retries_are_a_ratio_of_first_attempts() -> None:
    budget = RetryBudget(ManualClock(), ratio=0.2, min_per_second=0.0)
    assert not budget.can_retry()
    for _ in range(10):
        budget.record_attempt()
    assert spend_all(budget) == 2
    for _ in range(4):
        budget.record_attempt()
    assert not budget.can_retry()  # 14 attempts earn 2.8 retries; 2 are spent
    budget.record_attempt()
    assert spend_all(budget) == 1
    stats = budget.statistics()
    assert (stats.attempts, stats.retries, stats.available) == (15, 3, 0)


def test_float_rounding_does_not_lose_a_retry() -> None:
    budget = RetryBudget(ManualClock(), ratio=0.57, min_per_second=0.0)
    for _ in range(100):
        budget.record_attempt()
    assert spend_all(budget) == 57


async def test_spent_retries_refill_as_the_window_slides() -> None:
    clock = ManualClock()
    budget = RetryBudget(clock, ratio=0.0, window=10.0, min_per_second=0.3)
    assert spend_all(budget) == 3
    await clock.advance(9.0)
    assert not budget.can_retry()  # still inside the window
    await clock.advance(1.0)
    assert budget.statistics().retries == 0
    assert spend_all(budget) == 3


async def test_earned_retries_expire_with_their_attempts() -> None:
    clock = ManualClock()
    budget = RetryBudget(clock, ratio=0.5, window=5.0, min_per_second=0.0)
    for _ in range(4):
        budget.record_attempt()
    await clock.advance(5.0)
    assert not budget.can_retry()
    assert budget.statistics().attempts == 0


async def test_memory_is_one_bin_per_second_of_window() -> None:
    clock = ManualClock()
    budget = RetryBudget(clock, window=3.5)
    for _ in range(200):
        for _ in range(10):
            budget.record_attempt()
        budget.try_spend()
        await clock.advance(0.1)
    assert len(budget._bins) <= 4
    assert budget.statistics().attempts <= 10 * 40


@pytest.mark.parametrize(
    "options",
    [{"ratio": -0.1}, {"min_per_second": -1.0}, {"window": 0.0}],
)
def test_limits_are_validated(options: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must"):
        RetryBudget(ManualClock(), **options)


class Script:
    """An async callable that fails ``failures`` times, noting when each call came."""

    def __init__(self, clock: ManualClock, failures: int, exc: BaseException | None = None):
        self.clock = clock
        self.failures = failures
        self.exc = exc or Flaky("try again")
        self.calls: list[float] = []

    async def __call__(self) -> str:
        self.calls.append(self.clock.monotonic())
        if len(self.calls) <= self.failures:
            raise self.exc
        return "done"


async def run_to_end(clock: ManualClock, call: Awaitable[str]) -> str:
    async def wrapper() -> str:
        return await call

    task = asyncio.create_task(wrapper())
    await clock.advance(1_000.0)
    return await task


def retry_flaky(exc: BaseException) -> bool:
    return isinstance(exc, Flaky)


def call_with(
    clock: ManualClock,
    fn: Callable[[], Awaitable[str]],
    *,
    policy: RetryPolicy | None = None,
    budget: RetryBudget | None = None,
) -> Coroutine[Any, Any, str]:
    return retry_call(
        fn,
        policy=policy or RetryPolicy(max_attempts=5, base=0.5, cap=4.0),
        clock=clock,
        rng=random.Random(7),
        budget=budget,
        retry_on=retry_flaky,
    )


async def test_sleeps_the_full_jitter_backoff_of_a_seeded_rng() -> None:
    clock = ManualClock()
    fn = Script(clock, failures=3)
    policy = RetryPolicy(max_attempts=5, base=0.5, cap=4.0)
    assert await run_to_end(clock, call_with(clock, fn, policy=policy)) == "done"
    expected_rng = random.Random(7)
    expected = [policy.backoff(n, expected_rng) for n in range(3)]
    waits = [later - earlier for earlier, later in zip(fn.calls, fn.calls[1:], strict=False)]
    assert waits == pytest.approx(expected)
    assert len(set(waits)) == 3  # jittered, not constant
    assert all(0 <= w < policy.ceiling(n) for n, w in enumerate(waits))


async def test_stops_after_policy_max_attempts() -> None:
    clock = ManualClock()
    fn = Script(clock, failures=100)
    policy = RetryPolicy(max_attempts=3, base=0.1, cap=1.0)
    with pytest.raises(Flaky):
        await run_to_end(clock, call_with(clock, fn, policy=policy))
    assert len(fn.calls) == 3


async def test_does_not_retry_what_retry_on_refuses() -> None:
    clock = ManualClock()
    fn = Script(clock, failures=1, exc=ValueError("a bug"))
    with pytest.raises(ValueError, match="a bug"):
        await run_to_end(clock, call_with(clock, fn))
    assert len(fn.calls) == 1


async def test_cancellation_is_never_retried() -> None:
    clock = ManualClock()
    fn = Script(clock, failures=1, exc=asyncio.CancelledError())
    with pytest.raises(asyncio.CancelledError):
        await run_to_end(clock, call_with(clock, fn))
    assert len(fn.calls) == 1


async def test_stops_when_the_budget_is_empty() -> None:
    clock = ManualClock()
    budget = RetryBudget(clock, ratio=0.0, window=10.0, min_per_second=0.2)  # 2 retries
    fn = Script(clock, failures=100)
    with pytest.raises(Flaky):
        await run_to_end(clock, call_with(clock, fn, budget=budget))
    assert len(fn.calls) == 3  # the policy would allow 5
    stats = budget.statistics()
    assert (stats.retries, stats.denied, stats.available) == (0, 1, 2)  # the window slid


async def test_a_shared_budget_caps_retries_across_calls() -> None:
    clock = ManualClock()
    budget = RetryBudget(clock, ratio=0.2, window=10.0, min_per_second=0.0)
    scripts = [Script(clock, failures=100) for _ in range(10)]
    calls = [asyncio.create_task(call_with(clock, fn, budget=budget)) for fn in scripts]
    await clock.advance(5.0)
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert all(isinstance(r, Flaky) for r in results)
    assert sum(len(fn.calls) for fn in scripts) == 12  # 10 first attempts, 2 retries
    # 8 calls are denied their first retry, the 2 that retried are denied their second.
    assert budget.statistics().denied == 10


async def test_without_a_budget_only_the_policy_limits() -> None:
    clock = ManualClock()
    fn = Script(clock, failures=4)
    assert await run_to_end(clock, call_with(clock, fn)) == "done"
    assert len(fn.calls) == 5


def test_the_backoff_ceiling_doubles_from_base_up_to_cap() -> None:
    ceilings = [backoff_ceiling(n, base=0.5, cap=3.0) for n in range(-1, 5)]
    assert ceilings == [0.25, 0.5, 1.0, 2.0, 3.0, 3.0]
    assert backoff_ceiling(10_000, base=1e-9, cap=7.0) == 7.0  # no overflow far out
    policy = RetryPolicy(base=0.5, cap=3.0)
    assert [policy.ceiling(n) for n in range(5)] == ceilings[1:]
