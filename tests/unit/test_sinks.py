"""HttpReplySink: the hand-over between a handler and the HTTP request waiting on it."""

from __future__ import annotations

import asyncio

import pytest

from steadybot.clock import ManualClock
from steadybot.interactions.sinks import HttpReplySink, InitialResponseRejected


async def test_reply_is_handed_over_and_settled_waits_for_the_write() -> None:
    clock = ManualClock()
    sink = HttpReplySink(clock, flush_timeout=1.0)
    await sink.settled()  # nothing handed over yet: returns at once
    waiting = asyncio.ensure_future(sink.wait_reply(clock.monotonic() + 3))
    await sink.send({"type": 4})
    assert sink.accepted
    assert await waiting == {"type": 4}
    settled = asyncio.ensure_future(sink.settled())
    await clock.settle()
    assert not settled.done(), "a REST call must wait until the reply is written"
    sink.mark_flushed()
    await clock.settle()
    assert settled.done()


async def test_settled_gives_up_after_the_flush_timeout() -> None:
    clock = ManualClock()
    sink = HttpReplySink(clock, flush_timeout=1.0)
    await sink.send({"type": 5})
    settled = asyncio.ensure_future(sink.settled())
    await clock.advance(0.9)
    assert not settled.done()
    await clock.advance(0.2)
    assert settled.done()


async def test_no_reply_by_the_deadline_closes_the_sink() -> None:
    clock = ManualClock()
    sink = HttpReplySink(clock, flush_timeout=1.0)
    waiting = asyncio.ensure_future(sink.wait_reply(clock.monotonic() + 3))
    await clock.advance(3)
    assert await waiting is None
    with pytest.raises(InitialResponseRejected):
        await sink.send({"type": 4})
    assert not sink.accepted
    assert clock.pending_sleepers == 0
