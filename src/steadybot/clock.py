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
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "ManualClock", "SystemClock"]


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


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class ManualClock:
    """A clock that moves only when told to, for deterministic tests.

    ``sleep`` parks the caller until :meth:`advance` moves time past its wake-up
    point. ``advance`` wakes sleepers in wake-up order and lets the event loop run
    between wake-ups, so a timer set by a woken task inside the advanced span also
    fires, in order.
    """

    # How many loop iterations to give woken tasks after each wake-up; enough for a
    # woken coroutine to run through a few awaits of already-completed futures.
    _SETTLE_ITERATIONS = 20

    def __init__(self, start: float = 1_000.0, wall_offset: float = 1_700_000_000.0) -> None:
        self._now = start
        self._wall_offset = wall_offset
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._sequence = itertools.count()

    def monotonic(self) -> float:
        return self._now

    def time(self) -> float:
        return self._wall_offset + self._now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._sequence), future))
        await future

    @property
    def pending_sleepers(self) -> int:
        """How many sleeps are waiting for time to move."""
        return sum(1 for _, _, future in self._sleepers if not future.done())

    async def settle(self) -> None:
        """Let ready tasks run without moving time."""
        for _ in range(self._SETTLE_ITERATIONS):
            await asyncio.sleep(0)

    async def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, waking every sleeper due on the way."""
        target = self._now + seconds
        await self.settle()
        while self._sleepers and self._sleepers[0][0] <= target:
            wake_at, _, future = heapq.heappop(self._sleepers)
            self._now = max(self._now, wake_at)
            if not future.done():
                future.set_result(None)
            await self.settle()
        self._now = target
        await self.settle()
