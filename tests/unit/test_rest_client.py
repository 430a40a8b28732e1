"""The REST client: headers, queries, error mapping, retries on a manual clock, secrecy.

Also the retry policy under it and the routes it compiles.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Coroutine
from typing import Any

import msgspec
import pytest
from aiohttp import web
from support import settings

from steadybot.clock import ManualClock
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
from steadybot.resilience.retry import RetryPolicy
from steadybot.rest import (
    AiohttpTransport,
    MockTransport,
    RestClient,
    TransportRequest,
    TransportResponse,
    routes,
)

API = "http://discord.test/api/v10"
BOT_TOKEN = "bot-token-that-must-stay-in-the-header"
APP_ID = "111111111111111111"
INTERACTION_ID = "222222222222222222"
CHANNEL_ID = "333333333333333333"
# Shaped like a real interaction token: long, URL-safe, unique enough to grep for.
TOKEN = "aW50ZXJhY3Rpb246MjIyMjIy" + "Qk9nX3Rva2VuLXNlY3JldA" * 8
MESSAGE = {"id": "444444444444444444", "channel_id": CHANNEL_ID, "content": "hi", "flags": 0}

Reply = TransportResponse | Exception


def reply(status: int, body: object = None, headers: dict[str, str] | None = None) -> Reply:
    raw = b"" if body is None else body if isinstance(body, bytes) else msgspec.json.encode(body)
    return TransportResponse(status=status, headers=headers or {}, body=raw)


def error(status: int, code: int, message: str = "boom", **extra: object) -> Reply:
    return reply(status, {"code": code, "message": message, **extra})


OK = reply(200, MESSAGE)


class Script:
    """A transport handler answering from a list; the last answer repeats."""

    def __init__(self, *answers: Reply) -> None:
        self.answers = list(answers)
        self.requests: list[TransportRequest] = []

    def __call__(self, request: TransportRequest) -> TransportResponse:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    @property
    def last(self) -> TransportRequest:
        return self.requests[-1]


def client(
    script: Script,
    *,
    clock: ManualClock | None = None,
    retry: RetryPolicy | None = None,
    seed: int = 1,
    token: str = BOT_TOKEN,
) -> RestClient:
    return RestClient(
        api_base=API + "/",
        token=token,
        clock=clock or ManualClock(),
        transport=MockTransport(script),
        retry=retry or RetryPolicy(max_attempts=5, base=1.0, cap=8.0),
        rng=random.Random(seed),
    )


def waits(seed: int, policy: RetryPolicy, count: int) -> list[float]:
    """The backoff waits a client seeded with ``seed`` will draw, in order."""
    rng = random.Random(seed)
    return [policy.backoff(attempt, rng) for attempt in range(count)]


def started(coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
    return asyncio.ensure_future(coro)


# --- headers, bodies, queries ----------------------------------------------------------


async def test_bot_route_sends_bot_authorization_user_agent_and_json() -> None:
    script = Script(OK)
    rest = client(script)

    message = await rest.create_message(CHANNEL_ID, {"content": "hello"})

    request = script.last
    assert request.method == "POST"
    assert request.url == f"{API}/channels/{CHANNEL_ID}/messages"
    assert request.headers["Authorization"] == f"Bot {BOT_TOKEN}"
    assert request.headers["User-Agent"].startswith("DiscordBot (")
    assert request.headers["Content-Type"] == "application/json"
    assert request.body is not None
    assert msgspec.json.decode(request.body) == {"content": "hello"}
    assert message.id == MESSAGE["id"]
    assert message.content == "hi"


async def test_request_without_body_has_no_content_type_and_reason_goes_to_audit_header() -> None:
    script = Script(reply(204))
    rest = client(script)

    await rest.delete_message(CHANNEL_ID, "5")
    assert script.last.method == "DELETE"
    assert script.last.body is None
    assert "Content-Type" not in script.last.headers
    assert "X-Audit-Log-Reason" not in script.last.headers

    route = routes.CHANNEL_DELETE_MESSAGE.compile(channel_id=CHANNEL_ID, message_id="5")
    await rest.request(route, reason="spam cleanup")
    assert script.last.headers["X-Audit-Log-Reason"] == "spam cleanup"


@pytest.mark.parametrize(
    ("name", "call"),
    [
        (
            "callback",
            lambda r: r.create_interaction_response(INTERACTION_ID, TOKEN, {"type": 5}),
        ),
        ("followup", lambda r: r.create_followup(APP_ID, TOKEN, {"content": "x"})),
        ("get", lambda r: r.get_webhook_message(APP_ID, TOKEN)),
        ("edit", lambda r: r.edit_webhook_message(APP_ID, TOKEN, {"content": "y"})),
        ("delete", lambda r: r.delete_webhook_message(APP_ID, TOKEN, "9")),
    ],
)
async def test_webhook_and_interaction_routes_send_no_bot_token(
    name: str, call: Callable[[RestClient], Coroutine[Any, Any, Any]]
) -> None:
    script = Script(OK)
    await call(client(script))

    request = script.last
    assert "Authorization" not in request.headers, name
    assert BOT_TOKEN not in str(dict(request.headers)), name
    assert request.headers["User-Agent"].startswith("DiscordBot ("), name
    assert TOKEN in request.url, name  # these routes authenticate by the path


async def test_empty_bot_token_sends_no_authorization_header() -> None:
    script = Script(OK)
    await client(script, token="").create_message(CHANNEL_ID, {"content": "x"})
    assert "Authorization" not in script.last.headers


async def test_followup_asks_to_wait_for_the_message() -> None:
    script = Script(OK)
    message = await client(script).create_followup(APP_ID, TOKEN, {"content": "later"})

    assert script.last.url == f"{API}/webhooks/{APP_ID}/{TOKEN}?wait=true"
    assert script.last.body is not None
    assert msgspec.json.decode(script.last.body) == {"content": "later"}
    assert message.id == MESSAGE["id"]


async def test_callback_with_response_sends_query_and_returns_the_answer() -> None:
    answer = {"interaction": {"id": INTERACTION_ID}, "resource": {"type": 4}}
    script = Script(reply(200, answer), reply(204))
    rest = client(script)

    got = await rest.create_interaction_response(
        INTERACTION_ID, TOKEN, {"type": 4, "data": {"content": "x"}}, with_response=True
    )
    assert script.requests[0].url == (
        f"{API}/interactions/{INTERACTION_ID}/{TOKEN}/callback?with_response=true"
    )
    assert got == answer

    plain = await rest.create_interaction_response(INTERACTION_ID, TOKEN, {"type": 6})
    assert script.last.url == f"{API}/interactions/{INTERACTION_ID}/{TOKEN}/callback"
    assert plain is None


async def test_query_booleans_are_lower_case_words() -> None:
    script = Script(reply(204))
    route = routes.GET_CURRENT_USER.compile()
    await client(script).request(route, query={"a": True, "b": False, "n": 3})
    assert script.last.url == f"{API}/users/@me?a=true&b=false&n=3"


async def test_a_200_that_is_not_the_expected_shape_is_a_typed_error() -> None:
    script = Script(reply(200, b"<html>oops</html>"))
    with pytest.raises(DiscordHTTPError) as caught:
        await client(script).get_message(CHANNEL_ID, "1")
    assert caught.value.status == 200
    assert caught.value.code == 0
    assert caught.value.route == "GET /channels/{channel_id}/messages/{message_id}"


async def test_close_closes_the_transport() -> None:
    transport = MockTransport(Script(OK))
    rest = RestClient(api_base=API, token="t", clock=ManualClock(), transport=transport)
    await rest.close()
    assert transport.closed is True


# --- error mapping ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        (400, 50035, BadRequest),
        (401, 50027, Unauthorized),
        (403, 50013, Forbidden),
        (404, 10008, NotFound),
        (500, 0, ServerError),
        (503, 130000, ServerError),
        (418, 12345, DiscordHTTPError),
    ],
)
async def test_error_statuses_map_to_types_with_status_and_code(
    status: int, code: int, kind: type[DiscordHTTPError]
) -> None:
    errors = {"content": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": "long"}]}}
    script = Script(error(status, code, "Discord says no", errors=errors))
    rest = client(script, retry=RetryPolicy(max_attempts=1))

    with pytest.raises(DiscordHTTPError) as caught:
        await rest.create_message(CHANNEL_ID, {"content": "x"})

    exc = caught.value
    assert type(exc) is kind
    assert exc.status == status
    assert exc.code == code
    assert exc.message == "Discord says no"
    assert exc.route == "POST /channels/{channel_id}/messages"
    assert exc.errors == errors
    assert str(exc) == f"POST /channels/{{channel_id}}/messages: HTTP {status}, code {code}: " + (
        "Discord says no"
    )
    assert len(script.requests) == 1


async def test_error_body_that_is_not_json_has_code_zero() -> None:
    script = Script(reply(403, b"<html>Forbidden</html>", {"content-type": "text/html"}))
    with pytest.raises(Forbidden) as caught:
        await client(script).get_message(CHANNEL_ID, "1")
    assert caught.value.status == 403
    assert caught.value.code == 0
    assert "not Discord's JSON" in caught.value.message
    assert caught.value.errors == {}


async def test_client_errors_are_not_retried() -> None:
    script = Script(error(404, 10003), OK)
    rest = client(script)
    with pytest.raises(NotFound):
        await rest.get_message(CHANNEL_ID, "1")
    assert len(script.requests) == 1
    assert rest.statistics().retries == 0


# --- retries on the manual clock --------------------------------------------------------


async def test_server_error_is_retried_after_backoff_then_succeeds() -> None:
    clock = ManualClock()
    policy = RetryPolicy(max_attempts=5, base=1.0, cap=8.0)
    expected = waits(7, policy, 2)
    script = Script(error(502, 0), error(503, 0), OK)
    rest = client(script, clock=clock, retry=policy, seed=7)

    task = started(rest.create_message(CHANNEL_ID, {"content": "x"}))
    await clock.settle()
    assert len(script.requests) == 1
    assert clock.pending_sleepers == 1

    await clock.advance(expected[0] * 0.5)
    assert len(script.requests) == 1  # still sleeping
    await clock.advance(expected[0] * 0.5)
    assert len(script.requests) == 2
    await clock.advance(expected[1])
    assert len(script.requests) == 3

    message = await task
    assert message.id == MESSAGE["id"]
    assert clock.monotonic() == pytest.approx(1000.0 + sum(expected))
    stats = rest.statistics()
    assert stats.requests == 3
    assert stats.retries == 2
    assert stats.by_status == {502: 1, 503: 1, 200: 1}
    assert stats.transport_errors == 0
    assert stats.rate_limited == 0


async def test_server_errors_give_up_after_max_attempts() -> None:
    clock = ManualClock()
    policy = RetryPolicy(max_attempts=3, base=1.0, cap=8.0)
    script = Script(error(500, 0, "Internal Server Error"))
    rest = client(script, clock=clock, retry=policy, seed=3)

    task = started(rest.create_message(CHANNEL_ID, {"content": "x"}))
    await clock.advance(60)

    with pytest.raises(ServerError) as caught:
        await task
    assert caught.value.status == 500
    assert len(script.requests) == 3
    assert clock.pending_sleepers == 0
    assert rest.statistics().retries == 2
    assert rest.statistics().by_status == {500: 3}


async def test_transport_errors_are_retried_then_succeed() -> None:
    clock = ManualClock()
    policy = RetryPolicy(max_attempts=5, base=1.0, cap=8.0)
    expected = waits(11, policy, 1)
    script = Script(TransportError("POST: ClientConnectorError"), OK)
    rest = client(script, clock=clock, retry=policy, seed=11)

    task = started(rest.create_message(CHANNEL_ID, {"content": "x"}))
    await clock.settle()
    assert len(script.requests) == 1
    await clock.advance(expected[0])
    message = await task

    assert message.id == MESSAGE["id"]
    stats = rest.statistics()
    assert (stats.requests, stats.retries, stats.transport_errors) == (2, 1, 1)
    assert stats.by_status == {200: 1}


async def test_transport_errors_give_up_with_a_route_named_error() -> None:
    clock = ManualClock()
    script = Script(TransportError("POST: no answer within 10 s"))
    rest = client(script, clock=clock, retry=RetryPolicy(max_attempts=2, base=1.0))

    task = started(rest.create_followup(APP_ID, TOKEN, {"content": "x"}))
    await clock.advance(10)
    with pytest.raises(TransportError) as caught:
        await task
    route = "POST /webhooks/{application_id}/{token}"
    assert str(caught.value) == f"{route}: POST: no answer within 10 s"
    assert rest.statistics().transport_errors == 2


async def test_rate_limit_waits_retry_after_from_the_body_then_succeeds() -> None:
    clock = ManualClock()
    limited = reply(
        429,
        {"message": "You are being rate limited.", "retry_after": 2.5, "global": False},
        {"via": "1.1 google", "retry-after": "3", "x-ratelimit-scope": "user"},
    )
    script = Script(limited, OK)
    rest = client(script, clock=clock)

    task = started(rest.create_message(CHANNEL_ID, {"content": "x"}))
    await clock.advance(2.49)
    assert len(script.requests) == 1  # the header's 3 s and the backoff are not used
    await clock.advance(0.02)
    assert len(script.requests) == 2
    assert (await task).id == MESSAGE["id"]

    stats = rest.statistics()
    assert (stats.rate_limited, stats.retries, stats.requests) == (1, 1, 2)
    assert stats.by_status == {429: 1, 200: 1}


async def test_rate_limit_without_body_value_uses_the_retry_after_header() -> None:
    clock = ManualClock()
    limited = reply(429, {"message": "slow down"}, {"via": "1.1 google", "retry-after": "4"})
    script = Script(limited, OK)
    rest = client(script, clock=clock)

    task = started(rest.create_message(CHANNEL_ID, {"content": "x"}))
    await clock.advance(3.9)
    assert len(script.requests) == 1
    await clock.advance(0.2)
    assert len(script.requests) == 2
    await task


async def test_rate_limit_that_survives_the_attempts_is_raised_with_its_details() -> None:
    clock = ManualClock()
    limited = reply(
        429,
        {"message": "global", "retry_after": 1.0, "global": True, "code": 0},
        {"via": "1.1 google", "x-ratelimit-scope": "global"},
    )
    script = Script(limited)
    rest = client(script, clock=clock, retry=RetryPolicy(max_attempts=2))

    task = started(rest.create_message(CHANNEL_ID, {"content": "x"}))
    await clock.advance(5)
    with pytest.raises(RateLimited) as caught:
        await task
    exc = caught.value
    assert (exc.status, exc.retry_after, exc.scope) == (429, 1.0, "global")
    assert exc.is_global is True
    assert exc.cloudflare is False
    assert len(script.requests) == 2


@pytest.mark.parametrize(
    "limited",
    [
        # JSON, but no Via header: Cloudflare, not Discord's API.
        reply(429, {"message": "blocked", "retry_after": 1.0}, {"retry-after": "3600"}),
        # Discord's Via header but an HTML body.
        reply(429, b"<html>error code: 1015</html>", {"via": "1.1 google", "retry-after": "60"}),
    ],
)
async def test_cloudflare_like_429_is_raised_at_once_without_retry(
    limited: TransportResponse, caplog: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock()
    script = Script(limited, OK)
    rest = client(script, clock=clock)

    with caplog.at_level(logging.DEBUG, logger="steadybot"):
        task = started(rest.create_message(CHANNEL_ID, {"content": "x"}))
        await clock.settle()
        assert task.done()  # no sleep was started
        with pytest.raises(RateLimited) as caught:
            await task

    assert caught.value.cloudflare is True
    assert len(script.requests) == 1
    assert clock.pending_sleepers == 0
    assert rest.statistics().retries == 0
    assert rest.statistics().rate_limited == 1
    assert any(r.levelno == logging.CRITICAL for r in caplog.records)


async def test_no_retry_sleeps_past_the_deadline() -> None:
    clock = ManualClock()
    limited = reply(429, {"message": "slow", "retry_after": 5.0}, {"via": "1.1 google"})
    script = Script(limited, OK)
    rest = client(script, clock=clock)
    route = routes.CHANNEL_CREATE_MESSAGE.compile(channel_id=CHANNEL_ID)

    task = started(rest.request(route, json={"content": "x"}, deadline=clock.monotonic() + 2.0))
    await clock.settle()
    assert task.done()
    with pytest.raises(RateLimited) as caught:
        await task
    assert caught.value.retry_after == 5.0
    assert len(script.requests) == 1
    assert clock.monotonic() == 1000.0


async def test_backoff_stops_at_the_deadline_and_raises_the_last_error() -> None:
    clock = ManualClock()
    policy = RetryPolicy(max_attempts=50, base=1.0, cap=8.0)
    seed, budget = 5, 6.0
    # Which waits fit: the client retries while now + wait < deadline.
    fitting, elapsed = 0, 0.0
    for wait in waits(seed, policy, 50):
        if elapsed + wait >= budget:
            break
        fitting, elapsed = fitting + 1, elapsed + wait
    assert 0 < fitting < 49  # the seed must exercise both paths

    script = Script(error(503, 0, "first"), error(502, 0, "later"))
    rest = client(script, clock=clock, retry=policy, seed=seed)
    route = routes.CHANNEL_CREATE_MESSAGE.compile(channel_id=CHANNEL_ID)
    task = started(rest.request(route, json={}, deadline=clock.monotonic() + budget))
    await clock.advance(budget + 100)

    with pytest.raises(ServerError) as caught:
        await task
    assert caught.value.status == 502  # the last answer, not the first
    assert len(script.requests) == fitting + 1
    assert rest.statistics().retries == fitting


async def test_attempt_timeout_is_cut_to_the_deadline() -> None:
    clock = ManualClock()
    timeouts: list[float] = []

    class Recording(MockTransport):
        async def request(self, request: TransportRequest, *, timeout: float) -> TransportResponse:
            timeouts.append(timeout)
            return await super().request(request, timeout=timeout)

    rest = RestClient(
        api_base=API, token="t", clock=clock, transport=Recording(Script(OK)), timeout=10.0
    )
    route = routes.GET_CURRENT_USER.compile()
    await rest.request(route)
    await rest.request(route, deadline=clock.monotonic() + 2.5)
    await rest.request(route, deadline=clock.monotonic() - 1)
    assert timeouts == [10.0, 2.5, 0.001]


# --- the interaction callback after an ambiguous failure -------------------------------


async def test_callback_retried_after_503_that_answers_40060_has_succeeded() -> None:
    clock = ManualClock()
    script = Script(error(503, 0, "upstream"), error(400, 40060, "already acknowledged"))
    rest = client(script, clock=clock)

    task = started(rest.create_interaction_response(INTERACTION_ID, TOKEN, {"type": 5}))
    await clock.advance(10)
    assert await task is None
    assert len(script.requests) == 2
    assert rest.statistics().by_status == {503: 1, 400: 1}


async def test_callback_retried_after_lost_connection_that_answers_40060_has_succeeded() -> None:
    clock = ManualClock()
    script = Script(TransportError("POST: ServerDisconnectedError"), error(400, 40060))
    rest = client(script, clock=clock)

    task = started(rest.create_interaction_response(INTERACTION_ID, TOKEN, {"type": 4}))
    await clock.advance(10)
    assert await task is None


async def test_40060_on_a_first_callback_attempt_is_an_error() -> None:
    script = Script(error(400, 40060, "already acknowledged"))
    with pytest.raises(BadRequest) as caught:
        await client(script).create_interaction_response(INTERACTION_ID, TOKEN, {"type": 4})
    assert caught.value.code == 40060


async def test_40060_after_a_5xx_on_another_route_is_still_an_error() -> None:
    clock = ManualClock()
    script = Script(error(503, 0), error(400, 40060))
    rest = client(script, clock=clock)
    task = started(rest.create_followup(APP_ID, TOKEN, {"content": "x"}))
    await clock.advance(10)
    with pytest.raises(BadRequest) as caught:
        await task
    assert caught.value.code == 40060


# --- secrets ----------------------------------------------------------------------------


async def test_interaction_token_never_in_errors_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    clock = ManualClock()
    rest = client(
        Script(
            error(503, 0, "upstream"),  # callback: retried, logged
            error(404, 10062, "Unknown interaction"),
            TransportError("POST: ClientOSError"),  # follow-up: retried, logged
            error(401, 50027, "Invalid Webhook Token"),
            reply(429, b"blocked", {}),  # edit: Cloudflare, logged critical
            error(500, 0),  # delete: retried until it gives up
        ),
        clock=clock,
        retry=RetryPolicy(max_attempts=2, base=1.0),
    )
    calls = [
        rest.create_interaction_response(INTERACTION_ID, TOKEN, {"type": 4}),
        rest.create_followup(APP_ID, TOKEN, {"content": "x"}),
        # A webhook token answered 50027 is not used again, so the last two calls use
        # another interaction's token (of the same shape).
        rest.edit_webhook_message(APP_ID, TOKEN[::-1], {"content": "y"}),
        rest.delete_webhook_message(APP_ID, TOKEN[::-1]),
    ]
    raised: list[BaseException] = []
    with caplog.at_level(logging.DEBUG):
        for call in calls:
            task = started(call)
            await clock.advance(10)
            with pytest.raises((DiscordHTTPError, TransportError)) as caught:
                await task
            raised.append(caught.value)

    assert [type(e) for e in raised] == [NotFound, Unauthorized, RateLimited, ServerError]
    for exc in raised:
        assert TOKEN not in str(exc)
        assert TOKEN[::-1] not in str(exc)
        assert TOKEN not in repr(exc)
        assert BOT_TOKEN not in str(exc)
        assert "{token}" in str(exc)  # the template names the route instead
    assert caplog.records  # retries and the Cloudflare block were logged
    assert TOKEN not in caplog.text
    assert TOKEN[::-1] not in caplog.text
    for record in caplog.records:
        assert TOKEN not in record.getMessage()
        assert TOKEN[:32] not in record.getMessage()


# --- statistics -------------------------------------------------------------------------


async def test_statistics_count_every_attempt_and_are_a_snapshot() -> None:
    clock = ManualClock()
    limited = reply(429, {"retry_after": 0.5}, {"via": "1.1 google"})
    script = Script(OK, error(404, 10008), limited, TransportError("x"), OK)
    rest = client(script, clock=clock)

    assert rest.statistics().requests == 0
    await rest.create_message(CHANNEL_ID, {"content": "x"})
    with pytest.raises(NotFound):
        await rest.get_message(CHANNEL_ID, "1")
    before = rest.statistics()
    task = started(rest.create_message(CHANNEL_ID, {"content": "y"}))
    await clock.advance(30)
    await task

    after = rest.statistics()
    assert before.requests == 2
    assert before.by_status == {200: 1, 404: 1}
    assert after.requests == 5
    assert after.retries == 2
    assert after.rate_limited == 1
    assert after.transport_errors == 1
    assert after.by_status == {200: 2, 404: 1, 429: 1}


# --- the retry policy -------------------------------------------------------------------


def test_ceiling_doubles_from_base_and_caps() -> None:
    policy = RetryPolicy(base=0.25, cap=8.0)
    assert [policy.ceiling(n) for n in range(8)] == [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert policy.ceiling(10_000) == 8.0  # no overflow for absurd attempt numbers


def test_backoff_is_full_jitter_below_the_ceiling() -> None:
    policy = RetryPolicy(base=0.5, cap=4.0)
    rng = random.Random(42)
    for attempt in range(12):
        samples = [policy.backoff(attempt, rng) for _ in range(200)]
        ceiling = policy.ceiling(attempt)
        assert all(0.0 <= s < ceiling for s in samples)
        assert max(samples) > ceiling * 0.8  # spread over the range, not clustered at 0
        assert min(samples) < ceiling * 0.2


def test_backoff_is_deterministic_for_a_seed() -> None:
    policy = RetryPolicy()
    first = [policy.backoff(n, random.Random(9)) for n in range(6)]
    again = [policy.backoff(n, random.Random(9)) for n in range(6)]
    other = [policy.backoff(n, random.Random(10)) for n in range(6)]
    assert first == again
    assert first != other


def test_can_retry_counts_the_first_attempt() -> None:
    assert [RetryPolicy(max_attempts=3).can_retry(n) for n in range(4)] == [
        True,
        True,
        False,
        False,
    ]
    assert RetryPolicy(max_attempts=1).can_retry(0) is False


@pytest.mark.parametrize(
    "params",
    [
        {"max_attempts": 0},
        {"max_attempts": -1},
        {"base": 0.0},
        {"base": -1.0},
        {"cap": 0.0},
        {"cap": -0.5},
    ],
)
def test_invalid_retry_policy_raises(params: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must be"):
        RetryPolicy(**params)


def test_retry_policy_and_client_from_settings() -> None:
    config = settings(rest_max_attempts=7, rest_backoff_base=0.5, rest_backoff_cap=3.0)
    assert RetryPolicy.from_settings(config) == RetryPolicy(max_attempts=7, base=0.5, cap=3.0)
    script = Script(reply(204))
    rest = RestClient.from_settings(config, clock=ManualClock(), transport=MockTransport(script))
    assert rest.api_base == "http://discord.test/api/v10"


# --- routes -----------------------------------------------------------------------------


def test_compile_fills_and_quotes_parameters() -> None:
    compiled = routes.CHANNEL_GET_MESSAGE.compile(channel_id=12, message_id="a/b c?")
    assert compiled.path == "/channels/12/messages/a%2Fb%20c%3F"
    assert compiled.template == "/channels/{channel_id}/messages/{message_id}"
    assert compiled.route is routes.CHANNEL_GET_MESSAGE

    original = routes.WEBHOOK_EDIT_MESSAGE.compile(
        application_id=APP_ID, token=TOKEN, message_id="@original"
    )
    assert original.path == f"/webhooks/{APP_ID}/{TOKEN}/messages/@original"


def test_compile_rejects_missing_and_extra_parameters() -> None:
    with pytest.raises(ValueError, match=r"missing \['message_id'\]"):
        routes.CHANNEL_GET_MESSAGE.compile(channel_id=1)
    with pytest.raises(ValueError, match=r"unexpected \['guild_id'\]"):
        routes.CHANNEL_CREATE_MESSAGE.compile(channel_id=1, guild_id=2)
    with pytest.raises(ValueError, match="missing"):
        routes.USER_CREATE_DM.compile(channel_id=1)


def test_route_parameters_and_str() -> None:
    route = routes.WEBHOOK_GET_MESSAGE
    assert route.parameters == ("application_id", "token", "message_id")
    assert str(route) == "GET /webhooks/{application_id}/{token}/messages/{message_id}"
    assert routes.USER_CREATE_DM.parameters == ()


def test_major_parameter_of_channel_and_other_routes() -> None:
    assert routes.CHANNEL_CREATE_MESSAGE.compile(channel_id=CHANNEL_ID).major == (
        f"channel_id={CHANNEL_ID}"
    )
    assert routes.CHANNEL_EDIT_MESSAGE.compile(channel_id=7, message_id=8).major == "channel_id=7"
    assert routes.USER_CREATE_DM.compile().major == ""
    callback = routes.INTERACTION_CALLBACK.compile(interaction_id=INTERACTION_ID, token=TOKEN)
    assert callback.major.startswith(f"interaction_id={INTERACTION_ID}")
    assert TOKEN not in callback.major


def test_webhook_major_keeps_the_token_out_but_tells_tokens_apart() -> None:
    a = routes.WEBHOOK_CREATE_MESSAGE.compile(application_id=APP_ID, token=TOKEN)
    same = routes.WEBHOOK_EDIT_MESSAGE.compile(application_id=APP_ID, token=TOKEN, message_id=1)
    other = routes.WEBHOOK_CREATE_MESSAGE.compile(application_id=APP_ID, token=TOKEN + "x")

    assert a.major.startswith(f"application_id={APP_ID}+")
    assert TOKEN not in a.major
    assert TOKEN[:16] not in a.major
    assert a.major == same.major
    assert a.major != other.major


def test_token_routes_do_not_take_the_bot_token() -> None:
    token_routes = [
        routes.INTERACTION_CALLBACK,
        routes.WEBHOOK_CREATE_MESSAGE,
        routes.WEBHOOK_GET_MESSAGE,
        routes.WEBHOOK_EDIT_MESSAGE,
        routes.WEBHOOK_DELETE_MESSAGE,
    ]
    assert all(not r.auth and r.interaction for r in token_routes)
    bot_routes = [
        routes.CHANNEL_CREATE_MESSAGE,
        routes.CHANNEL_GET_MESSAGE,
        routes.CHANNEL_EDIT_MESSAGE,
        routes.CHANNEL_DELETE_MESSAGE,
        routes.USER_CREATE_DM,
        routes.GET_CURRENT_USER,
    ]
    assert all(r.auth and not r.interaction for r in bot_routes)


# --- the aiohttp transport, against a local server --------------------------------------


async def serve(
    handler: Callable[[web.Request], Coroutine[Any, Any, web.StreamResponse]],
) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


async def test_aiohttp_transport_passes_the_request_and_lower_cases_headers() -> None:
    seen: list[tuple[str, str, str | None, bytes]] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(
            (request.method, request.path_qs, request.headers.get("X-Test"), await request.read())
        )
        return web.Response(status=418, body=b"teapot", headers={"X-RateLimit-Bucket": "abc"})

    runner, base = await serve(handler)
    transport = AiohttpTransport()
    try:
        request = TransportRequest("PATCH", f"{base}/a/b?c=1", {"X-Test": "yes"}, b"{}")
        response = await transport.request(request, timeout=5)
    finally:
        await transport.close()
        await runner.cleanup()

    assert seen == [("PATCH", "/a/b?c=1", "yes", b"{}")]
    assert response.status == 418
    assert response.body == b"teapot"
    assert response.headers["x-ratelimit-bucket"] == "abc"
    assert all(name == name.lower() for name in response.headers)


async def test_aiohttp_transport_does_not_follow_redirects() -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=302, headers={"Location": "/elsewhere"})

    runner, base = await serve(handler)
    transport = AiohttpTransport()
    try:
        response = await transport.request(TransportRequest("GET", base + "/x", {}), timeout=5)
    finally:
        await transport.close()
        await runner.cleanup()
    assert response.status == 302


async def test_aiohttp_transport_timeout_is_a_transport_error_without_the_url() -> None:
    release = asyncio.Event()

    async def handler(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(status=204)

    runner, base = await serve(handler)
    transport = AiohttpTransport()
    try:
        request = TransportRequest("POST", f"{base}/webhooks/1/{TOKEN}", {}, b"{}")
        with pytest.raises(TransportError) as caught:
            await transport.request(request, timeout=0.05)
    finally:
        release.set()
        await transport.close()
        await runner.cleanup()
    assert str(caught.value) == "POST: no answer within 0.05 s"


async def test_aiohttp_transport_refused_connection_names_only_the_error_type() -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response()

    runner, base = await serve(handler)
    await runner.cleanup()  # nothing listens on that port any more
    rest = RestClient(
        api_base=base + "/api/v10",
        token=BOT_TOKEN,
        clock=ManualClock(),
        retry=RetryPolicy(max_attempts=1),
    )
    try:
        with pytest.raises(TransportError) as caught:
            await rest.create_followup(APP_ID, TOKEN, {"content": "x"})
    finally:
        await rest.close()
    assert (
        str(caught.value) == "POST /webhooks/{application_id}/{token}: POST: ClientConnectorError"
    )
    assert TOKEN not in repr(caught.value)
    assert rest.statistics().transport_errors == 1
