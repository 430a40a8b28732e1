"""The error types of steadybot.

One base, :class:`SteadybotError`; Discord's answers are :class:`DiscordHTTPError`
subclasses carrying the HTTP ``status`` and Discord's JSON ``code``. No error message
ever contains a token: REST errors name the route *template*, never the URL.
"""

from __future__ import annotations

from typing import Any

from steadybot.constants import ErrorCode

__all__ = [
    "BadRequest",
    "DiscordHTTPError",
    "Forbidden",
    "IllegalTransition",
    "InteractionExpired",
    "NotFound",
    "PayloadError",
    "RateLimitWait",
    "RateLimited",
    "ServerError",
    "SignatureError",
    "SteadybotError",
    "TransportError",
    "Unauthorized",
    "UserFacingError",
]


class SteadybotError(Exception):
    """Base of every error steadybot raises."""


class PayloadError(SteadybotError):
    """An incoming interaction body is not valid JSON or has the wrong shape (HTTP 400)."""


class SignatureError(SteadybotError):
    """An incoming request failed the Ed25519 or timestamp check (HTTP 401)."""


class IllegalTransition(SteadybotError):
    """A responder operation is not allowed in the responder's current state."""

    def __init__(self, operation: str, state: str, hint: str = "") -> None:
        self.operation = operation
        self.state = state
        message = f"{operation}() is not allowed in state {state}"
        super().__init__(f"{message}: {hint}" if hint else message)


class InteractionExpired(SteadybotError):
    """The interaction token is dead and no fallback could deliver the message."""


class UserFacingError(SteadybotError):
    """Raise from a handler to show ``message`` to the user (ephemeral) and stop.

    The runtime logs it at info level, not as a crash.
    """

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class TransportError(SteadybotError):
    """The REST request did not get an HTTP answer (connection refused, reset, timeout)."""


class DiscordHTTPError(SteadybotError):
    """Discord answered with an error status.

    ``status`` is the HTTP status, ``code`` Discord's JSON error code (0 when the body
    had none), ``route`` the route template (tokens never appear in it).
    """

    def __init__(
        self,
        *,
        status: int,
        code: int,
        message: str,
        route: str,
        errors: dict[str, Any] | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.route = route
        self.errors = errors or {}
        super().__init__(f"{route}: HTTP {status}, code {code}: {message}")

    @property
    def token_is_dead(self) -> bool:
        """Whether this error says the interaction token can no longer be used."""
        return self.code in (
            ErrorCode.UNKNOWN_INTERACTION,
            ErrorCode.UNKNOWN_WEBHOOK,
            ErrorCode.INVALID_WEBHOOK_TOKEN,
        )


class BadRequest(DiscordHTTPError):
    """HTTP 400 (e.g. 40060 already acknowledged, 50035 invalid form body)."""


class Unauthorized(DiscordHTTPError):
    """HTTP 401 (e.g. 50027 invalid webhook token, a wrong bot token)."""


class Forbidden(DiscordHTTPError):
    """HTTP 403 (50001 missing access, 50013 missing permissions)."""


class NotFound(DiscordHTTPError):
    """HTTP 404 (unknown channel, message, webhook, interaction…)."""


class RateLimited(DiscordHTTPError):
    """HTTP 429 that survived the retry policy.

    ``cloudflare`` is true when the answer looked like a Cloudflare block (no ``Via``
    header or a non-JSON body): retrying it only extends the ban.
    """

    def __init__(
        self,
        *,
        status: int,
        code: int,
        message: str,
        route: str,
        retry_after: float,
        scope: str,
        is_global: bool,
        cloudflare: bool,
    ) -> None:
        super().__init__(status=status, code=code, message=message, route=route)
        self.retry_after = retry_after
        self.scope = scope
        self.is_global = is_global
        self.cloudflare = cloudflare


class RateLimitWait(SteadybotError):
    """Waiting for a rate-limit slot would end past the call's deadline; nothing was sent."""

    def __init__(self, *, route: str, wait: float) -> None:
        self.route = route
        self.wait = wait
        super().__init__(f"{route}: the rate limit asks for a {wait:.2f}s wait, past the deadline")


class ServerError(DiscordHTTPError):
    """HTTP 5xx that survived the retry policy."""


# --- the bot's clock (Bot.use_clock) ---------------------------------------------------
class ClockInUse(SteadybotError):
    """``Bot.use_clock()`` came after parts were made on the bot's old clock (caches,
    locks, the health monitor, …); they would keep it. Call it first, or pass
    ``Bot(clock=...)``."""


__all__ += ["ClockInUse"]
# --- end of the bot's clock ------------------------------------------------------------
