"""The REST client: builds requests, retries what is worth retrying, maps errors to types.

Why our own and not discord.py's: the runtime needs deadlines on every call (an
interaction token dies at 15 minutes, so a retry must never sleep past it), an
injected clock and random source (tests run in milliseconds), a pluggable transport
(tests and the emulator), and Discord's errors as types carrying status and code.

Retries: 5xx answers and transport failures are retried with full-jitter backoff;
429s wait ``retry_after`` (from the body, else ``Retry-After``). A 429 that looks like
a Cloudflare block (no ``Via`` header, or a body that is not JSON) is never retried:
retrying it extends the ban. No retry sleeps past the call's deadline. When the
interaction callback is retried after an ambiguous failure (a 5xx or a lost
connection) and Discord answers 40060 "already acknowledged", the first attempt did
arrive, so the call has succeeded.

Before each attempt: requests an earlier answer said would fail are refused without
sending (:class:`~steadybot.rest.budget.CertainFailures`), then the rate limiter
(by default :class:`~steadybot.rest.buckets.BucketManager`, built by
:meth:`RestClient.from_settings`) hands out a permit; every answer goes back to it and
401/403/429s to the invalid-request budget.

Secrets: the bot token goes only into the ``Authorization`` header of routes that
need it; interaction tokens live in paths, so logs and errors name the route
*template*, never the URL.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlencode

import msgspec

from steadybot.clock import Clock
from steadybot.config import Settings
from steadybot.constants import ErrorCode
from steadybot.errors import (
    BadRequest,
    DiscordHTTPError,
    Forbidden,
    NotFound,
    RateLimited,
    ServerError,
    TransportError,
    Unauthorized,
)
from steadybot.models import Channel, Guild, Member, Message, Role
from steadybot.redis_pool import redis_from_settings
from steadybot.resilience.retry import RetryPolicy
from steadybot.rest import routes
from steadybot.rest.buckets import BucketManager
from steadybot.rest.budget import CertainFailures, InvalidRequestBudget
from steadybot.rest.ratelimit import NoRateLimiter, RateLimiter
from steadybot.rest.redis_slots import RedisSlotStore
from steadybot.rest.routes import CompiledRoute
from steadybot.rest.slots import SlotStore
from steadybot.rest.transport import (
    AiohttpTransport,
    Transport,
    TransportRequest,
    TransportResponse,
)

__all__ = ["RestClient", "RestStatistics"]

log = logging.getLogger("steadybot.rest")
T = TypeVar("T")
JSONBody = Mapping[str, Any]

USER_AGENT = "DiscordBot (https://github.com/steadybot/steadybot, 0.1.0) steadybot"
_RETRYABLE_STATUSES = frozenset({500, 502, 503, 504})
_ERROR_TYPES: Mapping[int, type[DiscordHTTPError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
}


class _ErrorBody(msgspec.Struct):
    code: int = 0
    message: str = ""
    errors: dict[str, Any] | None = None
    retry_after: float | None = None
    is_global: bool = msgspec.field(default=False, name="global")


@dataclass(frozen=True, slots=True)
class RestStatistics:
    """What the client has done since it was made."""

    requests: int
    retries: int
    transport_errors: int
    rate_limited: int
    by_status: Mapping[int, int]
    rate_limited_by_scope: Mapping[str, int] = field(default_factory=dict)
    by_route: Mapping[tuple[str, int], int] = field(default_factory=dict)  # (template, status)
    invalid_requests: int = 0  # 401/403/429 answers in the invalid-request window, now
    refused: int = 0  # requests not sent because an earlier answer said they would fail
    rate_limit_waits: int = 0  # requests that waited for a rate-limit slot


@dataclass
class _Counters:
    requests: int = 0
    retries: int = 0
    transport_errors: int = 0
    rate_limited: int = 0
    rate_limited_by_scope: dict[str, int] = field(default_factory=dict)
    by_route: dict[tuple[str, int], int] = field(default_factory=dict)


class RestClient:
    """Discord REST calls with deadlines, retries and typed errors."""

    def __init__(
        self,
        *,
        api_base: str,
        token: str,
        clock: Clock,
        transport: Transport | None = None,
        retry: RetryPolicy | None = None,
        rate_limiter: RateLimiter | None = None,
        budget: InvalidRequestBudget | None = None,
        timeout: float = 10.0,
        rng: random.Random | None = None,
    ) -> None:
        self._api_base = api_base.rstrip("/")
        self._authorization = f"Bot {token}" if token else ""
        self._clock = clock
        self._transport: Transport = transport if transport is not None else AiohttpTransport()
        self._retry = retry if retry is not None else RetryPolicy()
        self._rate_limiter: RateLimiter = rate_limiter or NoRateLimiter()
        self._budget = budget if budget is not None else InvalidRequestBudget(clock)
        self._failures = CertainFailures(clock)
        self._timeout = timeout
        self._rng = rng if rng is not None else random.Random()
        self._counters = _Counters()

    @classmethod
    def from_settings(
        cls, settings: Settings, *, clock: Clock, transport: Transport | None = None
    ) -> RestClient:
        token = settings.token.get_secret_value()
        store: SlotStore | None = None
        if settings.redis_url:
            store = RedisSlotStore(
                redis_from_settings(settings), namespace=f"{settings.redis_prefix}:rl", token=token
            )
        limiter = BucketManager(
            clock=clock,
            store=store,
            global_per_second=settings.rest_global_per_second,
            margin=settings.rest_rate_limit_margin,
        )
        budget = InvalidRequestBudget(
            clock,
            limit=settings.invalid_request_limit,
            window=settings.invalid_request_window,
            warn_share=settings.invalid_request_warn_share,
        )
        return cls(
            api_base=settings.api_base,
            token=token,
            clock=clock,
            transport=transport,
            retry=RetryPolicy.from_settings(settings),
            rate_limiter=limiter,
            budget=budget,
            timeout=settings.rest_timeout,
        )

    @property
    def api_base(self) -> str:
        return self._api_base

    def statistics(self) -> RestStatistics:
        c = self._counters
        return RestStatistics(
            requests=c.requests,
            retries=c.retries,
            transport_errors=c.transport_errors,
            rate_limited=c.rate_limited,
            by_status=_by_status(c.by_route),
            rate_limited_by_scope=dict(c.rate_limited_by_scope),
            by_route=dict(c.by_route),
            invalid_requests=self._budget.count,
            refused=self._failures.refused,
            rate_limit_waits=getattr(self._rate_limiter, "waits", 0),
        )

    @property
    def rate_limiter(self) -> RateLimiter:
        return self._rate_limiter

    @property
    def budget(self) -> InvalidRequestBudget:
        """The invalid-request budget: 401/403/429 answers over Discord's ban window."""
        return self._budget

    @property
    def certain_failures(self) -> CertainFailures:
        return self._failures

    async def close(self) -> None:
        try:
            await self._rate_limiter.close()
        finally:
            await self._transport.close()

    # --- the one request path ---------------------------------------------------------

    async def request(
        self,
        route: CompiledRoute,
        *,
        json: object = None,
        query: Mapping[str, str | int | bool] | None = None,
        deadline: float | None = None,
        reason: str | None = None,
    ) -> bytes:
        """Send ``route`` and return the response body; raise a typed error otherwise.

        ``deadline`` is a monotonic time: no retry waits beyond it, and each attempt's
        timeout is cut to fit inside it.
        """
        request = self._build(route, json=json, query=query, reason=reason)
        attempt = 0
        ambiguous = False  # an earlier attempt may have reached Discord
        while True:
            wait: float | None
            refused = self._failures.check(route)
            if refused is not None:
                raise refused
            permit = await self._rate_limiter.acquire(route, deadline=deadline)
            self._counters.requests += 1
            try:
                response = await self._transport.request(
                    request, timeout=self._attempt_timeout(deadline)
                )
            except TransportError as exc:
                self._rate_limiter.release(permit)
                self._counters.transport_errors += 1
                failure: DiscordHTTPError | TransportError = TransportError(f"{route.route}: {exc}")
                wait = self._retry.backoff(attempt, self._rng)
                ambiguous = True
            except BaseException:
                self._rate_limiter.release(permit)
                raise
            else:
                status = response.status
                key = (route.route.key, status)
                self._counters.by_route[key] = self._counters.by_route.get(key, 0) + 1
                if status < 300:
                    await self._rate_limiter.complete(permit, status, response.headers)
                    return response.body
                failure = self._error(route, response)
                limited = failure if isinstance(failure, RateLimited) else None
                await self._rate_limiter.complete(permit, status, response.headers, limited)
                self._budget.record(status, limited.scope if limited is not None else "")
                self._failures.record(route, failure)
                if ambiguous and _acknowledged_before(route, failure):
                    return b""  # our earlier, unanswered attempt was the one that arrived
                wait = self._retry_wait(failure, attempt)
                ambiguous = ambiguous or failure.status in _RETRYABLE_STATUSES
            if wait is None or not self._retry.can_retry(attempt) or not self._fits(wait, deadline):
                raise failure
            log.warning("%s; retry %d in %.2fs", failure, attempt + 1, wait)
            self._counters.retries += 1
            attempt += 1
            await self._clock.sleep(wait)

    def _build(
        self,
        route: CompiledRoute,
        *,
        json: object,
        query: Mapping[str, str | int | bool] | None,
        reason: str | None,
    ) -> TransportRequest:
        url = self._api_base + route.path
        if query:
            url += "?" + urlencode({k: _query_value(v) for k, v in query.items()})
        headers = {"User-Agent": USER_AGENT}
        if route.route.auth and self._authorization:
            headers["Authorization"] = self._authorization
        body: bytes | None = None
        if json is not None:
            body = msgspec.json.encode(json)
            headers["Content-Type"] = "application/json"
        if reason:
            headers["X-Audit-Log-Reason"] = reason
        return TransportRequest(route.route.method, url, headers, body)

    def _retry_wait(self, error: DiscordHTTPError, attempt: int) -> float | None:
        """Seconds to wait before retrying after ``error``, or None: do not retry."""
        if isinstance(error, RateLimited):
            self._counters.rate_limited += 1
            scopes = self._counters.rate_limited_by_scope
            scope = "cloudflare" if error.cloudflare else error.scope
            scopes[scope] = scopes.get(scope, 0) + 1
            if error.cloudflare:
                log.critical(
                    "%s: 429 without Discord's headers: a Cloudflare block; not retrying "
                    "(retry after %.0fs)",
                    error.route,
                    error.retry_after,
                )
                return None
            return error.retry_after
        if error.status in _RETRYABLE_STATUSES:
            return self._retry.backoff(attempt, self._rng)
        return None

    def _attempt_timeout(self, deadline: float | None) -> float:
        if deadline is None:
            return self._timeout
        return max(0.001, min(self._timeout, deadline - self._clock.monotonic()))

    def _fits(self, wait: float, deadline: float | None) -> bool:
        return deadline is None or self._clock.monotonic() + wait < deadline

    def _error(self, route: CompiledRoute, response: TransportResponse) -> DiscordHTTPError:
        status = response.status
        template = str(route.route)
        is_json = True
        try:
            parsed = msgspec.json.decode(response.body, type=_ErrorBody)
        except (msgspec.DecodeError, msgspec.ValidationError):
            parsed = _ErrorBody(message=f"HTTP {status} with a body that is not Discord's JSON")
            is_json = False
        if status == 429:
            retry_after = parsed.retry_after
            if retry_after is None:
                retry_after = _float(response.headers.get("retry-after"), default=1.0)
            is_global = parsed.is_global or response.headers.get("x-ratelimit-global") == "true"
            return RateLimited(
                status=status,
                code=parsed.code,
                message=parsed.message or "You are being rate limited.",
                route=template,
                retry_after=max(0.0, retry_after),
                scope=response.headers.get("x-ratelimit-scope", "global" if is_global else "user"),
                is_global=is_global,
                cloudflare=not is_json or "via" not in response.headers,
            )
        error_type = _ERROR_TYPES.get(status, ServerError if status >= 500 else DiscordHTTPError)
        return error_type(
            status=status,
            code=parsed.code,
            message=parsed.message or f"HTTP {status}",
            route=template,
            errors=parsed.errors,
        )

    async def _json(
        self,
        route: CompiledRoute,
        type_: type[T],
        *,
        json: object = None,
        query: Mapping[str, str | int | bool] | None = None,
        deadline: float | None = None,
    ) -> T:
        body = await self.request(route, json=json, query=query, deadline=deadline)
        return _decode(route, body, type_)

    # --- interactions and webhooks (authenticated by the token in the path) -----------

    async def create_interaction_response(
        self,
        interaction_id: str,
        token: str,
        body: JSONBody,
        *,
        with_response: bool = False,
        deadline: float | None = None,
    ) -> dict[str, Any] | None:
        """POST the initial response; with ``with_response``, return Discord's answer."""
        route = routes.INTERACTION_CALLBACK.compile(interaction_id=interaction_id, token=token)
        query = {"with_response": "true"} if with_response else None
        raw = await self.request(route, json=body, query=query, deadline=deadline)
        if not with_response or not raw:
            return None
        decoded: dict[str, Any] = msgspec.json.decode(raw, type=dict[str, Any])
        return decoded

    async def create_followup(
        self, application_id: str, token: str, body: JSONBody, *, deadline: float | None = None
    ) -> Message:
        route = routes.WEBHOOK_CREATE_MESSAGE.compile(application_id=application_id, token=token)
        return await self._json(
            route, Message, json=body, query={"wait": "true"}, deadline=deadline
        )

    async def get_webhook_message(
        self,
        application_id: str,
        token: str,
        message_id: str = "@original",
        *,
        deadline: float | None = None,
    ) -> Message:
        route = routes.WEBHOOK_GET_MESSAGE.compile(
            application_id=application_id, token=token, message_id=message_id
        )
        return await self._json(route, Message, deadline=deadline)

    async def edit_webhook_message(
        self,
        application_id: str,
        token: str,
        body: JSONBody,
        message_id: str = "@original",
        *,
        deadline: float | None = None,
    ) -> Message:
        route = routes.WEBHOOK_EDIT_MESSAGE.compile(
            application_id=application_id, token=token, message_id=message_id
        )
        return await self._json(route, Message, json=body, deadline=deadline)

    async def delete_webhook_message(
        self,
        application_id: str,
        token: str,
        message_id: str = "@original",
        *,
        deadline: float | None = None,
    ) -> None:
        route = routes.WEBHOOK_DELETE_MESSAGE.compile(
            application_id=application_id, token=token, message_id=message_id
        )
        await self.request(route, deadline=deadline)

    # --- bot-token routes -------------------------------------------------------------

    async def create_message(self, channel_id: str, body: JSONBody) -> Message:
        route = routes.CHANNEL_CREATE_MESSAGE.compile(channel_id=channel_id)
        return await self._json(route, Message, json=body)

    async def get_message(self, channel_id: str, message_id: str) -> Message:
        route = routes.CHANNEL_GET_MESSAGE.compile(channel_id=channel_id, message_id=message_id)
        return await self._json(route, Message)

    async def edit_message(self, channel_id: str, message_id: str, body: JSONBody) -> Message:
        route = routes.CHANNEL_EDIT_MESSAGE.compile(channel_id=channel_id, message_id=message_id)
        return await self._json(route, Message, json=body)

    async def delete_message(self, channel_id: str, message_id: str) -> None:
        route = routes.CHANNEL_DELETE_MESSAGE.compile(channel_id=channel_id, message_id=message_id)
        await self.request(route)

    async def bulk_delete_messages(
        self, channel_id: str, message_ids: Sequence[str], *, reason: str | None = None
    ) -> None:
        """Delete 2-100 messages under 14 days old in a guild channel (one request)."""
        route = routes.CHANNEL_BULK_DELETE.compile(channel_id=channel_id)
        await self.request(route, json={"messages": list(message_ids)}, reason=reason)

    async def list_messages(self, channel_id: str, *, limit: int = 50) -> list[Message]:
        """The channel's latest ``limit`` (1-100) messages, newest first."""
        route = routes.CHANNEL_LIST_MESSAGES.compile(channel_id=channel_id)
        return await self._json(route, list[Message], query={"limit": limit})

    async def get_channel(self, channel_id: str) -> Channel:
        route = routes.CHANNEL_GET.compile(channel_id=channel_id)
        return await self._json(route, Channel)

    async def list_guild_channels(self, guild_id: str) -> list[Channel]:
        route = routes.GUILD_LIST_CHANNELS.compile(guild_id=guild_id)
        return await self._json(route, list[Channel])

    async def list_guild_roles(self, guild_id: str) -> list[Role]:
        route = routes.GUILD_LIST_ROLES.compile(guild_id=guild_id)
        return await self._json(route, list[Role])

    async def create_guild_channel(
        self, guild_id: str, body: JSONBody, *, reason: str | None = None
    ) -> Channel:
        """Create a channel; ``body`` as Discord takes it (name, type, parent_id, overwrites)."""
        route = routes.GUILD_CREATE_CHANNEL.compile(guild_id=guild_id)
        raw = await self.request(route, json=body, reason=reason)
        return _decode(route, raw, Channel)

    # --- members and roles (used by steadybot.members) ---------------------------------

    async def list_my_guilds(self, *, limit: int = 200, after: str | None = None) -> list[Guild]:
        """The guilds the bot is in, ascending by id after ``after`` (``limit`` 1-200)."""
        route = routes.USER_LIST_GUILDS.compile()
        query: dict[str, str | int | bool] = {"limit": limit}
        if after is not None:
            query["after"] = after
        return await self._json(route, list[Guild], query=query)

    async def list_members(
        self, guild_id: str, *, limit: int = 1000, after: str | None = None
    ) -> list[Member]:
        """One page of the guild's members, ascending by user id after ``after``
        (``limit`` 1-1000; Discord's default is 1, so always say how many)."""
        route = routes.GUILD_LIST_MEMBERS.compile(guild_id=guild_id)
        query: dict[str, str | int | bool] = {"limit": limit}
        if after is not None:
            query["after"] = after
        return await self._json(route, list[Member], query=query)

    async def get_member(self, guild_id: str, user_id: str) -> Member:
        route = routes.GUILD_GET_MEMBER.compile(guild_id=guild_id, user_id=user_id)
        return await self._json(route, Member)

    async def add_member_role(
        self, guild_id: str, user_id: str, role_id: str, *, reason: str | None = None
    ) -> None:
        route = routes.GUILD_ADD_MEMBER_ROLE.compile(
            guild_id=guild_id, user_id=user_id, role_id=role_id
        )
        await self.request(route, reason=reason)

    async def remove_member_role(
        self, guild_id: str, user_id: str, role_id: str, *, reason: str | None = None
    ) -> None:
        route = routes.GUILD_REMOVE_MEMBER_ROLE.compile(
            guild_id=guild_id, user_id=user_id, role_id=role_id
        )
        await self.request(route, reason=reason)

    async def create_role(
        self, guild_id: str, body: JSONBody, *, reason: str | None = None
    ) -> Role:
        """Create a role; ``body`` as Discord takes it (name, permissions, color, ...)."""
        route = routes.GUILD_CREATE_ROLE.compile(guild_id=guild_id)
        raw = await self.request(route, json=body, reason=reason)
        return _decode(route, raw, Role)

    async def create_dm(self, user_id: str) -> Channel:
        route = routes.USER_CREATE_DM.compile()
        return await self._json(route, Channel, json={"recipient_id": user_id})


def _by_status(by_route: Mapping[tuple[str, int], int]) -> dict[int, int]:
    totals: dict[int, int] = {}
    for (_, status), count in by_route.items():
        totals[status] = totals.get(status, 0) + count
    return totals


def _decode(route: CompiledRoute, body: bytes, type_: type[T]) -> T:
    try:
        return msgspec.json.decode(body, type=type_)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise DiscordHTTPError(
            status=200, code=0, message=f"unexpected answer: {exc}", route=str(route.route)
        ) from None


def _acknowledged_before(route: CompiledRoute, error: DiscordHTTPError) -> bool:
    return (
        route.route == routes.INTERACTION_CALLBACK
        and error.code == ErrorCode.INTERACTION_ALREADY_ACKNOWLEDGED
    )


def _query_value(value: str | int | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _float(value: str | None, *, default: float) -> float:
    try:
        return float(value) if value is not None else default
    except ValueError:
        return default
