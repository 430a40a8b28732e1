"""Where an initial response goes: the HTTP reply, or the callback route.

Theory: an HTTP-delivered interaction is best answered in the body of the HTTP reply
(no extra request, nothing to rate-limit). The responder does not know which front door
the interaction came through; it hands the initial response to a sink.
:class:`HttpReplySink` writes it as the reply of the ASGI request. ``send`` returns
only once the reply is written, and the responder sends under its lock, so no later
REST call (PATCH @original after a defer) can overtake the reply that creates the
original. :class:`CallbackSink` POSTs it to
``/interactions/{id}/{token}/callback`` (gateway delivery, or after the HTTP reply is
gone).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import msgspec

from steadybot.errors import DiscordHTTPError, SteadybotError
from steadybot.rest import RestClient

__all__ = [
    "CallbackSink",
    "HttpReplySink",
    "InitialResponseRejected",
    "InitialResponseSink",
    "response_start",
]

JSONBody = dict[str, object]
_encode = msgspec.json.encode
_JSON = (b"content-type", b"application/json")
_NO_REPLY = b'{"error":"no initial response within the deadline"}'


def response_start(status: int, body: bytes) -> dict[str, Any]:
    """The ASGI ``http.response.start`` message for a JSON ``body``."""
    return {
        "type": "http.response.start",
        "status": status,
        "headers": [_JSON, (b"content-length", str(len(body)).encode())],
    }


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

    def expire(self) -> None:
        """The 3 s window closed with nothing sent: stop waiting (HTTP: reply 500)."""
        ...


class HttpReplySink:
    """Writes the initial response as the HTTP reply, from whichever task answers first.

    The handler runs in the request's own task (no extra task, no hand-over future:
    this is the hot path the endpoint benchmark measures), so an instant answer is
    written straight from ``send``. A defer sent by the runtime's timer writes the
    reply from that timer's task while the handler keeps working. Whoever claims the
    reply first wins: the answer, or :meth:`expire`'s failure at the 3 s deadline.
    """

    __slots__ = ("_failure", "_send", "accepted", "replied")  # one per request: hot path

    def __init__(self, send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        self._send = send  # the ASGI ``send`` of the request
        self._failure: asyncio.Future[None] | None = None
        self.replied = False  # the reply (answer or failure) has been claimed
        self.accepted = False  # the initial response was claimed: it will be written

    async def send(self, body: JSONBody) -> None:
        if self.replied:
            raise InitialResponseRejected("the HTTP request is no longer waiting for a reply")
        self.replied = self.accepted = True
        raw = _encode(body)
        send = self._send  # the two ASGI messages written here, not in a helper: hot path
        await send(response_start(200, raw))
        await send({"type": "http.response.body", "body": raw})

    async def _write_failure(self) -> None:
        await self._send(response_start(500, _NO_REPLY))
        await self._send({"type": "http.response.body", "body": _NO_REPLY})

    def expire(self) -> None:
        """The 3 s deadline passed with nothing claimed: reply with a failure. Discord
        has already shown it; the handler goes on and its answer takes the fallback."""
        if self.replied:
            return
        self.replied = True
        self._failure = asyncio.ensure_future(self._write_failure())

    @property
    def settled(self) -> bool:
        """Whether :meth:`close` has nothing left to do: the reply was claimed and no
        failure is still being written."""
        return self.replied and self._failure is None

    async def close(self) -> None:
        """The handler is done: make sure exactly one reply was written, then return."""
        if not self.replied:
            self.replied = True
            await self._write_failure()
        elif self._failure is not None:
            await self._failure


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

    def expire(self) -> None:
        return None  # nothing waits on this side
