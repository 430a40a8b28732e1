"""Every error type maps to the failure kind the taxonomy documents."""

from __future__ import annotations

import asyncio
import logging

import pytest

from steadybot.constants import ErrorCode
from steadybot.errors import (
    BadRequest,
    DiscordHTTPError,
    Forbidden,
    InteractionExpired,
    NotFound,
    RateLimited,
    RateLimitWait,
    ServerError,
    TransportError,
    Unauthorized,
    UserFacingError,
)
from steadybot.resilience.taxonomy import (
    DEFAULT_USER_MESSAGES,
    LOG_LEVELS,
    CriticalError,
    FailureKind,
    FeatureUnavailable,
    NonCriticalError,
    TransientError,
    classify,
    is_transient,
    user_message,
)

CRITICAL = FailureKind.CRITICAL
FEATURE = FailureKind.FEATURE
TRANSIENT = FailureKind.TRANSIENT
NON_CRITICAL = FailureKind.NON_CRITICAL


def http(cls: type[DiscordHTTPError], status: int, code: int = 0) -> DiscordHTTPError:
    return cls(status=status, code=code, message="m", route="GET /x")


def rate_limited(*, cloudflare: bool) -> RateLimited:
    return RateLimited(
        status=429,
        code=0,
        message="slow down",
        route="POST /channels/{channel_id}/messages",
        retry_after=1.5,
        scope="user",
        is_global=False,
        cloudflare=cloudflare,
    )


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (CriticalError("bad config"), CRITICAL),
        (FeatureUnavailable("db down"), FEATURE),
        (TransientError("blip"), TRANSIENT),
        (NonCriticalError("meh"), NON_CRITICAL),
        (UserFacingError("no such item"), NON_CRITICAL),
        (http(Unauthorized, 401), CRITICAL),
        (http(Unauthorized, 401, ErrorCode.INVALID_WEBHOOK_TOKEN), FEATURE),
        (http(Forbidden, 403, ErrorCode.MISSING_PERMISSIONS), FEATURE),
        (http(NotFound, 404, ErrorCode.UNKNOWN_CHANNEL), FEATURE),
        (http(NotFound, 404, ErrorCode.UNKNOWN_INTERACTION), FEATURE),
        (http(NotFound, 404, ErrorCode.UNKNOWN_MESSAGE), NON_CRITICAL),
        (http(BadRequest, 400, ErrorCode.INVALID_FORM_BODY), FEATURE),
        (http(ServerError, 502), TRANSIENT),
        (http(DiscordHTTPError, 503), TRANSIENT),
        (http(DiscordHTTPError, 409), FEATURE),
        (rate_limited(cloudflare=False), TRANSIENT),
        (rate_limited(cloudflare=True), CRITICAL),
        (RateLimitWait(route="GET /x", wait=4.0), TRANSIENT),
        (TransportError("connection reset"), TRANSIENT),
        (TimeoutError(), TRANSIENT),
        (ConnectionRefusedError(), TRANSIENT),
        (InteractionExpired("token dead"), FEATURE),
        (asyncio.CancelledError(), NON_CRITICAL),
        (KeyboardInterrupt(), CRITICAL),
        (KeyError("a handler bug"), FEATURE),
        (OSError("disk"), FEATURE),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else None,
)
def test_classify(exc: BaseException, kind: FailureKind) -> None:
    assert classify(exc) is kind
    assert is_transient(exc) is (kind is TRANSIENT)


def test_each_class_carries_its_kind() -> None:
    assert CriticalError.kind is CRITICAL
    assert FeatureUnavailable.kind is FEATURE
    assert TransientError.kind is TRANSIENT
    assert NonCriticalError.kind is NON_CRITICAL

    class PaymentsDown(FeatureUnavailable):
        pass

    assert classify(PaymentsDown("stripe is down")) is FEATURE


def test_log_levels_and_messages_cover_every_kind() -> None:
    assert dict(LOG_LEVELS) == {
        CRITICAL: logging.CRITICAL,
        FEATURE: logging.ERROR,
        TRANSIENT: logging.WARNING,
        NON_CRITICAL: logging.INFO,
    }
    assert set(DEFAULT_USER_MESSAGES) == set(FailureKind)
    assert DEFAULT_USER_MESSAGES[NON_CRITICAL] == ""
    assert all(DEFAULT_USER_MESSAGES[kind] for kind in (CRITICAL, FEATURE, TRANSIENT))


def test_user_message_prefers_the_errors_own() -> None:
    assert user_message(FeatureUnavailable("db", user_message="Shop closed.")) == "Shop closed."
    assert user_message(UserFacingError("Pick a smaller number.")) == "Pick a smaller number."
    assert user_message(FeatureUnavailable("db")) == DEFAULT_USER_MESSAGES[FEATURE]
    assert user_message(http(ServerError, 500)) == DEFAULT_USER_MESSAGES[TRANSIENT]
    assert user_message(http(Unauthorized, 401)) == DEFAULT_USER_MESSAGES[CRITICAL]
    assert user_message(http(NotFound, 404, ErrorCode.UNKNOWN_MESSAGE)) == ""
    assert user_message(ZeroDivisionError()) == DEFAULT_USER_MESSAGES[FEATURE]


def test_error_keeps_its_message() -> None:
    exc = TransientError("cache timed out", user_message="Try again.")
    assert str(exc) == "cache timed out"
    assert exc.message == "cache timed out"
    assert exc.user_message == "Try again."
