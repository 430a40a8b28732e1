"""The invalid-request budget, and the requests not worth sending.

Discord bans an IP for an hour once it answers 10,000 requests with 401, 403 or 429
(429s of scope ``shared`` excepted) within 10 minutes (facts file, "Rate limits"). Two
parts keep a bot away from that:

- :class:`InvalidRequestBudget` counts those answers over the sliding window (in
  one-second bins, so memory is bounded by the window, not by the count), exposes the
  count and the share of the limit, and logs a warning when the share crosses
  ``warn_share`` (once per crossing).
- :class:`CertainFailures` remembers answers that say the same request will fail again
  and refuses to send it: a 401 on a bot-token route (the token is dead: every bot-token
  route), an interaction or webhook token that is unknown or invalid (10015, 10062,
  50027: that webhook), and a Cloudflare-style block (429 without Discord's JSON or
  ``Via``: everything, until its ``Retry-After`` has passed). A refused request raises
  the remembered error type again, marked as not sent, without touching the network.
"""

from __future__ import annotations

import logging
from collections import OrderedDict, deque

from steadybot.clock import Clock
from steadybot.errors import DiscordHTTPError, RateLimited, Unauthorized
from steadybot.rest.routes import CompiledRoute

__all__ = ["CertainFailures", "InvalidRequestBudget"]

log = logging.getLogger("steadybot.rest.budget")

INVALID_STATUSES = frozenset({401, 403, 429})


class InvalidRequestBudget:
    """401/403/429 answers over a sliding window, against Discord's ban threshold."""

    def __init__(
        self, clock: Clock, *, limit: int = 10_000, window: float = 600.0, warn_share: float = 0.5
    ) -> None:
        self._clock = clock
        self.limit = limit
        self.window = window
        self.warn_share = warn_share
        self._bins: deque[list[int]] = deque()  # [second, count], oldest first
        self._count = 0
        self._warned = False

    def record(self, status: int, scope: str = "") -> None:
        """Count one answer if Discord counts it (``scope`` is a 429's ``X-RateLimit-Scope``)."""
        if status not in INVALID_STATUSES or (status == 429 and scope == "shared"):
            return
        now = self._clock.monotonic()
        self._expire(now)
        second = int(now)
        if self._bins and self._bins[-1][0] == second:
            self._bins[-1][1] += 1
        else:
            self._bins.append([second, 1])
        self._count += 1
        if not self._warned and self.share >= self.warn_share:
            self._warned = True
            log.warning(
                "invalid-request budget: %d of %d in %.0fs (%.0f%%); Discord bans the IP at 100%%",
                self._count,
                self.limit,
                self.window,
                100 * self.share,
            )

    @property
    def count(self) -> int:
        """Invalid answers within the window, now."""
        self._expire(self._clock.monotonic())
        return self._count

    @property
    def share(self) -> float:
        return self._count / self.limit if self.limit else 0.0

    def _expire(self, now: float) -> None:
        horizon = now - self.window
        bins = self._bins
        while bins and bins[0][0] + 1 <= horizon:
            self._count -= bins.popleft()[1]
        if self._warned and self.share < self.warn_share:
            self._warned = False


class CertainFailures:
    """Answers that mean the same request would fail again; refuses to repeat them."""

    def __init__(self, clock: Clock, *, max_dead_webhooks: int = 10_000) -> None:
        self._clock = clock
        self._max_dead_webhooks = max_dead_webhooks
        self._dead_token: DiscordHTTPError | None = None
        self._dead_webhooks: OrderedDict[str, DiscordHTTPError] = OrderedDict()
        self._blocked: RateLimited | None = None
        self._blocked_until = 0.0
        self.refused = 0

    @property
    def token_dead(self) -> bool:
        return self._dead_token is not None

    @property
    def blocked_for(self) -> float:
        """Seconds left of a Cloudflare-style block (0.0 when none)."""
        return max(0.0, self._blocked_until - self._clock.monotonic())

    def check(self, route: CompiledRoute) -> DiscordHTTPError | None:
        """The error to raise instead of sending ``route``, or None: send it."""
        remembered = self._remembered(route)
        if remembered is None:
            return None
        self.refused += 1
        return _not_sent(remembered, route)

    def record(self, route: CompiledRoute, error: DiscordHTTPError) -> None:
        if isinstance(error, RateLimited) and error.cloudflare:
            self._blocked = error
            self._blocked_until = self._clock.monotonic() + max(error.retry_after, 1.0)
        elif isinstance(error, Unauthorized) and route.route.auth:
            if self._dead_token is None:
                log.critical("%s: 401 with the bot token; not sending bot-token requests", error)
            self._dead_token = error
        elif route.route.interaction and error.token_is_dead and route.major:
            self._dead_webhooks[route.major] = error
            self._dead_webhooks.move_to_end(route.major)
            while len(self._dead_webhooks) > self._max_dead_webhooks:
                self._dead_webhooks.popitem(last=False)

    def revive_token(self) -> None:
        """Send bot-token requests again (after the token was replaced)."""
        self._dead_token = None

    def _remembered(self, route: CompiledRoute) -> DiscordHTTPError | None:
        if self._blocked is not None:
            if self._clock.monotonic() < self._blocked_until:
                return self._blocked
            self._blocked = None
        if route.route.auth and self._dead_token is not None:
            return self._dead_token
        if route.route.interaction and self._dead_webhooks:
            return self._dead_webhooks.get(route.major)
        return None


def _not_sent(error: DiscordHTTPError, route: CompiledRoute) -> DiscordHTTPError:
    message = f"not sent: an earlier answer said it would fail ({error.message})"
    if isinstance(error, RateLimited):
        return RateLimited(
            status=error.status,
            code=error.code,
            message=message,
            route=str(route.route),
            retry_after=error.retry_after,
            scope=error.scope,
            is_global=error.is_global,
            cloudflare=error.cloudflare,
        )
    return type(error)(
        status=error.status, code=error.code, message=message, route=str(route.route)
    )
