"""The seam where rate limiting plugs into the REST client.

The client asks the limiter before each attempt (``acquire``) and tells it every
response (``observe``). :class:`NoRateLimiter` is the default until the bucket manager
lands; 429s are still handled by the client's retry policy using ``retry_after``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from steadybot.rest.routes import CompiledRoute

__all__ = ["NoRateLimiter", "RateLimiter"]


class RateLimiter(Protocol):
    async def acquire(self, route: CompiledRoute, *, deadline: float | None) -> None:
        """Wait until a request on ``route`` may be sent."""
        ...

    def observe(self, route: CompiledRoute, status: int, headers: Mapping[str, str]) -> None:
        """Learn from a response's status and rate-limit headers."""
        ...


class NoRateLimiter:
    """Sends at once; learns nothing."""

    async def acquire(self, route: CompiledRoute, *, deadline: float | None) -> None:
        return None

    def observe(self, route: CompiledRoute, status: int, headers: Mapping[str, str]) -> None:
        return None
