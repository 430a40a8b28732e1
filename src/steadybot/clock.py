"""Injectable time.

Everything in steadybot that waits or measures (the 3 s deadline, the defer point,
the 15-minute token, backoff, throttling) asks a :class:`Clock`. Production uses
:class:`SystemClock`; tests use :class:`ManualClock`, whose time moves only when the
test calls :meth:`ManualClock.advance`, so a "5 second" handler runs in microseconds
and every interleaving of timers is reproducible.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar, runtime_checkable

__all__ = ["Clock", "ManualClock", "SystemClock", "Timer", "within"]

T = TypeVar("T")


class Timer(Protocol):
    """A scheduled callback that can be cancelled."""

    def cancel(self) -> None: ...


@runtime_checkable
class Clock(Protocol):
    """What steadybot needs to know about time."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back; for deadlines and durations."""
        ...

    def time(self) -> float:
        """Wall-clock seconds since the epoch; for signature timestamps."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` on this clock."""
        ...

    def call_later(self, seconds: float, callback: Callable[[], None]) -> Timer:
        """Run ``callback`` in ``seconds`` on this clock, unless cancelled first.

        Cheaper than a task that sleeps: the hot path arms one timer per request.
        """
        ...


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def call_later(self, seconds: float, callback: Callable[[], None]) -> Timer:
        return asyncio.get_running_loop().call_later(max(0.0, seconds), callback)


class _ManualTimer:
    __slots__ = ("callback", "cancelled")

    def __init__(self, callback: Callable[[], None]) -> None:
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualClock:
    """A clock that moves only when told to, for deterministic tests.

    ``sleep`` parks the caller (and ``call_later`` parks a callback) until
    :meth:`advance` moves time past its wake-up point. ``advance`` fires timers in
    wake-up order and lets the event loop run between them, so a timer set by a woken
    task inside the advanced span also fires, in order.
    """

    # How many loop iterations to give woken tasks after each wake-up; enough for a
    # woken coroutine to run through a few awaits of already-completed futures.
    _SETTLE_ITERATIONS = 20

    def __init__(self, start: float = 1_000.0, wall_offset: float = 1_700_000_000.0) -> None:
        self._now = start
        self._wall_offset = wall_offset
        self._timers: list[tuple[float, int, _ManualTimer]] = []
        self._sequence = itertools.count()

    def monotonic(self) -> float:
        return self._now

    def time(self) -> float:
        return self._wall_offset + self._now

    def call_later(self, seconds: float, callback: Callable[[], None]) -> Timer:
        timer = _ManualTimer(callback)
        heapq.heappush(self._timers, (self._now + max(0.0, seconds), next(self._sequence), timer))
        return timer

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not future.done():
                future.set_result(None)

        timer = self.call_later(seconds, wake)
        try:
            await future
        finally:
            timer.cancel()

    @property
    def pending_sleepers(self) -> int:
        """How many sleeps and timers are waiting for time to move."""
        return sum(1 for _, _, timer in self._timers if not timer.cancelled)

    async def settle(self) -> None:
        """Let ready tasks run without moving time."""
        for _ in range(self._SETTLE_ITERATIONS):
            await asyncio.sleep(0)

    async def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, firing every timer due on the way."""
        target = self._now + seconds
        await self.settle()
        while self._timers and self._timers[0][0] <= target:
            wake_at, _, timer = heapq.heappop(self._timers)
            if timer.cancelled:
                continue
            self._now = max(self._now, wake_at)
            timer.cancelled = True  # fired: no longer pending
            timer.callback()
            await self.settle()
        self._now = target
        await self.settle()


async def within(clock: Clock, awaitable: Awaitable[T], seconds: float) -> T:
    """Await ``awaitable`` for at most ``seconds`` on ``clock``, else cancel it and raise
    :class:`TimeoutError`. (``asyncio.timeout`` runs on the loop's time, which a
    :class:`ManualClock` does not move.) If it finishes as time runs out, its result
    wins: a lock acquired at the last moment is held, not lost."""
    task = asyncio.ensure_future(awaitable)
    if not task.done() and seconds > 0:
        timer = asyncio.ensure_future(clock.sleep(seconds))
        try:
            await asyncio.wait((task, timer), return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            task.cancel()
            raise
        finally:
            timer.cancel()
            await asyncio.gather(timer, return_exceptions=True)
    if not task.done():
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            raise TimeoutError(f"not done within {seconds:.3f}s") from None
    return await task
