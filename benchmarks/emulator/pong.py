"""The trivial interactions endpoint the delivery benchmark sends to.

A raw ASGI app that answers every POST with ``{"type":4,"data":{"content":"pong"}}``
without reading what it got: no signature check, no JSON decode. It runs in its own
uvicorn process on another CPU, so the delivery benchmark measures the emulator, not the
endpoint. ``GET`` (any path) answers ``{"cpu_seconds": ...}``, the CPU time this process
has used, so the benchmark can show that the endpoint had CPU to spare.

Deliberately free of steadybot imports.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final

__all__ = ["PONG", "app"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

PONG: Final = b'{"type":4,"data":{"content":"pong"}}'
_HEADERS: Final = [
    (b"content-type", b"application/json"),
    (b"content-length", str(len(PONG)).encode()),
]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    more = True
    while more:  # drain the body unread
        more = (await receive()).get("more_body", False)
    if scope["method"] == "GET":
        body = json.dumps({"cpu_seconds": time.process_time()}).encode()
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": PONG})
