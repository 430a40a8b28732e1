"""The wire under the REST client: one request in, one response out.

Theory: the client's logic (routes, retries, rate limits, error mapping) is tested
without sockets by swapping the transport; production uses aiohttp. A transport never
raises an HTTP status as an error; it returns the response. It raises
:class:`~steadybot.errors.TransportError` when there is no HTTP answer at all, and the
message never contains the URL, because webhook URLs carry interaction tokens.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp

from steadybot.errors import TransportError

__all__ = [
    "AiohttpTransport",
    "MockTransport",
    "Transport",
    "TransportRequest",
    "TransportResponse",
]


@dataclass(frozen=True, slots=True)
class TransportRequest:
    """One HTTP request, already fully built by the client."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes | None = None


@dataclass(frozen=True, slots=True)
class TransportResponse:
    """One HTTP response; header names are lower-case."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


class Transport(Protocol):
    """Sends one request; raises TransportError only when no HTTP answer came."""

    async def request(self, request: TransportRequest, *, timeout: float) -> TransportResponse:
        """Send ``request`` and return the response, whatever its status."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


class AiohttpTransport:
    """The production transport: one pooled aiohttp session, made on first use."""

    def __init__(self, *, connection_limit: int = 100) -> None:
        self._connection_limit = connection_limit
        self._session: aiohttp.ClientSession | None = None

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._connection_limit)
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    async def request(self, request: TransportRequest, *, timeout: float) -> TransportResponse:
        session = self._ensure_session()
        try:
            async with session.request(
                request.method,
                request.url,
                headers=dict(request.headers),
                data=request.body,
                timeout=aiohttp.ClientTimeout(total=timeout),
                allow_redirects=False,
            ) as response:
                body = await response.read()
                headers = {name.lower(): value for name, value in response.headers.items()}
                return TransportResponse(status=response.status, headers=headers, body=body)
        except TimeoutError:
            raise TransportError(f"{request.method}: no answer within {timeout:g} s") from None
        except aiohttp.ClientError as exc:
            # str(exc) may carry the URL (and so a token): keep only the error's type.
            raise TransportError(f"{request.method}: {type(exc).__name__}") from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


Handler = Callable[[TransportRequest], TransportResponse | Awaitable[TransportResponse]]


class MockTransport:
    """A transport answered by a function: for tests and for in-process fakes."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self.closed = False

    async def request(self, request: TransportRequest, *, timeout: float) -> TransportResponse:
        result = self._handler(request)
        if inspect.isawaitable(result):
            return await result
        return result

    async def close(self) -> None:
        self.closed = True
