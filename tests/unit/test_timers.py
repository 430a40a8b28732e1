"""DeadlineQueue: many deadlines on one clock timer, fired in time order."""

from __future__ import annotations

from steadybot.clock import ManualClock
from steadybot.interactions.timers import DeadlineQueue


async def test_deadlines_fire_in_time_order_even_when_scheduled_out_of_order() -> None:
    clock = ManualClock()
    queue = DeadlineQueue(clock)
    fired: list[tuple[str, float]] = []
    now = clock.monotonic()
    for name, offset in (("b", 2.0), ("c", 3.0), ("a", 1.0)):
        queue.schedule(now + offset, lambda name=name: fired.append((name, clock.monotonic())))
    await clock.advance(0.99)
    assert fired == []
    await clock.advance(5)
    assert fired == [("a", now + 1), ("b", now + 2), ("c", now + 3)]
    assert len(queue) == 0
    assert clock.pending_sleepers == 0


async def test_cancelled_deadlines_never_fire_and_leave_one_timer_at_most() -> None:
    clock = ManualClock()
    queue = DeadlineQueue(clock)
    fired: list[int] = []
    handles = [
        queue.schedule(clock.monotonic() + 2, lambda i=i: fired.append(i)) for i in range(100)
    ]
    assert clock.pending_sleepers == 1
    for handle in handles[:99]:
        handle.cancel()
    await clock.advance(2)
    assert fired == [99]
    handles[99].cancel()  # after firing: a no-op
    assert len(queue) == 0
    assert clock.pending_sleepers == 0


async def test_a_deadline_scheduled_from_a_callback_is_honoured() -> None:
    clock = ManualClock()
    queue = DeadlineQueue(clock)
    fired: list[float] = []
    start = clock.monotonic()

    def first() -> None:
        fired.append(clock.monotonic())
        queue.schedule(clock.monotonic() + 1, lambda: fired.append(clock.monotonic()))

    queue.schedule(start + 1, first)
    await clock.advance(3)
    assert fired == [start + 1, start + 2]
