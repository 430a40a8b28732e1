"""HttpReplySink: exactly one HTTP reply, written by whoever answers first."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from steadybot.interactions.sinks import HttpReplySink, InitialResponseRejected


class Writer:
    """An ASGI ``send`` that records replies; can hold a write open."""

    def __init__(self) -> None:
        self.replies: list[tuple[int, bytes]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self._status = 0

    async def __call__(self, message: dict[str, Any]) -> None:
        await self.gate.wait()
        if message["type"] == "http.response.start":
            self._status = message["status"]
        else:
            self.replies.append((self._status, message["body"]))


async def test_the_answer_is_written_at_once_and_a_second_is_rejected() -> None:
    writer = Writer()
    sink = HttpReplySink(writer)
    await sink.send({"type": 4})
    assert sink.accepted
    assert writer.replies == [(200, b'{"type":4}')]
    with pytest.raises(InitialResponseRejected):
        await sink.send({"type": 5})
    sink.expire()  # the deadline timer firing late changes nothing
    await sink.close()
    assert len(writer.replies) == 1


async def test_send_returns_only_once_the_reply_is_written() -> None:
    writer = Writer()
    writer.gate.clear()
    sink = HttpReplySink(writer)
    sending = asyncio.ensure_future(sink.send({"type": 5}))
    for _ in range(5):
        await asyncio.sleep(0)
    assert sink.accepted
    assert not sending.done()
    writer.gate.set()
    await sending
    assert writer.replies == [(200, b'{"type":5}')]


async def test_the_deadline_writes_a_failure_and_later_answers_are_rejected() -> None:
    writer = Writer()
    sink = HttpReplySink(writer)
    sink.expire()
    with pytest.raises(InitialResponseRejected):
        await sink.send({"type": 4})
    assert not sink.accepted
    await sink.close()
    assert [status for status, _ in writer.replies] == [500]


async def test_close_without_any_answer_writes_a_failure() -> None:
    writer = Writer()
    sink = HttpReplySink(writer)
    await sink.close()
    assert [status for status, _ in writer.replies] == [500]
