"""The bucket manager, slots, the invalid-request budget and refusals, on a ManualClock.

The server side is the emulator's own rate limiter (the model of Discord's buckets,
global limit and invalid-request block) behind a MockTransport, so every test runs in
milliseconds and says exactly when each request reached "Discord".
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pytest

from steadybot.clock import ManualClock
from steadybot.emulator.ratelimits import BucketLimit, RateLimitSettings
from steadybot.emulator.ratelimits import RateLimiter as ServerLimits
from steadybot.errors import RateLimited, RateLimitWait, TransportError, Unauthorized
from steadybot.resilience.retry import RetryPolicy
from steadybot.rest import MockTransport, RestClient, TransportRequest, TransportResponse, routes
from steadybot.rest.buckets import BucketManager
from steadybot.rest.budget import InvalidRequestBudget
from steadybot.rest.ratelimit import parse_bucket_headers
from steadybot.rest.slots import Claim, LocalSlotStore

API = "http://discord.test/api/v10"
TOKEN = "bot-token"
MESSAGE = {"id": "1", "channel_id": "2", "content": "x", "flags": 0}


@dataclass
class FakeDiscord:
    """Answers like Discord's rate limits: the emulator's limiter decides each request."""

    clock: ManualClock
    limits: ServerLimits
    sent: list[tuple[float, str, int]] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0
    latency: float = 0.0
    extra: Callable[[TransportRequest], TransportResponse | None] | None = None

    async def __call__(self, request: TransportRequest) -> TransportResponse:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.latency:
                await self.clock.sleep(self.latency)
            return self._answer(request)
        finally:
            self.in_flight -= 1

    def _answer(self, request: TransportRequest) -> TransportResponse:
        path = request.url.removeprefix(API).split("?")[0]
        template, major = _template(path)
        if self.extra is not None:
            special = self.extra(request)
            if special is not None:
                self.sent.append((self.clock.monotonic(), path, special.status))
                return special
        decision = self.limits.check(request.method, template, major, TOKEN)
        headers = {k.lower(): v for k, v in decision.headers.items()}
        if decision.rejected:
            self.limits.record_status(429, decision.scope)
            body = decision.body
            raw = body if isinstance(body, bytes) else msgspec.json.encode(body)
            self.sent.append((self.clock.monotonic(), path, 429))
            return TransportResponse(status=429, headers=headers, body=raw)
        self.sent.append((self.clock.monotonic(), path, 200))
        return TransportResponse(status=200, headers=headers, body=msgspec.json.encode(MESSAGE))

    @property
    def statuses(self) -> list[int]:
        return [status for _, _, status in self.sent]


def _template(path: str) -> tuple[str, str]:
    parts = path.strip("/").split("/")
    if parts[0] == "channels":
        template = "/channels/{channel_id}"
        if len(parts) > 2:
            template += "/messages"
        if len(parts) > 3:
            template += "/{message_id}"
        return template, parts[1]
    if parts[0] == "webhooks":
        return "/webhooks/{application_id}/{token}", f"{parts[1]}/{parts[2]}"
    return path, ""


def server(clock: ManualClock, **buckets: BucketLimit) -> FakeDiscord:
    settings = RateLimitSettings()
    settings.buckets.update({name.replace("_", "-"): limit for name, limit in buckets.items()})
    return FakeDiscord(clock, ServerLimits(settings, clock))


def rest_client(
    fake: FakeDiscord, clock: ManualClock, *, margin: float = 0.05, **kwargs: Any
) -> RestClient:
    manager = BucketManager(clock=clock, margin=margin, global_per_second=50)
    return RestClient(
        api_base=API,
        token=TOKEN,
        clock=clock,
        transport=MockTransport(fake),
        rate_limiter=manager,
        retry=RetryPolicy(max_attempts=3),
        **kwargs,
    )


async def finish(
    clock: ManualClock, *calls: Coroutine[Any, Any, Any], step: float = 0.01
) -> list[Any]:
    """Run ``calls`` concurrently, moving the clock until every one is done."""
    tasks = [asyncio.ensure_future(call) for call in calls]
    for _ in range(100_000):
        await clock.settle()
        if all(task.done() for task in tasks):
            break
        await clock.advance(step)
    return await asyncio.gather(*tasks, return_exceptions=True)


# --- headers ----------------------------------------------------------------------------


def test_bucket_headers_parse_and_malformed_ones_are_none() -> None:
    headers = {
        "x-ratelimit-bucket": "abc",
        "x-ratelimit-limit": "5",
        "x-ratelimit-remaining": "4",
        "x-ratelimit-reset-after": "4.999",
        "x-ratelimit-reset": "1700000005.123",
    }
    parsed = parse_bucket_headers(headers)
    assert parsed is not None
    assert (parsed.bucket, parsed.limit, parsed.remaining) == ("abc", 5, 4)
    assert (parsed.reset_after, parsed.reset) == (4.999, 1700000005.123)
    assert parse_bucket_headers({}) is None
    assert parse_bucket_headers({**headers, "x-ratelimit-limit": "many"}) is None
    assert parse_bucket_headers({**headers, "x-ratelimit-remaining": "-1"}) is None
    missing = dict(headers)
    del missing["x-ratelimit-reset-after"]
    assert parse_bucket_headers(missing) is None


# --- slots ------------------------------------------------------------------------------


async def test_slots_allow_limit_per_period_and_say_how_long_to_wait() -> None:
    clock = ManualClock()
    store = LocalSlotStore(clock)
    claim = Claim("k", 2, 1.0)
    assert await store.take([claim]) == 0.0
    await clock.advance(0.25)
    assert await store.take([claim]) == 0.0
    assert await store.take([claim]) == pytest.approx(0.75)
    await clock.advance(0.75)
    assert await store.take([claim]) == 0.0  # the first send has left the period
    assert await store.take([claim]) == pytest.approx(0.25)


async def test_slots_are_all_or_nothing_across_claims() -> None:
    clock = ManualClock()
    store = LocalSlotStore(clock)
    full, free = Claim("full", 1, 1.0), Claim("free", 5, 1.0)
    assert await store.take([full]) == 0.0
    assert await store.take([free, full]) == pytest.approx(1.0)
    await clock.advance(1.0)
    assert await store.take([free, full]) == 0.0
    # "free" holds exactly the one send that went through with "full".
    assert await store.take([Claim("free", 1, 1.0)]) == pytest.approx(1.0)


async def test_a_block_holds_a_key_and_sync_counts_what_the_server_counted() -> None:
    clock = ManualClock()
    store = LocalSlotStore(clock)
    claim = Claim("k", 5, 1.05)
    await store.block("k", 2.0)
    assert await store.take([claim]) == pytest.approx(2.0)
    await clock.advance(2.0)
    # The server says 4 of 5 are used until 0.5 s from now (sent by someone else).
    await store.sync(claim, used=4, reset_after=0.5)
    assert await store.take([claim]) == 0.0
    assert await store.take([claim]) == pytest.approx(0.5)
    await store.sync(claim, used=2, reset_after=0.5)  # never removes sends
    assert await store.take([claim]) == pytest.approx(0.5)


async def test_idle_keys_are_evicted_so_millions_of_channels_stay_bounded() -> None:
    clock = ManualClock()
    store = LocalSlotStore(clock, max_keys=1_000)
    for channel in range(20_000):
        assert await store.take([Claim(f"channel:{channel}", 5, 0.5)]) == 0.0
        await clock.advance(0.001)
    # Only keys used within the last period survive: 0.5 s at one key per ms.
    assert len(store) <= 501
    for channel in range(5_000):  # nothing idle: the cap holds anyway
        await store.take([Claim(f"busy:{channel}", 5, 1_000.0)])
    assert len(store) <= 1_001


# --- the manager against Discord's buckets ----------------------------------------------


async def test_a_burst_on_one_channel_meets_no_429_and_keeps_to_the_window() -> None:
    clock = ManualClock()
    fake = server(clock, message_create=BucketLimit(5, 5.0))
    rest = rest_client(fake, clock)
    start = clock.monotonic()
    results = await finish(clock, *(rest.create_message("10", {"content": "x"}) for _ in range(12)))
    assert not [r for r in results if isinstance(r, BaseException)]
    assert 429 not in fake.statuses
    elapsed = clock.monotonic() - start
    # 12 messages at 5 per 5 s: the third window opens 10 s in (plus the margin twice).
    assert 10.0 <= elapsed <= 10.0 + 2 * 0.05 + 0.05
    assert rest.statistics().rate_limit_waits == 7


async def test_unknown_buckets_are_probed_one_request_at_a_time() -> None:
    clock = ManualClock()
    fake = server(clock)
    fake.latency = 0.1
    rest = rest_client(fake, clock)
    manager = rest.rate_limiter
    assert isinstance(manager, BucketManager)
    results = await finish(clock, *(rest.get_message("10", str(i)) for i in range(4)))
    assert not [r for r in results if isinstance(r, BaseException)]
    first, second = fake.sent[0][0], fake.sent[1][0]
    assert second - first >= 0.1  # the others waited for the probe's answer
    # After the probe the bucket is known and the rest go together.
    assert fake.sent[3][0] == second
    assert manager.bucket_of(routes.CHANNEL_GET_MESSAGE.compile(channel_id=1, message_id=1))
    assert manager.queued_keys == 0  # nothing kept once nobody waits


async def test_routes_without_bucket_headers_are_not_limited_after_the_probe() -> None:
    clock = ManualClock()
    fake = server(clock)
    rest = rest_client(fake, clock)
    await finish(clock, rest.request(routes.GET_CURRENT_USER.compile()))
    manager = rest.rate_limiter
    assert isinstance(manager, BucketManager)
    assert manager.bucket_of(routes.GET_CURRENT_USER.compile()) == ""
    await finish(clock, *(rest.request(routes.GET_CURRENT_USER.compile()) for _ in range(20)))
    assert len({at for at, _, _ in fake.sent[1:]}) == 1  # all at once


async def test_the_global_limit_is_proactive_and_exempts_interaction_routes() -> None:
    clock = ManualClock()
    fake = server(clock)
    rest = rest_client(fake, clock)
    # Learn the route first, then 70 reads on 70 channels: separate buckets, one token.
    await finish(clock, rest.get_message("0", "1"))
    await clock.advance(2.0)
    fake.sent.clear()
    await finish(clock, *(rest.get_message(str(c), "1") for c in range(1, 71)))
    assert 429 not in fake.statuses
    times = sorted(at for at, _, _ in fake.sent)
    assert times[49] == times[0]
    assert times[50] - times[0] >= 1.0  # the 51st waits for the global window
    # Webhook-token routes do not take global slots: 60 follow-ups on 60 tokens go at once.
    fake.sent.clear()
    await finish(
        clock, *(rest.create_followup("9", f"tok{i}", {"content": "x"}) for i in range(60))
    )
    assert len(fake.sent) == 60
    assert 429 not in fake.statuses


async def test_user_scope_429_blocks_its_bucket_for_retry_after() -> None:
    clock = ManualClock()
    fake = server(clock, message_create=BucketLimit(5, 5.0))
    rest = rest_client(fake, clock)
    # Another process used the bucket: the server counts 5 sends the client never made.
    for _ in range(5):
        fake.limits.check("POST", "/channels/{channel_id}/messages", "10", TOKEN)
    results = await finish(clock, *(rest.create_message("10", {"content": "x"}) for _ in range(3)))
    assert not [r for r in results if isinstance(r, BaseException)]
    assert fake.statuses.count(429) == 1  # the probe met it; the rest waited
    scopes = rest.statistics().rate_limited_by_scope
    assert scopes == {"user": 1}
    assert rest.budget.count == 1


async def test_global_429_holds_every_route_and_shared_429_holds_none() -> None:
    clock = ManualClock()
    fake = server(clock)
    rest = rest_client(fake, clock)
    manager = rest.rate_limiter
    assert isinstance(manager, BucketManager)
    answers: list[TransportResponse] = [
        _too_many(2.0, scope="global"),
        _too_many(3.0, scope="shared"),
    ]

    def extra(request: TransportRequest) -> TransportResponse | None:
        return answers.pop(0) if answers else None

    fake.extra = extra
    await finish(clock, rest.get_message("1", "1"))  # global 429, then retried
    first_global, retried = fake.sent[0][0], fake.sent[1][0]
    assert retried - first_global >= 2.0
    await finish(clock, rest.get_message("2", "1"))  # shared 429 on channel 2
    assert rest.budget.count == 1  # the shared 429 does not count
    assert rest.statistics().rate_limited_by_scope == {"global": 1, "shared": 1}
    # Nothing of ours is held by the shared 429: channel 3 goes at once.
    before = clock.monotonic()
    await finish(clock, rest.get_message("3", "1"))
    assert fake.sent[-1][0] == before


def _too_many(retry_after: float, *, scope: str) -> TransportResponse:
    body = {"message": "slow down", "retry_after": retry_after, "global": scope == "global"}
    headers = {
        "x-ratelimit-scope": scope,
        "retry-after": str(int(retry_after)),
        "via": "1.1 google",
    }
    return TransportResponse(status=429, headers=headers, body=msgspec.json.encode(body))


async def test_a_wait_past_the_deadline_raises_at_once_and_sends_nothing() -> None:
    clock = ManualClock()
    fake = server(clock, message_create=BucketLimit(1, 5.0))
    rest = rest_client(fake, clock)
    await finish(clock, rest.create_message("10", {"content": "x"}))
    await finish(clock, rest.create_message("10", {"content": "x"}))  # learnt; slot used
    sent = len(fake.sent)
    route = routes.CHANNEL_CREATE_MESSAGE.compile(channel_id="10")
    with pytest.raises(RateLimitWait) as caught:
        await rest.request(route, json={"content": "x"}, deadline=clock.monotonic() + 1.0)
    assert caught.value.wait > 1.0
    assert len(fake.sent) == sent
    assert clock.pending_sleepers == 0


# --- budget and refusals ----------------------------------------------------------------


async def test_budget_counts_invalid_answers_over_a_sliding_window_and_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = ManualClock()
    budget = InvalidRequestBudget(clock, limit=10, window=60.0, warn_share=0.5)
    for status, scope in [
        (401, ""),
        (403, ""),
        (429, "user"),
        (429, "shared"),
        (404, ""),
        (200, ""),
    ]:
        budget.record(status, scope)
    assert budget.count == 3
    with caplog.at_level(logging.WARNING, logger="steadybot.rest.budget"):
        budget.record(429, "global")
        budget.record(429, "global")
        budget.record(403)
    assert budget.count == 6
    assert len([r for r in caplog.records if "invalid-request budget" in r.message]) == 1
    await clock.advance(30.0)
    budget.record(401)
    await clock.advance(31.0)
    assert budget.count == 1  # the first six left the window
    assert budget.share == pytest.approx(0.1)


async def test_a_dead_bot_token_is_not_used_again() -> None:
    clock = ManualClock()
    fake = server(clock)
    fake.extra = lambda request: TransportResponse(
        status=401, body=b'{"message": "401: Unauthorized", "code": 0}'
    )
    rest = rest_client(fake, clock)
    for _ in range(3):
        with pytest.raises(Unauthorized):
            await rest.create_message("1", {"content": "x"})
    assert len(fake.sent) == 1
    stats = rest.statistics()
    assert (stats.requests, stats.refused, stats.invalid_requests) == (1, 2, 1)
    # Webhook-token routes do not need the bot token: they still go.
    fake.extra = None
    await rest.create_followup("9", "tok", {"content": "x"})
    assert len(fake.sent) == 2


async def test_an_unknown_webhook_is_not_called_again_but_other_webhooks_are() -> None:
    clock = ManualClock()
    fake = server(clock)
    fake.extra = lambda request: (
        TransportResponse(status=404, body=b'{"message": "Unknown Webhook", "code": 10015}')
        if "/dead" in request.url
        else None
    )
    rest = rest_client(fake, clock)
    for _ in range(2):
        with pytest.raises(Exception, match="10015"):
            await rest.create_followup("9", "dead", {"content": "x"})
    await rest.create_followup("9", "alive", {"content": "x"})
    assert [path.rsplit("/", 1)[1] for _, path, _ in fake.sent] == ["dead", "alive"]


async def test_a_cloudflare_block_is_critical_and_holds_every_request_until_it_lapses(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = ManualClock()
    fake = server(clock)
    blocked = TransportResponse(status=429, headers={"retry-after": "30"}, body=b"error code: 1015")
    fake.extra = lambda request: blocked
    rest = rest_client(fake, clock)
    with caplog.at_level(logging.CRITICAL), pytest.raises(RateLimited) as caught:
        await rest.create_message("1", {"content": "x"})
    assert caught.value.cloudflare
    assert any(r.levelno == logging.CRITICAL for r in caplog.records)
    fake.extra = None
    for call in (rest.create_message("1", {}), rest.create_followup("9", "t", {})):
        with pytest.raises(RateLimited) as refused:
            await call
        assert refused.value.cloudflare
        assert "not sent" in refused.value.message
    assert len(fake.sent) == 1
    await clock.advance(30.0)
    await rest.create_message("1", {"content": "x"})
    assert len(fake.sent) == 2
    assert rest.statistics().rate_limited_by_scope == {"cloudflare": 1}


async def test_settings_build_a_bucket_manager_with_the_named_limits() -> None:
    from support import settings

    from steadybot.rest.slots import LocalSlotStore

    clock = ManualClock()
    rest = RestClient.from_settings(
        settings(rest_global_per_second=7, invalid_request_limit=99), clock=clock
    )
    manager = rest.rate_limiter
    assert isinstance(manager, BucketManager)
    assert isinstance(manager.store, LocalSlotStore)
    assert manager._global.limit == 7
    assert rest.budget.limit == 99
    await rest.close()


async def test_settings_give_the_redis_slot_store_the_shared_blocking_pool() -> None:
    from redis.asyncio import BlockingConnectionPool
    from support import settings

    from steadybot.rest.redis_slots import RedisSlotStore

    rest = RestClient.from_settings(
        settings(redis_url="redis://127.0.0.1:6379/0", coordination_redis_connections=7),
        clock=ManualClock(),
    )
    manager = rest.rate_limiter
    assert isinstance(manager, BucketManager)
    assert isinstance(manager.store, RedisSlotStore)
    pool = manager.store._redis.connection_pool  # built, never connected
    assert isinstance(pool, BlockingConnectionPool)
    assert pool.max_connections == 7
    await rest.close()


# --- ordering and failure paths ---------------------------------------------------------


async def test_the_global_gate_serves_lowest_priority_first_and_survives_cancellation() -> None:
    from steadybot.coordination import PriorityGate

    gate = PriorityGate()
    order: list[str] = []

    async def user(name: str, priority: int) -> None:
        await gate.enter(priority)
        order.append(name)
        await asyncio.sleep(0)
        gate.leave()

    await gate.enter(0)  # held: everyone below queues
    tasks = {
        name: asyncio.ensure_future(user(name, priority))
        for name, priority in [
            ("slow bucket", -20),
            ("late", 0),
            ("fast bucket", -5),
            ("gone", -30),
        ]
    }
    await asyncio.sleep(0)
    tasks["gone"].cancel()
    gate.leave()
    await asyncio.gather(*tasks.values(), return_exceptions=True)
    assert order == ["slow bucket", "fast bucket", "late"]
    await asyncio.wait_for(gate.enter(0), 1)  # free again


async def test_a_probe_without_an_answer_lets_the_next_request_probe() -> None:
    clock = ManualClock()
    fake = server(clock)
    failures = [True]

    def flaky(request: TransportRequest) -> TransportResponse | None:
        if failures:
            failures.pop()
            raise TransportError("connection reset")
        return None

    fake.extra = flaky
    rest = rest_client(fake, clock)
    results = await finish(clock, *(rest.get_message("10", str(i)) for i in range(3)))
    assert not [r for r in results if isinstance(r, BaseException)]  # the first retried
    manager = rest.rate_limiter
    assert isinstance(manager, BucketManager)
    assert manager.queued_keys == 0
    assert rest.statistics().transport_errors == 1


async def test_a_cancelled_waiter_leaves_no_queue_or_slot_behind() -> None:
    clock = ManualClock()
    fake = server(clock, message_create=BucketLimit(1, 5.0))
    rest = rest_client(fake, clock)
    await finish(clock, rest.create_message("10", {"content": "x"}))  # learnt, slot used
    waiting = asyncio.ensure_future(rest.create_message("10", {"content": "y"}))
    await clock.settle()
    assert clock.pending_sleepers == 1
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    manager = rest.rate_limiter
    assert isinstance(manager, BucketManager)
    assert manager.queued_keys == 0
    await clock.advance(5.1)
    await finish(clock, rest.create_message("10", {"content": "z"}))
    assert len(fake.sent) == 2  # the cancelled one never went


async def test_the_deadline_also_bounds_the_wait_behind_other_requests() -> None:
    clock = ManualClock()
    fake = server(clock, message_create=BucketLimit(1, 10.0))
    rest = rest_client(fake, clock)
    await finish(clock, rest.create_message("10", {"content": "x"}))  # learnt, slot used
    route = routes.CHANNEL_CREATE_MESSAGE.compile(channel_id="10")
    first = asyncio.ensure_future(rest.request(route, json={"content": "no deadline"}))
    await clock.settle()
    second = asyncio.ensure_future(
        rest.request(route, json={"content": "late"}, deadline=clock.monotonic() + 1.0)
    )
    await clock.settle()
    await clock.advance(1.0)
    await clock.settle()
    assert second.done()
    with pytest.raises(RateLimitWait):
        await second  # it waited in line for its turn no longer than its deadline
    manager = rest.rate_limiter
    assert isinstance(manager, BucketManager)
    await clock.advance(10.0)
    await first
    assert manager.queued_keys == 0
    assert len(fake.sent) == 2
