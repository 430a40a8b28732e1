"""Many deadlines, one clock timer.

Every ``auto`` interaction needs a defer timer at ``arrival + defer_after`` that is
almost always cancelled, because the handler answers first. Arming and cancelling a
loop timer per interaction is measurable on the hot path (the endpoint benchmark);
:class:`DeadlineQueue` keeps the deadlines in a heap and arms a single clock timer for
the earliest, so scheduling costs a heap push and cancelling costs a flag.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable

from steadybot.clock import Clock, Timer

__all__ = ["Deadline", "DeadlineQueue"]


class Deadline:
    """A scheduled callback; :meth:`cancel` is O(1)."""

    __slots__ = ("callback", "cancelled")

    def __init__(self, callback: Callable[[], None]) -> None:
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class DeadlineQueue:
    """Callbacks due at monotonic times on ``clock``, fired in time order."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._heap: list[tuple[float, int, Deadline]] = []
        self._sequence = itertools.count()
        self._timer: Timer | None = None
        self._armed_for = float("inf")

    def __len__(self) -> int:
        return len(self._heap)

    def schedule(self, at: float, callback: Callable[[], None]) -> Deadline:
        """Run ``callback`` at monotonic time ``at`` unless the result is cancelled."""
        deadline = Deadline(callback)
        heapq.heappush(self._heap, (at, next(self._sequence), deadline))
        if at < self._armed_for:
            self._arm(at)
        return deadline

    def _arm(self, at: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._armed_for = at
        self._timer = self._clock.call_later(at - self._clock.monotonic(), self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._armed_for = float("inf")
        heap = self._heap
        now = self._clock.monotonic()
        while heap and (heap[0][2].cancelled or heap[0][0] <= now):
            _, _, deadline = heapq.heappop(heap)
            if not deadline.cancelled:
                deadline.cancelled = True  # fired: cancelling it later is a no-op
                deadline.callback()
        if heap:
            self._arm(heap[0][0])
