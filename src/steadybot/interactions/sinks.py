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
from typing import Protocol

from steadybot.clock import Clock
from steadybot.errors import DiscordHTTPError, SteadybotError
from steadybot.rest import RestClient

__all__ = ["CallbackSink", "HttpReplySink", "InitialResponseRejected", "InitialResponseSink"]

JSONBody = dict[str, object]


class InitialResponseRejected(SteadybotError):
    """The initial response could not be delivered: the window closed or Discord refused."""


class InitialResponseSink(Protocol):
    """Delivers exactly one initial response (the responder guarantees "exactly").

    ``accepted`` turns true once the response is certain to go out, even if ``send``
    is still waiting (for the HTTP reply to be written): a handler cancelled in that
    wait must not believe nothing was sent.
    """

    accepted: bool

    async def send(self, body: JSONBody) -> None:
        """Deliver ``body`` or raise :class:`InitialResponseRejected`."""
        ...

    async def settled(self) -> None:
        """Return once the initial response has reached Discord (or can no longer)."""
        ...


class HttpReplySink:
    """Hands the initial response to the HTTP request that carried the interaction.

    On the hot path (one per request), so it uses plain futures and clock timers rather
    than extra tasks: arming and cancelling a timer costs far less than a task.
    """

    def __init__(self, clock: Clock, *, flush_timeout: float) -> None:
        self._clock = clock
        self._flush_timeout = flush_timeout
        loop = asyncio.get_running_loop()
        self._reply: asyncio.Future[JSONBody | None] = loop.create_future()
        self._flushed: asyncio.Future[None] = loop.create_future()
        self._closed = False
        self.accepted = False  # the reply body was handed over (it will be written)

    async def send(self, body: JSONBody) -> None:
        if self._closed or self._reply.done():
            raise InitialResponseRejected("the HTTP request is no longer waiting for a reply")
        self._reply.set_result(body)
        self.accepted = True

    async def settled(self) -> None:
        # Waited for only before a REST call that must not overtake the reply (PATCH
        # @original after a defer); an instant answer never waits here.
        if not self.accepted or self._flushed.done():
            return  # nothing handed over yet, or already written
        timer = self._clock.call_later(self._flush_timeout, self.mark_flushed)
        try:
            await self._flushed
        finally:
            timer.cancel()

    async def wait_reply(self, deadline: float) -> JSONBody | None:
        """The body to reply with, or None when ``deadline`` (monotonic) passed first."""
        if not self._reply.done():
            timer = self._clock.call_later(deadline - self._clock.monotonic(), self.close)
            try:
                await self._reply
            finally:
                timer.cancel()
        return self._reply.result()

    def mark_flushed(self) -> None:
        """Called by the front door once the reply has been written."""
        if not self._flushed.done():
            self._flushed.set_result(None)

    def close(self) -> None:
        """The request stopped waiting; a later send is rejected, not lost silently."""
        self._closed = True
        if not self._reply.done():
            self._reply.set_result(None)
        self.mark_flushed()


class CallbackSink:
    """POSTs the initial response to the interaction callback route."""

    def __init__(self, rest: RestClient, *, interaction_id: str, token: str, deadline: float):
        self._rest = rest
        self._interaction_id = interaction_id
        self._token = token
        self._deadline = deadline
        self.accepted = False

    async def send(self, body: JSONBody) -> None:
        try:
            await self._rest.create_interaction_response(
                self._interaction_id, self._token, body, deadline=self._deadline
            )
        except DiscordHTTPError as exc:
            raise InitialResponseRejected(str(exc)) from exc
        self.accepted = True

    async def settled(self) -> None:
        return None  # the callback POST has returned: Discord has it
