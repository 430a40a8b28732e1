"""Retry policy: how many attempts, and how long to wait between them.

Full-jitter exponential backoff (AWS architecture blog, "Exponential Backoff and
Jitter"): attempt *n* waits a uniform random time in ``[0, min(cap, base * 2**n))``.
Jitter spreads retries of many clients so they do not hit a recovering server in step.
The random source is injected, so tests are deterministic.

A policy bounds the retries of *one* call; it does not bound the retries of *all* calls.
When a dependency fails for everyone, every call retries ``max_attempts - 1`` times and
the failing service sees up to ``max_attempts`` times its normal load just when it can
least afford it. A :class:`RetryBudget` (Finagle's ``RetryBudget``, gRPC's retry
throttling) caps retries across calls to a share of recent first attempts: with
``ratio=0.2`` retries add at most 20% load, plus a small floor of ``min_per_second`` so
a quiet service can still retry now and then. :func:`retry_call` puts policy, jitter
and budget together around one async call.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from steadybot.clock import Clock
    from steadybot.config import Settings

__all__ = [
    "RetryBudget",
    "RetryBudgetStatistics",
    "RetryPolicy",
    "backoff_ceiling",
    "retry_call",
]

T = TypeVar("T")


def backoff_ceiling(attempt: int, *, base: float, cap: float) -> float:
    """The largest wait after failed attempt number ``attempt`` (0-based): ``base``
    doubled per attempt, never above ``cap``. Every backoff in steadybot grows by this
    one formula; callers add the jitter their case wants."""
    return min(cap, base * 2.0 ** min(attempt, 62))  # the bound keeps 2**n a float


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``max_attempts`` counts the first try; ``base``/``cap`` are seconds."""

    max_attempts: int = 5
    base: float = 0.25
    cap: float = 8.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base <= 0 or self.cap <= 0:
            raise ValueError("base and cap must be positive")

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(
            max_attempts=settings.rest_max_attempts,
            base=settings.rest_backoff_base,
            cap=settings.rest_backoff_cap,
        )

    def ceiling(self, attempt: int) -> float:
        """The largest wait after failed attempt number ``attempt`` (0-based)."""
        return backoff_ceiling(attempt, base=self.base, cap=self.cap)

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """A full-jitter wait after failed attempt number ``attempt`` (0-based)."""
        return rng.uniform(0, self.ceiling(attempt))

    def can_retry(self, attempt: int) -> bool:
        """Whether another attempt may follow attempt number ``attempt`` (0-based)."""
        return attempt + 1 < self.max_attempts


@dataclass(frozen=True, slots=True)
class RetryBudgetStatistics:
    """A snapshot of a budget: ``attempts`` and ``retries`` in the current window,
    ``available`` retries left now, ``denied`` retries refused since creation."""

    attempts: int
    retries: int
    available: int
    denied: int


@dataclass(slots=True)
class _Second:
    index: int
    attempts: int = 0
    retries: int = 0


class RetryBudget:
    """Allows retries up to ``ratio`` of the first attempts seen in the last ``window``
    seconds, plus ``min_per_second * window`` retries that are always allowed.

    Counts are kept in one-second bins, ``ceil(window)`` of them at most, so memory is
    bounded whatever the call rate; a count leaves the window between ``window - 1``
    and ``window`` seconds after it was made. Call :meth:`record_attempt` once per
    call (first attempts only), and :meth:`try_spend` before each retry.
    """

    # Forgives float rounding in ratio * attempts (0.57 * 100 is 56.99999999999999).
    _EPSILON = 1e-9

    def __init__(
        self,
        clock: Clock,
        *,
        ratio: float = 0.2,
        window: float = 10.0,
        min_per_second: float = 1.0,
    ) -> None:
        if ratio < 0 or min_per_second < 0:
            raise ValueError("ratio and min_per_second must not be negative")
        if window <= 0:
            raise ValueError("window must be positive")
        self._clock = clock
        self._ratio = ratio
        self._reserve = min_per_second * window
        self._seconds = math.ceil(window)
        self._bins: deque[_Second] = deque()
        self._attempts = 0
        self._retries = 0
        self._denied = 0

    def record_attempt(self) -> None:
        """Count a first attempt; each one earns ``ratio`` of a retry."""
        self._current().attempts += 1
        self._attempts += 1

    def can_retry(self) -> bool:
        """Whether one more retry fits the budget now (spends nothing)."""
        self._slide()
        return self._balance() >= 1 - self._EPSILON

    def try_spend(self) -> bool:
        """Spend one retry if the budget allows it; ``False`` (and spend nothing) if not."""
        if not self.can_retry():
            self._denied += 1
            return False
        self._current().retries += 1
        self._retries += 1
        return True

    def statistics(self) -> RetryBudgetStatistics:
        self._slide()
        return RetryBudgetStatistics(
            attempts=self._attempts,
            retries=self._retries,
            available=max(0, math.floor(self._balance() + self._EPSILON)),
            denied=self._denied,
        )

    def _balance(self) -> float:
        return self._ratio * self._attempts + self._reserve - self._retries

    def _current(self) -> _Second:
        self._slide()
        index = math.floor(self._clock.monotonic())
        if not self._bins or self._bins[-1].index != index:
            self._bins.append(_Second(index))
        return self._bins[-1]

    def _slide(self) -> None:
        oldest = math.floor(self._clock.monotonic()) - self._seconds + 1
        while self._bins and self._bins[0].index < oldest:
            gone = self._bins.popleft()
            self._attempts -= gone.attempts
            self._retries -= gone.retries


async def retry_call(
    fn: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    clock: Clock,
    rng: random.Random,
    budget: RetryBudget | None = None,
    retry_on: Callable[[BaseException], bool],
) -> T:
    """Await ``fn()``, retrying while ``retry_on(exc)``, the policy and the budget allow.

    Before retry *n* (0-based) it sleeps ``policy.backoff(n, rng)`` on ``clock``. The
    last exception propagates when ``retry_on`` refuses it, ``policy.max_attempts`` is
    used up, or ``budget`` has no retry left. The call counts as one attempt in
    ``budget``. Cancellation is never retried. ``steadybot.resilience.is_transient`` is
    a ready ``retry_on``.
    """
    if budget is not None:
        budget.record_attempt()
    attempt = 0
    while True:
        try:
            return await fn()
        except Exception as exc:
            if not (retry_on(exc) and policy.can_retry(attempt)):
                raise
            if budget is not None and not budget.try_spend():
                raise
        await clock.sleep(policy.backoff(attempt, rng))
        attempt += 1
