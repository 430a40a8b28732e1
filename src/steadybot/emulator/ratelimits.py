"""Discord's rate limits as the emulator enforces them.

Why our own: no library models Discord's scheme. What is reproduced (facts file,
"Rate limits"):

- **per-route buckets**: routes that share a limit share a bucket hash
  (``X-RateLimit-Bucket``), and each bucket is split by the top-level resource
  (channel, guild, webhook id + token). A bucket is a fixed window that starts with its
  first request; every response on a limited route carries ``X-RateLimit-Limit``,
  ``-Remaining``, ``-Reset`` (epoch seconds, decimals), ``-Reset-After`` and ``-Bucket``;
- **429 answers** exactly as documented: JSON ``{"message", "retry_after", "global",
  "code"}``, ``Retry-After`` in seconds, ``X-RateLimit-Scope`` (``user`` / ``global``),
  ``X-RateLimit-Global`` on global ones, and a ``Via`` header like Discord's edge;
- **the global limit**: 50 requests per second per bot token; interaction callback and
  webhook-token routes are exempt;
- **the invalid-request limit**: 401, 403 and 429 answers (429s of scope ``shared``
  excepted) are counted over a sliding 10-minute window; past the limit every request
  is answered like a Cloudflare block (429, a non-JSON body, no ``Via``) until enough
  of the window has passed.

Limits are undocumented by Discord; the defaults are the community-observed ones and
every number is a field of :class:`RateLimitSettings`.
"""

from __future__ import annotations

import hashlib
import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from steadybot.clock import Clock

__all__ = ["BucketLimit", "Decision", "RateLimitSettings", "RateLimiter"]

JSON = dict[str, Any]
VIA = "1.1 google"
CLOUDFLARE_BODY = b"error code: 1015"
EXEMPT_PREFIXES = ("/interactions/", "/webhooks/")


@dataclass(frozen=True, slots=True)
class BucketLimit:
    """``limit`` requests per ``window`` seconds, per top-level resource."""

    limit: int
    window: float


def _default_routes() -> dict[str, str]:
    # (METHOD route-template) → bucket name; routes with one name share a bucket.
    return {
        "POST /channels/{channel_id}/messages": "message-create",
        "PATCH /channels/{channel_id}/messages/{message_id}": "message-edit",
        "DELETE /channels/{channel_id}/messages/{message_id}": "message-delete",
        "POST /channels/{channel_id}/messages/bulk-delete": "bulk-delete",
        "GET /channels/{channel_id}/messages": "message-read",
        "GET /channels/{channel_id}/messages/{message_id}": "message-read",
        "GET /channels/{channel_id}": "channel-read",
        "POST /guilds/{guild_id}/channels": "channel-create",
        "GET /guilds/{guild_id}/channels": "guild-read",
        "GET /guilds/{guild_id}/members": "member-read",
        "GET /guilds/{guild_id}/members/{user_id}": "member-read",
        "PUT /guilds/{guild_id}/members/{user_id}/roles/{role_id}": "member-role",
        "DELETE /guilds/{guild_id}/members/{user_id}/roles/{role_id}": "member-role",
        "POST /guilds/{guild_id}/roles": "role-create",
        "GET /users/@me/guilds": "user-guilds",
        "POST /webhooks/{application_id}/{token}": "webhook",
        "GET /webhooks/{application_id}/{token}/messages/{message_id}": "webhook",
        "PATCH /webhooks/{application_id}/{token}/messages/{message_id}": "webhook",
        "DELETE /webhooks/{application_id}/{token}/messages/{message_id}": "webhook",
        "POST /users/@me/channels": "dm-create",
    }


def _default_buckets() -> dict[str, BucketLimit]:
    return {
        "message-create": BucketLimit(5, 5.0),
        "message-edit": BucketLimit(5, 5.0),
        "message-delete": BucketLimit(5, 1.0),
        "bulk-delete": BucketLimit(1, 1.0),
        "message-read": BucketLimit(50, 1.0),
        "channel-read": BucketLimit(50, 1.0),
        "channel-create": BucketLimit(5, 10.0),
        "guild-read": BucketLimit(10, 10.0),
        "member-read": BucketLimit(10, 10.0),
        "member-role": BucketLimit(10, 10.0),
        "role-create": BucketLimit(10, 10.0),
        "user-guilds": BucketLimit(1, 1.0),
        "webhook": BucketLimit(5, 2.0),
        "dm-create": BucketLimit(10, 10.0),
    }


@dataclass(frozen=True)
class RateLimitSettings:
    """Every limit the emulator enforces; ``enabled=False`` turns them all off."""

    enabled: bool = True
    global_per_second: int = 50
    invalid_limit: int = 10_000
    invalid_window: float = 600.0
    routes: dict[str, str] = field(default_factory=_default_routes)
    buckets: dict[str, BucketLimit] = field(default_factory=_default_buckets)
    max_tracked_windows: int = 100_000  # bucket windows kept before idle ones are dropped


@dataclass(slots=True)
class _Window:
    started: float
    used: int = 0


@dataclass(frozen=True, slots=True)
class Decision:
    """What the limiter says about one request: headers to add, or a 429 to send."""

    headers: dict[str, str]
    rejected: bool = False
    body: bytes | JSON | None = None  # JSON for Discord's 429, bytes for Cloudflare's
    scope: str = ""


class RateLimiter:
    """Buckets, the global limit and the invalid-request counter of one emulator."""

    def __init__(self, settings: RateLimitSettings, clock: Clock, *, seed: int = 0) -> None:
        self.settings = settings
        self._clock = clock
        self._seed = seed
        self._windows: dict[tuple[str, str], _Window] = {}
        self._global: dict[str, _Window] = {}
        self._invalid: deque[float] = deque()
        self.rejected: dict[str, int] = {"user": 0, "global": 0, "cloudflare": 0}

    def bucket_hash(self, name: str) -> str:
        """A stable opaque hash per bucket name, like Discord's."""
        return hashlib.sha1(f"{self._seed}:{name}".encode(), usedforsecurity=False).hexdigest()[:32]

    @property
    def invalid_requests(self) -> int:
        self._expire_invalid(self._clock.monotonic())
        return len(self._invalid)

    # --- before the handler -----------------------------------------------------------

    def check(self, method: str, template: str, major: str, token: str | None) -> Decision:
        """Count the request against its limits; a rejected decision is its answer."""
        if not self.settings.enabled:
            return Decision(headers={})
        now = self._clock.monotonic()
        if self._blocked(now):
            self.rejected["cloudflare"] += 1
            retry = self._invalid[0] + self.settings.invalid_window - now
            return Decision(
                headers={
                    "Retry-After": str(max(1, math.ceil(retry))),
                    "Content-Type": "text/plain",
                },
                rejected=True,
                body=CLOUDFLARE_BODY,
                scope="cloudflare",
            )
        exempt = template.startswith(EXEMPT_PREFIXES)
        if not exempt and token is not None:
            rejection = self._check_global(token, now)
            if rejection is not None:
                return rejection
        name = self.settings.routes.get(f"{method} {template}")
        limit = self.settings.buckets.get(name) if name is not None else None
        if name is None or limit is None:
            return Decision(headers={})
        window = self._window((name, major), limit, now)
        reset_after = max(0.0, window.started + limit.window - now)
        if window.used >= limit.limit:
            self.rejected["user"] += 1
            headers = self._bucket_headers(name, limit, 0, reset_after)
            return self._too_many(headers, reset_after, scope="user", is_global=False)
        window.used += 1
        return Decision(
            headers=self._bucket_headers(name, limit, limit.limit - window.used, reset_after)
        )

    def _check_global(self, token: str, now: float) -> Decision | None:
        window = self._global.get(token)
        if window is None or now >= window.started + 1.0:
            window = self._global[token] = _Window(started=now)
        if window.used >= self.settings.global_per_second:
            self.rejected["global"] += 1
            retry = max(0.0, window.started + 1.0 - now)
            headers = {"X-RateLimit-Global": "true"}
            return self._too_many(headers, retry, scope="global", is_global=True)
        window.used += 1
        return None

    def _window(self, key: tuple[str, str], limit: BucketLimit, now: float) -> _Window:
        window = self._windows.get(key)
        if window is None or now >= window.started + limit.window:
            if window is None and len(self._windows) >= self.settings.max_tracked_windows:
                self._prune(now)
            window = self._windows[key] = _Window(started=now)
        return window

    def _prune(self, now: float) -> None:
        """Drop windows that have ended: an ended window and no window are the same."""
        buckets = self.settings.buckets
        for key, window in list(self._windows.items()):
            limit = buckets.get(key[0])
            if limit is None or now >= window.started + limit.window:
                del self._windows[key]

    def _bucket_headers(
        self, name: str, limit: BucketLimit, remaining: int, reset_after: float
    ) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(limit.limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": f"{self._clock.time() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": self.bucket_hash(name),
        }

    @staticmethod
    def _too_many(
        headers: dict[str, str], retry_after: float, *, scope: str, is_global: bool
    ) -> Decision:
        body: JSON = {
            "message": "You are being rate limited.",
            "retry_after": round(retry_after, 3),
            "global": is_global,
            "code": 0,
        }
        headers = {
            **headers,
            "Retry-After": str(max(1, math.ceil(retry_after))),
            "X-RateLimit-Scope": scope,
            "Via": VIA,
        }
        return Decision(headers=headers, rejected=True, body=body, scope=scope)

    # --- after the handler ------------------------------------------------------------

    def record_status(self, status: int, scope: str = "") -> None:
        """Count an invalid request (401, 403, or a 429 not of scope ``shared``)."""
        if not self.settings.enabled or scope == "cloudflare":
            return
        if status in (401, 403) or (status == 429 and scope != "shared"):
            now = self._clock.monotonic()
            self._expire_invalid(now)
            self._invalid.append(now)

    def _expire_invalid(self, now: float) -> None:
        horizon = now - self.settings.invalid_window
        while self._invalid and self._invalid[0] <= horizon:
            self._invalid.popleft()

    def _blocked(self, now: float) -> bool:
        self._expire_invalid(now)
        return len(self._invalid) >= self.settings.invalid_limit
