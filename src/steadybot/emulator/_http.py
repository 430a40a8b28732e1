"""JSON in and out of the emulator's aiohttp handlers, read and answered as Discord does.

Shared by the route groups (``rest.py``, ``guilds.py``, ``commands.py``) so each one reads
bodies and query parameters with the same errors: 50109 for a body that is not JSON,
50035 with ``NUMBER_TYPE_*`` field errors for a bad integer query parameter.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from aiohttp import web

from steadybot.emulator.errors import EmulatedError, invalid_form

__all__ = [
    "Handler",
    "Route",
    "json_response",
    "no_content",
    "query_int",
    "query_snowflake",
    "read_json",
]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Route = tuple[str, str, Handler]
"""(method, path template under the API prefix, handler) of one bot-token route."""


def json_response(body: object, status: int = 200) -> web.Response:
    return web.Response(
        body=msgspec.json.encode(body), status=status, content_type="application/json"
    )


def no_content() -> web.Response:
    return web.Response(status=204)


async def read_json(request: web.Request) -> Any:
    """The decoded body (``{}`` when empty), or Discord's 50109 for invalid JSON."""
    raw = await request.read()
    try:
        return msgspec.json.decode(raw) if raw else {}
    except msgspec.DecodeError:
        raise EmulatedError(400, 50109, "The request body contains invalid JSON.") from None


def query_int(request: web.Request, name: str, *, default: int, low: int, high: int) -> int:
    """An integer query parameter within [low, high], or 50035 worded like Discord's."""
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid_form({name: ("NUMBER_TYPE_COERCE", f'Value "{raw}" is not int.')}) from None
    if value < low:
        raise invalid_form(
            {name: ("NUMBER_TYPE_MIN", f"int value should be greater than or equal to {low}.")}
        )
    if value > high:
        raise invalid_form(
            {name: ("NUMBER_TYPE_MAX", f"int value should be less than or equal to {high}.")}
        )
    return value


def query_snowflake(request: web.Request, name: str) -> int | None:
    """A snowflake query parameter (absent: None), or 50035 as Discord words it."""
    raw = request.query.get(name)
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()) or int(raw) >= 1 << 64:
        raise invalid_form({name: ("NUMBER_TYPE_COERCE", f'Value "{raw}" is not snowflake.')})
    return int(raw)
