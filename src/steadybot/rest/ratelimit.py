"""The seam where rate limiting plugs into the REST client, and Discord's headers parsed.

The client asks the limiter for a :class:`Permit` before each attempt (``acquire``),
then hands the permit back with the answer (``complete``) or without one when the
request got no HTTP answer (``release``). :class:`NoRateLimiter` sends at once and
learns nothing (tests of the retry policy use it); the client's default is the bucket
manager in :mod:`steadybot.rest.buckets`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from steadybot.errors import RateLimited
from steadybot.rest.routes import CompiledRoute

__all__ = ["BucketHeaders", "NoRateLimiter", "Permit", "RateLimiter", "parse_bucket_headers"]


@dataclass(slots=True)
class Permit:
    """Leave to send one request on ``route``; given back with the answer.

    ``bucket`` is the slot key the request was counted against ("" when the route is not
    limited or not yet known), ``probe`` is true when this request is the one request
    allowed on a bucket whose limits are not known yet.
    """

    route: CompiledRoute
    bucket: str = ""
    probe: bool = False
    done: bool = False


@dataclass(frozen=True, slots=True)
class BucketHeaders:
    """Discord's ``X-RateLimit-*`` headers of one answer."""

    bucket: str
    limit: int
    remaining: int
    reset_after: float  # seconds until the bucket's window resets
    reset: float  # the reset as epoch seconds; the same for every answer of one window


def parse_bucket_headers(headers: Mapping[str, str]) -> BucketHeaders | None:
    """The bucket headers of an answer, or None when it has none or they are malformed.

    Header names are matched in lower case: transports hand them over that way.
    """
    bucket = headers.get("x-ratelimit-bucket")
    if not bucket:
        return None
    try:
        limit = int(headers["x-ratelimit-limit"])
        remaining = int(headers["x-ratelimit-remaining"])
        reset_after = float(headers["x-ratelimit-reset-after"])
        reset = float(headers.get("x-ratelimit-reset", "0"))
    except (KeyError, ValueError):
        return None
    if limit < 1 or remaining < 0 or reset_after < 0:
        return None
    return BucketHeaders(bucket, limit, remaining, reset_after, reset)


class RateLimiter(Protocol):
    async def acquire(self, route: CompiledRoute, *, deadline: float | None) -> Permit:
        """Wait until a request on ``route`` may be sent; raise if that is past ``deadline``."""
        ...

    async def complete(
        self,
        permit: Permit,
        status: int,
        headers: Mapping[str, str],
        rate_limited: RateLimited | None = None,
    ) -> None:
        """Learn from the answer to a permitted request (``rate_limited``: it was a 429)."""
        ...

    def release(self, permit: Permit) -> None:
        """The permitted request got no answer (transport failure, cancellation)."""
        ...

    async def close(self) -> None:
        """Free what the limiter holds (connections to a shared store)."""
        ...


class NoRateLimiter:
    """Sends at once; learns nothing."""

    async def acquire(self, route: CompiledRoute, *, deadline: float | None) -> Permit:
        return Permit(route)

    async def complete(
        self,
        permit: Permit,
        status: int,
        headers: Mapping[str, str],
        rate_limited: RateLimited | None = None,
    ) -> None:
        permit.done = True

    def release(self, permit: Permit) -> None:
        permit.done = True

    async def close(self) -> None:
        return None
