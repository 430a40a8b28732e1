"""The emulator's rate limits: buckets, headers, 429 shapes, global and invalid limits."""

from __future__ import annotations

import pytest

from steadybot.clock import ManualClock
from steadybot.emulator.ratelimits import BucketLimit, RateLimiter, RateLimitSettings

CREATE = ("POST", "/channels/{channel_id}/messages")
TOKEN = "Bot secret"


def limiter(**overrides: object) -> tuple[RateLimiter, ManualClock]:
    clock = ManualClock()
    return RateLimiter(RateLimitSettings(**overrides), clock), clock  # type: ignore[arg-type]


def test_bucket_headers_count_down_and_reset_after_the_window() -> None:
    limits, clock = limiter()
    seen = [limits.check(*CREATE, "channel_id=1", TOKEN) for _ in range(5)]
    assert [d.headers["X-RateLimit-Remaining"] for d in seen] == ["4", "3", "2", "1", "0"]
    first = seen[0].headers
    assert first["X-RateLimit-Limit"] == "5"
    assert first["X-RateLimit-Reset-After"] == "5.000"
    assert float(first["X-RateLimit-Reset"]) == pytest.approx(clock.time() + 5, abs=1e-3)
    assert len(first["X-RateLimit-Bucket"]) == 32
    assert not any(d.rejected for d in seen)

    sixth = limits.check(*CREATE, "channel_id=1", TOKEN)
    assert sixth.rejected
    assert sixth.scope == "user"
    assert sixth.body == {
        "message": "You are being rate limited.",
        "retry_after": 5.0,
        "global": False,
        "code": 0,
    }
    assert sixth.headers["Retry-After"] == "5"
    assert sixth.headers["X-RateLimit-Scope"] == "user"
    assert sixth.headers["Via"]
    assert sixth.headers["X-RateLimit-Remaining"] == "0"
    assert limits.rejected["user"] == 1


async def test_window_reopens_on_the_clock() -> None:
    limits, clock = limiter()
    for _ in range(5):
        limits.check(*CREATE, "channel_id=1", TOKEN)
    await clock.advance(4.9)
    assert limits.check(*CREATE, "channel_id=1", TOKEN).rejected
    await clock.advance(0.2)
    again = limits.check(*CREATE, "channel_id=1", TOKEN)
    assert not again.rejected
    assert again.headers["X-RateLimit-Remaining"] == "4"


def test_top_level_resources_split_a_bucket_and_shared_routes_share_the_hash() -> None:
    limits, _ = limiter()
    for _ in range(5):
        limits.check(*CREATE, "channel_id=1", TOKEN)
    other_channel = limits.check(*CREATE, "channel_id=2", TOKEN)
    assert not other_channel.rejected
    get_one = limits.check("GET", "/channels/{channel_id}/messages/{message_id}", "c=1", TOKEN)
    get_all = limits.check("GET", "/channels/{channel_id}/messages", "c=1", TOKEN)
    assert get_one.headers["X-RateLimit-Bucket"] == get_all.headers["X-RateLimit-Bucket"]
    assert get_one.headers["X-RateLimit-Bucket"] != other_channel.headers["X-RateLimit-Bucket"]


def test_global_limit_applies_to_bot_routes_but_not_to_interaction_routes() -> None:
    limits, _ = limiter(global_per_second=3, buckets={}, routes={})
    for _ in range(3):
        assert not limits.check("GET", "/users/@me", "", TOKEN).rejected
    blocked = limits.check("GET", "/users/@me", "", TOKEN)
    assert blocked.rejected
    assert blocked.scope == "global"
    assert blocked.headers["X-RateLimit-Global"] == "true"
    assert blocked.headers["X-RateLimit-Scope"] == "global"
    assert isinstance(blocked.body, dict)
    assert blocked.body["global"] is True
    callback = "/interactions/{interaction_id}/{token}/callback"
    assert not limits.check("POST", callback, "interaction_id=1", TOKEN).rejected
    webhook = "/webhooks/{application_id}/{token}"
    assert not limits.check("POST", webhook, "application_id=1+t", TOKEN).rejected
    assert not limits.check("GET", "/users/@me", "", "Bot another-token").rejected


async def test_invalid_requests_past_the_limit_look_like_a_cloudflare_block() -> None:
    limits, clock = limiter(invalid_limit=3, invalid_window=60.0)
    limits.record_status(401)
    limits.record_status(429, "shared")  # shared-scope 429s do not count
    limits.record_status(404)  # not an invalid request
    limits.record_status(403)
    assert limits.invalid_requests == 2
    assert not limits.check(*CREATE, "channel_id=1", TOKEN).rejected
    limits.record_status(429, "user")
    blocked = limits.check(*CREATE, "channel_id=1", TOKEN)
    assert blocked.rejected
    assert blocked.scope == "cloudflare"
    assert blocked.body == b"error code: 1015"
    assert "Via" not in blocked.headers
    assert limits.rejected["cloudflare"] == 1
    await clock.advance(60.1)
    assert limits.invalid_requests == 0
    assert not limits.check(*CREATE, "channel_id=1", TOKEN).rejected


def test_disabled_limits_add_nothing() -> None:
    limits, _ = limiter(enabled=False)
    for _ in range(20):
        decision = limits.check(*CREATE, "channel_id=1", TOKEN)
        assert not decision.rejected
        assert decision.headers == {}


async def test_ended_windows_are_pruned_so_memory_stays_bounded() -> None:
    limits, clock = limiter(max_tracked_windows=10, buckets={"message-create": BucketLimit(5, 1)})
    for channel in range(10):
        limits.check(*CREATE, f"channel_id={channel}", TOKEN)
    await clock.advance(2)
    for channel in range(10, 25):
        limits.check(*CREATE, f"channel_id={channel}", TOKEN)
    assert len(limits._windows) <= 15
