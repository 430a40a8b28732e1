"""Where an initial response goes: the HTTP reply, or the callback route.

Theory: an HTTP-delivered interaction is best answered in the body of the HTTP reply
(no extra request, nothing to rate-limit). The responder does not know which front door
the interaction came through; it hands the initial response to a sink.
:class:`HttpReplySink` passes it to the waiting ASGI request and then waits until the
reply is written, so that a REST call made right after a defer (PATCH @original) does
not overtake the reply that creates the original. :class:`CallbackSink` POSTs it to
``/interactions/{id}/{token}/callback`` (gateway delivery, or after the HTTP reply is
gone).
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from steadybot.clock import Clock
from steadybot.errors import DiscordHTTPError, SteadybotError
from steadybot.rest import RestClient

__all__ = ["CallbackSink", "HttpReplySink", "InitialResponseRejected", "InitialResponseSink"]

JSONBody = dict[str, object]


class InitialResponseRejected(SteadybotError):
    """The initial response could not be delivered: the window closed or Discord refused."""


class InitialResponseSink(Protocol):
    """Delivers exactly one initial response (the responder guarantees "exactly")."""

    async def send(self, body: JSONBody) -> None:
        """Deliver ``body`` or raise :class:`InitialResponseRejected`."""
        ...


class HttpReplySink:
    """Hands the initial response to the HTTP request that carried the interaction."""

    def __init__(self, clock: Clock, *, flush_timeout: float) -> None:
        self._clock = clock
        self._flush_timeout = flush_timeout
        loop = asyncio.get_running_loop()
        self._reply: asyncio.Future[JSONBody] = loop.create_future()
        self._flushed = asyncio.Event()
        self._closed = False

    async def send(self, body: JSONBody) -> None:
        if self._closed or self._reply.done():
            raise InitialResponseRejected("the HTTP request is no longer waiting for a reply")
        self._reply.set_result(body)
        await self._wait_flushed()

    async def _wait_flushed(self) -> None:
        flushed = asyncio.ensure_future(self._flushed.wait())
        timer = asyncio.ensure_future(self._clock.sleep(self._flush_timeout))
        try:
            await asyncio.wait({flushed, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            flushed.cancel()
            timer.cancel()

    async def wait_reply(self, deadline: float) -> JSONBody | None:
        """The body to reply with, or None when ``deadline`` (monotonic) passed first."""
        timer = asyncio.ensure_future(self._clock.sleep(deadline - self._clock.monotonic()))
        waiting: set[asyncio.Future[Any]] = {self._reply, timer}
        try:
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
        if self._reply.done():
            return self._reply.result()
        self.close()
        return None

    def mark_flushed(self) -> None:
        """Called by the front door once the reply has been written."""
        self._flushed.set()

    def close(self) -> None:
        """The request stopped waiting; a later send is rejected, not lost silently."""
        self._closed = True
        self._flushed.set()


class CallbackSink:
    """POSTs the initial response to the interaction callback route."""

    def __init__(self, rest: RestClient, *, interaction_id: str, token: str, deadline: float):
        self._rest = rest
        self._interaction_id = interaction_id
        self._token = token
        self._deadline = deadline

    async def send(self, body: JSONBody) -> None:
        try:
            await self._rest.create_interaction_response(
                self._interaction_id, self._token, body, deadline=self._deadline
            )
        except DiscordHTTPError as exc:
            raise InitialResponseRejected(str(exc)) from exc
