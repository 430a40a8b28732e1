"""The HTTP front door: a plain ASGI application for ``POST /interactions``.

Written directly against ASGI rather than on a web framework because it is the hot
path whose cost the endpoint benchmark holds against a bare floor: one route, a
signature check, a msgspec decode and a JSON reply. The steps, in order:

1. only ``POST /interactions`` (plus ``GET /health``, the verdict with its reasons, 503
   when critical, and ``GET /metrics``, Prometheus's text format); others 404/405;
2. the body is read up to ``max_body_bytes`` (more → 400);
3. Ed25519 signature + timestamp window (bad → 401);
4. msgspec decode and validation (bad → 400 with the reason, never a stack trace);
5. PING → ``{"type": 1}``; while shutting down → 503;
6. the handler runs in the request's own task (tracked by the bot for shutdown); its
   initial response (answer, or the defer the runtime sends at the defer point) is
   written as the reply at once, and the handler goes on after it.

Lifespan events start and close the bot (graceful shutdown).
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import TYPE_CHECKING, Any

import msgspec
from prometheus_client import CONTENT_TYPE_LATEST

from steadybot.constants import CallbackType
from steadybot.errors import PayloadError, SignatureError
from steadybot.http.signature import SignatureVerifier
from steadybot.interactions.payload import PingInteraction, decode_interaction
from steadybot.interactions.sinks import HttpReplySink, response_start

if TYPE_CHECKING:
    from steadybot.bot import Bot

__all__ = ["ASGIApp", "InteractionsApp"]

log = logging.getLogger("steadybot.http")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_PONG = msgspec.json.encode({"type": int(CallbackType.PONG)})
_encode = msgspec.json.encode


class InteractionsApp:
    """ASGI app serving one :class:`~steadybot.Bot`."""

    def __init__(self, bot: Bot, *, path: str = "/interactions") -> None:
        self._bot = bot
        self._path = path
        settings = bot.settings
        self._verifier = SignatureVerifier(
            settings.public_key,
            clock=bot.clock,
            max_age=settings.timestamp_max_age,
            max_skew_ahead=settings.timestamp_max_skew_ahead,
        )
        self._max_body = settings.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(receive, send)
            return
        if kind != "http":
            return
        path = scope["path"]
        if path == self._path:
            if scope["method"] != "POST":
                await _reply(send, 405, {"error": "method not allowed"})
                return
            await self._interaction(scope, receive, send)
        elif path == "/health":
            verdict = self._bot.health.verdict()
            body = {**verdict.to_json(), "in_flight": self._bot.in_flight}
            await _reply(send, verdict.http_status, body)
        elif path == "/metrics":
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", CONTENT_TYPE_LATEST.encode())],
                }
            )
            await send({"type": "http.response.body", "body": self._bot.metrics.exposition()})
        else:
            await _reply(send, 404, {"error": "not found"})

    async def _interaction(self, scope: Scope, receive: Receive, send: Send) -> None:
        clock = self._bot.clock
        arrived_at = clock.monotonic()
        signature, timestamp, declared_length = _read_headers(scope["headers"])
        if declared_length > self._max_body:
            await _reply(send, 400, {"error": "body too large"})
            return
        message = await receive()
        # One message holding the whole body is the usual case and needs no loop.
        body: bytes | None = message.get("body", b"")
        if message.get("more_body", False) or message["type"] != "http.request":
            body = await self._read_body(receive, message)
        if body is None or len(body) > self._max_body:
            await _reply(send, 400, {"error": "body too large"})
            return
        try:
            self._verifier.verify(signature, timestamp, body)
        except SignatureError as exc:
            log.warning("rejected interaction request: %s", exc)
            await _reply(send, 401, {"error": "invalid request signature"})
            return
        try:
            payload = decode_interaction(body)
        except PayloadError as exc:
            await _reply(send, 400, {"error": str(exc)})
            return
        if isinstance(payload, PingInteraction):
            await _send_raw(send, 200, _PONG)
            return
        if not self._bot.accepting:
            await _reply(send, 503, {"error": "shutting down"})
            return
        sink = HttpReplySink(send)
        try:
            # The handler runs in this request's task, after the reply too: no hand-over
            # between tasks on the hot path. The bot tracks the task for shutdown.
            await self._bot.handle(payload, arrived_at=arrived_at, sink=sink)
        except asyncio.CancelledError:
            # Shutdown cut the handler off (it has told the user); end the request
            # quietly rather than as a server error.
            log.info("interaction %s cancelled by shutdown", payload.id)
        finally:
            if not sink.settled:  # an answer written from here needs no closing await
                await sink.close()

    async def _read_body(self, receive: Receive, message: Message) -> bytes | None:
        """The body whose first ``message`` did not hold all of it; None when it is
        larger than allowed (it is not read further)."""
        chunks: list[bytes] = []
        size = 0
        while True:
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._max_body:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
            message = await receive()
        return b"".join(chunks)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                # Everything loaded so far (modules, handlers, settings) lives as long as
                # the process: take it out of the collector's view, so full collections
                # stop walking it on every pass (they showed up as p99 latency spikes).
                gc.freeze()
                young = self._bot.settings.gc_young_threshold
                if young:
                    gc.set_threshold(young, *gc.get_threshold()[1:])
                try:
                    await self._bot.start()
                except Exception as exc:
                    log.exception("startup failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                try:
                    await self._bot.close()
                finally:
                    await send({"type": "lifespan.shutdown.complete"})
                return


def _read_headers(headers: Iterable[tuple[bytes, bytes]]) -> tuple[str | None, str | None, int]:
    """The signature, the signature timestamp and the declared body length."""
    signature = timestamp = None
    declared_length = 0
    for name, value in headers:
        if name == b"x-signature-ed25519":
            signature = value.decode("latin-1")
        elif name == b"x-signature-timestamp":
            timestamp = value.decode("latin-1")
        elif name == b"content-length" and value.isdigit():
            declared_length = int(value)
    return signature, timestamp, declared_length


async def _reply(send: Send, status: int, body: dict[str, object]) -> None:
    await _send_raw(send, status, _encode(body))


async def _send_raw(send: Send, status: int, body: bytes) -> None:
    await send(response_start(status, body))
    await send({"type": "http.response.body", "body": body})
