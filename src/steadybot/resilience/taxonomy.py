"""The error taxonomy: how bad is this failure, who must hear of it, what does the user see.

Every failure in a bot falls into one of four kinds, and the kind alone decides the log
level and the default text shown to the user:

* ``CRITICAL``: the bot cannot work at all (a dead bot token, misconfiguration,
  Cloudflare banning the bot's IP). Someone must act; the log says so loudly.
* ``FEATURE``: one feature is down (its dependency failed, its breaker is open, the bot
  lacks a permission there, a handler has a bug). The rest of the bot works.
* ``TRANSIENT``: trying again soon may succeed (Discord 5xx, 429, connection errors,
  timeouts). These are what retries and retry budgets are for.
* ``NON_CRITICAL``: can be logged and otherwise ignored (a message we wanted to delete
  is already gone; the user was shown a :class:`~steadybot.errors.UserFacingError`).

Code that knows the kind raises :class:`CriticalError`, :class:`FeatureUnavailable`,
:class:`TransientError` or :class:`NonCriticalError`; :func:`classify` maps everything
else (steadybot's own errors, the standard library's) to a kind, and
:func:`user_message` picks what the user sees. The choices, in :func:`classify`'s order:

* Our four classes (and subclasses such as
  :class:`~steadybot.resilience.breaker.CircuitOpen`) carry their ``kind``.
* ``UserFacingError`` is ``NON_CRITICAL``: the handler chose to stop and tell the user.
* ``Unauthorized`` is ``CRITICAL`` (the bot token is wrong or revoked), except when its
  code says an *interaction's* token is dead (50027): that loses one answer, so
  ``FEATURE``. Paging someone for every late interaction would teach them to ignore pages.
* ``RateLimited`` is ``TRANSIENT``, unless it came from Cloudflare: that ban lasts about
  an hour and retrying extends it, so ``CRITICAL``.
* ``ServerError``, ``TransportError``, ``RateLimitWait``, ``TimeoutError`` (which is
  ``asyncio.TimeoutError``) and ``ConnectionError`` are ``TRANSIENT``.
* ``Forbidden`` is ``FEATURE``: a permission is missing for that feature in that place.
* ``NotFound`` is ``FEATURE`` (the channel, webhook or interaction the feature needs is
  gone), except code 10008 unknown message, ``NON_CRITICAL``: it is nearly always a
  message we meant to delete or edit that someone else removed first.
* Any other ``DiscordHTTPError`` is ``TRANSIENT`` for a 5xx status, else ``FEATURE``
  (a bad request is a bug in the feature that sent it).
* ``asyncio.CancelledError`` is ``NON_CRITICAL``: cancellation is control flow, not a
  failure. ``KeyboardInterrupt`` and ``SystemExit`` are ``CRITICAL``: the process stops.
* Anything else (an unexpected bug in a handler) is ``FEATURE``: one handler is broken,
  not the bot. Raise :class:`CriticalError` to say otherwise.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Mapping
from types import MappingProxyType
from typing import ClassVar, Final

from steadybot.constants import ErrorCode
from steadybot.errors import (
    DiscordHTTPError,
    NotFound,
    RateLimited,
    RateLimitWait,
    ServerError,
    SteadybotError,
    TransportError,
    Unauthorized,
    UserFacingError,
)

__all__ = [
    "DEFAULT_USER_MESSAGES",
    "LOG_LEVELS",
    "CriticalError",
    "FailureKind",
    "FeatureUnavailable",
    "NonCriticalError",
    "TransientError",
    "classify",
    "is_transient",
    "user_message",
]


class FailureKind(enum.Enum):
    """How bad a failure is; decides log level and the user's default message."""

    # The bot cannot work: dead bot token, misconfiguration. Someone must act.
    CRITICAL = "critical"
    # One feature is down (dependency or breaker open, missing permission, handler bug).
    FEATURE = "feature"
    # Trying again soon may succeed: 5xx, 429, transport errors, timeouts.
    TRANSIENT = "transient"
    # Can be logged and ignored: e.g. a message to delete was already gone.
    NON_CRITICAL = "non_critical"


LOG_LEVELS: Final[Mapping[FailureKind, int]] = MappingProxyType(
    {
        FailureKind.CRITICAL: logging.CRITICAL,
        FailureKind.FEATURE: logging.ERROR,
        FailureKind.TRANSIENT: logging.WARNING,
        FailureKind.NON_CRITICAL: logging.INFO,
    }
)

DEFAULT_USER_MESSAGES: Final[Mapping[FailureKind, str]] = MappingProxyType(
    {
        FailureKind.CRITICAL: "Something went wrong on our side; the team has been told.",
        FailureKind.FEATURE: "This feature is unavailable right now; the rest of the bot works.",
        FailureKind.TRANSIENT: (
            "Discord or one of our services is having a moment — please try again in a few seconds."
        ),
        # Nothing worth interrupting the user for.
        FailureKind.NON_CRITICAL: "",
    }
)


class _ClassifiedError(SteadybotError):
    """An error that states its own kind and, optionally, what the user should read."""

    kind: ClassVar[FailureKind]

    def __init__(self, message: str, *, user_message: str | None = None) -> None:
        self.message = message
        self.user_message = user_message
        super().__init__(message)


class CriticalError(_ClassifiedError):
    """The bot cannot work (dead token, misconfiguration)."""

    kind = FailureKind.CRITICAL


class FeatureUnavailable(_ClassifiedError):
    """One feature is down; the rest of the bot works."""

    kind = FailureKind.FEATURE


class TransientError(_ClassifiedError):
    """Trying again soon may succeed."""

    kind = FailureKind.TRANSIENT


class NonCriticalError(_ClassifiedError):
    """Worth a log line, nothing more."""

    kind = FailureKind.NON_CRITICAL


def _classify_discord(exc: DiscordHTTPError) -> FailureKind:
    if isinstance(exc, Unauthorized):
        return FailureKind.FEATURE if exc.token_is_dead else FailureKind.CRITICAL
    if isinstance(exc, RateLimited):
        return FailureKind.CRITICAL if exc.cloudflare else FailureKind.TRANSIENT
    if isinstance(exc, ServerError) or exc.status >= 500:
        return FailureKind.TRANSIENT
    if isinstance(exc, NotFound) and exc.code == ErrorCode.UNKNOWN_MESSAGE:
        return FailureKind.NON_CRITICAL
    # Forbidden, other NotFound, BadRequest and the rest: that feature is broken here.
    return FailureKind.FEATURE


def classify(exc: BaseException) -> FailureKind:
    """The kind of ``exc``; see the module docstring for every choice."""
    if isinstance(exc, _ClassifiedError):
        return exc.kind
    if isinstance(exc, UserFacingError | asyncio.CancelledError):
        return FailureKind.NON_CRITICAL
    if isinstance(exc, DiscordHTTPError):
        return _classify_discord(exc)
    if isinstance(exc, TransportError | RateLimitWait | TimeoutError | ConnectionError):
        return FailureKind.TRANSIENT
    if isinstance(exc, KeyboardInterrupt | SystemExit):
        return FailureKind.CRITICAL
    return FailureKind.FEATURE


def is_transient(exc: BaseException) -> bool:
    """Whether retrying may help; a ready ``retry_on`` for :func:`retry_call`."""
    return classify(exc) is FailureKind.TRANSIENT


def user_message(exc: BaseException) -> str:
    """What the user should read: the error's own message if it has one, else its kind's.

    An empty string means: tell the user nothing.
    """
    if isinstance(exc, _ClassifiedError) and exc.user_message is not None:
        return exc.user_message
    if isinstance(exc, UserFacingError):
        return exc.message
    return DEFAULT_USER_MESSAGES[classify(exc)]
