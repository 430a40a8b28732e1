"""Circuit breaker for the bot's own dependencies (database, external APIs).

When a dependency is down, every call to it waits for a timeout and then fails; the
handlers pile up, the 3-second interaction deadline passes, and the dependency, if it
is merely overloaded, gets no room to recover. A breaker notices the failures and
answers at once instead, so the feature can degrade (a cached answer, "unavailable
right now") while the rest of the bot keeps working.

States (:class:`BreakerState`):

* ``CLOSED``: calls pass. Their outcomes go into a sliding time window. Once the window
  holds at least ``min_calls`` outcomes and the share of failures reaches
  ``failure_rate``, the breaker opens.
* ``OPEN``: calls are rejected at once with :class:`CircuitOpen`, whose ``retry_after``
  says when the breaker will try again (the window keeps the outcomes that opened it,
  for :meth:`CircuitBreaker.statistics`, and takes no new ones). After ``open_for``
  seconds the next call moves the breaker to ``HALF_OPEN`` (no timer runs: the state
  changes on that call).
* ``HALF_OPEN``: exactly one call, the probe, is let through; callers arriving while it
  runs are rejected with :class:`CircuitOpen`. The probe's success closes the breaker
  with an empty window; its failure opens it for another ``open_for``. A probe that is
  cancelled decides nothing: the next caller becomes the probe.

What counts as a failure is ``failure_on(exc)``; by default every ``Exception`` except
:class:`~steadybot.errors.UserFacingError` (a handler telling the user something means
the dependency answered). ``asyncio.CancelledError`` never counts: the caller gave up,
the dependency did not fail. An exception that is not a failure counts as a success.

The window is ``buckets`` bins of ``window / buckets`` seconds each, holding counts,
not individual calls: memory stays bounded whatever the call rate, and an outcome
leaves the window between ``window - window / buckets`` and ``window`` seconds after it
happened.

Outcomes of calls admitted before the last state change (a slow call started while
closed that fails after the breaker already opened) are counted in :meth:`statistics`
totals but change no state: they say nothing about the dependency *now*.
"""

from __future__ import annotations

import enum
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from steadybot.clock import Clock
from steadybot.errors import UserFacingError
from steadybot.resilience.taxonomy import FeatureUnavailable

__all__ = [
    "BreakerState",
    "BreakerStatistics",
    "CircuitBreaker",
    "CircuitOpen",
    "default_failure_on",
]

T = TypeVar("T")

logger = logging.getLogger("steadybot.breaker")


class BreakerState(enum.Enum):
    """Where a :class:`CircuitBreaker` is in its cycle."""

    # Calls pass; failures are counted in the sliding window.
    CLOSED = "closed"
    # Calls are rejected at once until ``open_for`` has passed.
    OPEN = "open"
    # One probe call is in flight (or about to be); everyone else is rejected.
    HALF_OPEN = "half_open"


class CircuitOpen(FeatureUnavailable):
    """The breaker ``name`` rejected the call; try again in ``retry_after`` seconds.

    While a half-open probe runs, ``retry_after`` is ``open_for``: the worst case, when
    the probe fails and the breaker opens again.
    """

    def __init__(self, name: str, retry_after: float) -> None:
        self.name = name
        self.retry_after = retry_after
        super().__init__(f"circuit {name!r} is open; retry in {retry_after:.2f}s")


@dataclass(frozen=True, slots=True)
class BreakerStatistics:
    """A snapshot of a breaker. ``calls``, ``failures`` and ``rejected`` count since
    creation; ``failure_rate``, ``window_calls`` and ``window_failures`` describe the
    current window; ``last_opened_at`` is on the breaker's clock's ``monotonic()``."""

    state: BreakerState
    calls: int
    failures: int
    rejected: int
    failure_rate: float
    window_calls: int
    window_failures: int
    opened_count: int
    last_opened_at: float | None


def default_failure_on(exc: Exception) -> bool:
    """Every exception is a failure except a :class:`UserFacingError`."""
    return not isinstance(exc, UserFacingError)


@dataclass(slots=True)
class _Bin:
    index: int
    calls: int = 0
    failures: int = 0


@dataclass(frozen=True, slots=True)
class _Ticket:
    generation: int
    probe: bool


class CircuitBreaker:
    """Stops calling a failing dependency for a while; see the module docstring.

    ``failure_rate``: the share of failures in the window (0 < rate <= 1) that opens it.
    ``window``: seconds of outcomes the rate looks at. ``min_calls``: outcomes the window
    must hold before the rate counts. ``open_for``: seconds to stay open before a probe.
    ``buckets``: bins the window is split into (its time resolution and memory bound).
    """

    def __init__(
        self,
        name: str,
        clock: Clock,
        *,
        failure_rate: float = 0.5,
        window: float = 30.0,
        min_calls: int = 10,
        open_for: float = 15.0,
        buckets: int = 10,
        failure_on: Callable[[Exception], bool] = default_failure_on,
    ) -> None:
        if not 0 < failure_rate <= 1:
            raise ValueError("failure_rate must be in (0, 1]")
        if window <= 0 or open_for < 0:
            raise ValueError("window must be positive and open_for not negative")
        if min_calls < 1 or buckets < 1:
            raise ValueError("min_calls and buckets must be at least 1")
        self.name = name
        self._clock = clock
        self._failure_rate = failure_rate
        self._window = window
        self._min_calls = min_calls
        self._open_for = open_for
        self._buckets = buckets
        self._bin_width = window / buckets
        self._failure_on = failure_on

        self._state = BreakerState.CLOSED
        self._generation = 0  # bumped on every transition; stale outcomes are ignored
        self._bins: deque[_Bin] = deque()
        self._window_calls = 0
        self._window_failures = 0
        self._opened_at = 0.0
        self._probe_in_flight = False

        self._calls = 0
        self._failures = 0
        self._rejected = 0
        self._opened_count = 0
        self._last_opened_at: float | None = None

    @property
    def state(self) -> BreakerState:
        """The current state. It stays ``OPEN`` past ``open_for`` until the next call."""
        return self._state

    def statistics(self) -> BreakerStatistics:
        self._slide()
        return BreakerStatistics(
            state=self._state,
            calls=self._calls,
            failures=self._failures,
            rejected=self._rejected,
            failure_rate=self._current_rate(),
            window_calls=self._window_calls,
            window_failures=self._window_failures,
            opened_count=self._opened_count,
            last_opened_at=self._last_opened_at,
        )

    def collect(self) -> Iterator[Metric]:
        """Prometheus metrics of this breaker, labelled ``breaker`` (the bot registers
        this for every :meth:`~steadybot.Bot.breaker`)."""
        stats = self.statistics()
        state = GaugeMetricFamily(
            "steadybot_breaker_open",
            "1 when the breaker is open or probing (half-open), else 0.",
            labels=["breaker"],
        )
        state.add_metric([self.name], 0.0 if stats.state is BreakerState.CLOSED else 1.0)
        yield state
        calls = CounterMetricFamily(
            "steadybot_breaker_calls",
            "Calls through the breaker, by result.",
            labels=["breaker", "result"],
        )
        calls.add_metric([self.name, "failed"], stats.failures)
        calls.add_metric([self.name, "rejected"], stats.rejected)
        calls.add_metric([self.name, "all"], stats.calls)
        yield calls

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run ``fn`` through the breaker; raise :class:`CircuitOpen` if it is open."""
        ticket = self._admit()
        try:
            result = await fn()
        except Exception as exc:
            self._finish(ticket, failed=self._failure_on(exc))
            raise
        except BaseException:
            # Cancelled (or the process is stopping): no outcome, but free the probe slot.
            self._abandon(ticket)
            raise
        self._finish(ticket, failed=False)
        return result

    async def run(
        self,
        fn: Callable[[], Awaitable[T]],
        *,
        fallback: Callable[[CircuitOpen | Exception], Awaitable[T]] | None = None,
    ) -> T:
        """Like :meth:`call`, but degrade instead of failing when ``fallback`` is given.

        ``fallback`` answers in reduced form (a cached value, a shorter reply) when the
        breaker rejects the call or the call fails with an exception that counts as a
        failure. Other exceptions (a ``UserFacingError`` by default) and cancellation
        propagate; so does whatever ``fallback`` itself raises.
        """
        if fallback is None:
            return await self.call(fn)
        try:
            return await self.call(fn)
        except CircuitOpen as exc:
            return await fallback(exc)
        except Exception as exc:
            if not self._failure_on(exc):
                raise
            return await fallback(exc)

    # -- state machine ---------------------------------------------------------------

    def _admit(self) -> _Ticket:
        now = self._clock.monotonic()
        if self._state is BreakerState.OPEN:
            remaining = self._opened_at + self._open_for - now
            if remaining > 0:
                raise self._reject(remaining)
            self._transition(BreakerState.HALF_OPEN)
        if self._state is BreakerState.HALF_OPEN:
            if self._probe_in_flight:
                raise self._reject(self._open_for)
            self._probe_in_flight = True
            self._calls += 1
            return _Ticket(self._generation, probe=True)
        self._calls += 1
        return _Ticket(self._generation, probe=False)

    def _reject(self, retry_after: float) -> CircuitOpen:
        self._rejected += 1
        return CircuitOpen(self.name, retry_after)

    def _finish(self, ticket: _Ticket, *, failed: bool) -> None:
        if failed:
            self._failures += 1
        if ticket.generation != self._generation:
            return
        if ticket.probe:
            self._probe_in_flight = False
            self._transition(BreakerState.OPEN if failed else BreakerState.CLOSED)
            return
        self._record(failed)
        if failed and self._should_open():
            self._transition(BreakerState.OPEN)

    def _abandon(self, ticket: _Ticket) -> None:
        if ticket.probe and ticket.generation == self._generation:
            self._probe_in_flight = False

    def _should_open(self) -> bool:
        return self._window_calls >= self._min_calls and self._current_rate() >= self._failure_rate

    def _transition(self, new: BreakerState) -> None:
        old = self._state
        self._state = new
        self._generation += 1
        self._probe_in_flight = False
        if new is BreakerState.OPEN:
            self._opened_at = self._clock.monotonic()
            self._opened_count += 1
            self._last_opened_at = self._opened_at
            logger.warning(
                "circuit %r: %s -> open for %.1fs (window: %d failures in %d calls)",
                self.name,
                old.value,
                self._open_for,
                self._window_failures,
                self._window_calls,
            )
        else:
            logger.info("circuit %r: %s -> %s", self.name, old.value, new.value)
        if new is BreakerState.CLOSED:
            self._clear_window()

    # -- sliding window --------------------------------------------------------------

    def _record(self, failed: bool) -> None:
        self._slide()
        index = int(self._clock.monotonic() // self._bin_width)
        if not self._bins or self._bins[-1].index != index:
            self._bins.append(_Bin(index))
        current = self._bins[-1]
        current.calls += 1
        self._window_calls += 1
        if failed:
            current.failures += 1
            self._window_failures += 1

    def _slide(self) -> None:
        oldest = int(self._clock.monotonic() // self._bin_width) - self._buckets + 1
        while self._bins and self._bins[0].index < oldest:
            gone = self._bins.popleft()
            self._window_calls -= gone.calls
            self._window_failures -= gone.failures

    def _clear_window(self) -> None:
        self._bins.clear()
        self._window_calls = 0
        self._window_failures = 0

    def _current_rate(self) -> float:
        return self._window_failures / self._window_calls if self._window_calls else 0.0
