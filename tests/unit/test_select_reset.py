"""The select-menu reset manager on a ManualClock, against a scripted message store."""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pytest

from steadybot.clock import ManualClock
from steadybot.components.reset import ResetSettings, SelectResetManager
from steadybot.resilience.retry import RetryPolicy
from steadybot.rest import MockTransport, RestClient, TransportRequest, TransportResponse

API = "http://discord.test/api/v10"
CHANNEL = "100"
MENU = [{"type": 1, "components": [{"type": 3, "custom_id": "price", "options": []}]}]


@dataclass
class Store:
    """Channel messages behind GET/PATCH, with latency and scripted failures."""

    clock: ManualClock
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)
    latency: float = 0.05
    fail_edits: int = 0  # the next N edits answer 500
    edits: list[tuple[float, str, Any]] = field(default_factory=list)
    gets: int = 0
    editing: dict[str, int] = field(default_factory=dict)
    overlaps: int = 0

    def add(self, message_id: str, version: int = 1) -> None:
        self.messages[message_id] = {
            "id": message_id,
            "channel_id": CHANNEL,
            "content": f"prices v{version}",
            "components": [{**MENU[0], "version": version}],
        }

    async def __call__(self, request: TransportRequest) -> TransportResponse:
        message_id = request.url.split("?")[0].rsplit("/", 1)[1]
        if request.method == "GET":
            self.gets += 1
            await self.clock.sleep(self.latency)
            return self._message(message_id)
        self.editing[message_id] = self.editing.get(message_id, 0) + 1
        if self.editing[message_id] > 1:
            self.overlaps += 1
        try:
            await self.clock.sleep(self.latency)
            if message_id not in self.messages:
                return self._message(message_id)
            if self.fail_edits:
                self.fail_edits -= 1
                return TransportResponse(status=500, body=b'{"message": "boom", "code": 0}')
            body = msgspec.json.decode(request.body or b"{}")
            self.edits.append((self.clock.monotonic(), message_id, body))
            self.messages[message_id].update(body)
            return TransportResponse(
                status=200, body=msgspec.json.encode(self.messages[message_id])
            )
        finally:
            self.editing[message_id] -= 1

    def _message(self, message_id: str) -> TransportResponse:
        if message_id not in self.messages:
            body = b'{"message": "Unknown Message", "code": 10008}'
            return TransportResponse(status=404, body=body)
        return TransportResponse(status=200, body=msgspec.json.encode(self.messages[message_id]))


def manager(
    store: Store, clock: ManualClock, **settings: Any
) -> tuple[SelectResetManager, RestClient]:
    rest = RestClient(
        api_base=API,
        token="t",
        clock=clock,
        transport=MockTransport(store),
        retry=RetryPolicy(max_attempts=1),  # the manager's own retries are under test
    )
    resets = SelectResetManager(
        rest, clock=clock, settings=ResetSettings(**settings), rng=random.Random(7)
    )
    return resets, rest


async def run_for(clock: ManualClock, seconds: float, step: float = 0.01) -> None:
    for _ in range(round(seconds / step)):
        await clock.advance(step)


async def test_picks_within_the_debounce_coalesce_into_one_fresh_edit() -> None:
    clock = ManualClock()
    store = Store(clock)
    store.add("m1")
    resets, _ = manager(store, clock, debounce=0.25)
    for _ in range(5):
        resets.request(CHANNEL, "m1")
        await run_for(clock, 0.04)
    await run_for(clock, 1.0)
    assert len(store.edits) == 1
    stats = resets.statistics()
    assert (stats.requested, stats.coalesced, stats.succeeded) == (5, 4, 1)
    assert stats.rest_calls == 2  # one fresh fetch, one edit
    assert stats.active_locks == 0  # nothing outlives its use
    # The edit wrote back the message's own current components.
    assert store.edits[0][2] == {"components": store.messages["m1"]["components"]}


async def test_a_pick_during_an_edit_gets_an_edit_after_it_never_alongside() -> None:
    clock = ManualClock()
    store = Store(clock, latency=0.2)
    store.add("m1")
    resets, _ = manager(store, clock, debounce=0.1)
    resets.request(CHANNEL, "m1")
    await run_for(clock, 0.35)  # debounce over, fetch done, edit in flight
    resets.request(CHANNEL, "m1")
    await run_for(clock, 2.0)
    assert len(store.edits) == 2
    assert store.overlaps == 0
    assert store.edits[1][0] > store.edits[0][0]
    assert resets.statistics().coalesced == 0


async def test_edits_keep_what_someone_changed_meanwhile() -> None:
    clock = ManualClock()
    store = Store(clock)
    store.add("m1", version=1)
    resets, _ = manager(store, clock, debounce=0.25)
    resets.request(CHANNEL, "m1")
    await run_for(clock, 0.1)
    store.add("m1", version=2)  # an admin changed the prices while the reset waited
    await run_for(clock, 1.0)
    assert store.edits[-1][2]["components"][0]["version"] == 2


async def test_failures_retry_on_the_backoff_schedule_then_give_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = ManualClock()
    store = Store(clock, latency=0.0)
    store.add("m1")
    resets, _ = manager(store, clock, debounce=0.0, max_attempts=3, backoff_base=0.5)
    store.fail_edits = 2
    resets.request(CHANNEL, "m1")
    await run_for(clock, 5.0)
    assert len(store.edits) == 1  # third attempt succeeded
    stats = resets.statistics()
    assert (stats.retries, stats.succeeded, stats.failed) == (2, 1, 0)
    # Full jitter within the doubling ceilings: 0.5, then 1.0 (seeded rng).
    rng = random.Random(7)
    first, second = rng.uniform(0, 0.5), rng.uniform(0, 1.0)
    assert store.edits[0][0] - 1000.0 == pytest.approx(first + second, abs=0.02)

    store.fail_edits = 10
    with caplog.at_level(logging.ERROR):
        resets.request(CHANNEL, "m1")
        await run_for(clock, 10.0)
    stats = resets.statistics()
    assert stats.failed == 1
    assert resets.health().status == "critical"  # 1 of 2 succeeded: 50 % < 80 %
    assert "failed after 3 attempts" in caplog.text


async def test_a_deleted_message_ends_the_reset_cleanly() -> None:
    clock = ManualClock()
    store = Store(clock)
    store.add("m1")
    resets, _ = manager(store, clock)
    resets.request(CHANNEL, "m1")
    del store.messages["m1"]
    await run_for(clock, 1.0)
    stats = resets.statistics()
    assert (stats.deleted, stats.failed, stats.retries, stats.active_locks) == (1, 0, 0, 0)
    assert store.edits == []


async def test_the_message_cache_serves_reads_and_is_dropped_by_picks_and_edits() -> None:
    clock = ManualClock()
    store = Store(clock, latency=0.0)
    store.add("m1")
    resets, _ = manager(store, clock, cache_ttl=5.0)

    async def read() -> Any:
        return await resets.message(CHANNEL, "m1")

    await read()
    await read()
    assert (resets.statistics().cache_hits, resets.statistics().cache_misses) == (1, 1)
    await clock.advance(6.0)  # the entry's TTL ran out: a fresh read
    await read()
    assert resets.statistics().cache_misses == 2
    resets.request(CHANNEL, "m1")  # a pick makes the cached copy stale
    await read()
    assert resets.statistics().cache_misses == 3
    await run_for(clock, 1.0)  # the edit invalidates it again
    fetched = await read()
    assert resets.statistics().cache_misses == 4
    assert fetched.components == store.messages["m1"]["components"]


async def test_the_sweep_ends_a_stuck_job_and_frees_its_lock() -> None:
    clock = ManualClock()
    store = Store(clock, latency=1_000.0)  # the fetch hangs
    store.add("m1")
    resets, _ = manager(store, clock, stale_after=5.0, sweep_interval=2.0)
    resets.request(CHANNEL, "m1")
    await clock.advance(1.0)
    assert resets.statistics().active_locks == 1
    assert resets.health().status == "healthy"
    await clock.advance(7.0)
    stats = resets.statistics()
    assert (stats.swept, stats.active_locks) == (1, 0)


async def test_too_many_active_locks_is_a_warning() -> None:
    clock = ManualClock()
    store = Store(clock, latency=1.0)
    for n in range(4):
        store.add(f"m{n}")
    resets, _ = manager(store, clock, max_active_locks=3)
    for n in range(4):
        resets.request(CHANNEL, f"m{n}")
    health = resets.health()
    assert health.status == "warning"
    assert "4 active reset locks > 3" in health.reasons[0]


async def test_shutdown_flushes_pending_resets_without_their_debounce() -> None:
    clock = ManualClock()
    store = Store(clock, latency=0.0)
    for n in range(3):
        store.add(f"m{n}")
    resets, _ = manager(store, clock, debounce=30.0)
    for n in range(3):
        resets.request(CHANNEL, f"m{n}")
    await clock.settle()
    await asyncio.wait_for(resets.close(), 1.0)  # no clock advance needed
    assert sorted(message_id for _, message_id, _ in store.edits) == ["m0", "m1", "m2"]
    resets.request(CHANNEL, "m0")  # after shutdown: refused, not lost silently
    assert resets.statistics().requested == 3


# --- "it worked five times and failed on the sixth" --------------------------------------


class NaiveReset:
    """The production bot's first reset: a cached message, a 1.5 s debounce, no retry.

    The message is cached with a TTL when the pick arrives and read again after the
    debounce; when the TTL runs out in between, the edit is built from nothing and the
    failure is swallowed.
    """

    def __init__(self, rest: RestClient, clock: ManualClock, ttl: float) -> None:
        from cachetools import TTLCache

        self.rest = rest
        self.clock = clock
        self.cache: TTLCache[str, Any] = TTLCache(maxsize=100, ttl=ttl, timer=clock.monotonic)

    async def reset(self, message_id: str) -> None:
        if message_id not in self.cache:
            self.cache[message_id] = await self.rest.get_message(CHANNEL, message_id)
        await self.clock.sleep(1.5)
        message = self.cache.get(message_id)
        try:
            body = {"components": message.components}  # type: ignore[union-attr]
            await self.rest.edit_message(CHANNEL, message_id, body)
        except Exception:  # the silent failure
            pass


PICKS = [1.8 * n for n in range(6)]  # six picks, 1.8 s apart


def unreset_picks(store: Store, start: float) -> list[int]:
    """Picks (1-based) with no edit of the menu after them: their check mark stays."""
    edits = [at - start for at, _, _ in store.edits]
    return [n + 1 for n, pick in enumerate(PICKS) if not any(e > pick for e in edits)]


async def play(clock: ManualClock, reset: Any) -> None:
    """Pick at PICKS (seconds from now), then let everything finish."""
    start = clock.monotonic()
    tasks = []
    for pick in PICKS:
        await run_for(clock, start + pick - clock.monotonic())
        result = reset()
        if asyncio.iscoroutine(result):
            tasks.append(asyncio.ensure_future(result))
    await run_for(clock, 5.0)
    await asyncio.gather(*tasks)


async def test_naive_reset_works_five_times_and_fails_on_the_sixth() -> None:
    clock = ManualClock()
    store = Store(clock, latency=0.0)
    store.add("m1")
    _, rest = manager(store, clock)
    naive = NaiveReset(rest, clock, ttl=10.0)
    start = clock.monotonic()
    await play(clock, lambda: naive.reset("m1"))
    assert unreset_picks(store, start) == [6]  # the cache expired between fetch and edit


async def test_the_manager_resets_after_every_pick_of_the_same_sequence() -> None:
    clock = ManualClock()
    store = Store(clock, latency=0.0)
    store.add("m1")
    resets, _ = manager(store, clock, cache_ttl=10.0)
    start = clock.monotonic()
    await play(clock, lambda: resets.request(CHANNEL, "m1"))
    assert unreset_picks(store, start) == []
    assert resets.statistics().succeeded == 6


async def test_a_picks_answer_never_waits_long_or_on_itself_for_the_menu_lock() -> None:
    clock = ManualClock()
    store = Store(clock)
    store.add("m1")
    resets, _ = manager(store, clock, answer_wait=0.5)
    # The handler itself holds the lock: no deadlock, just no reset from its copy.
    async with resets.lock("m1"), resets.answering("m1", arrived_at=0.0) as current:
        assert current is False
    # Another task holds it past answer_wait: the answer goes on without it.
    release = asyncio.Event()

    async def hold() -> None:
        async with resets.lock("m1"):
            await release.wait()

    holder = asyncio.ensure_future(hold())
    await clock.settle()

    async def answer() -> bool:
        async with resets.answering("m1", arrived_at=clock.monotonic()) as current:
            return current

    answering = asyncio.ensure_future(answer())
    await clock.settle()
    assert not answering.done()
    await clock.advance(0.5)
    assert await answering is False
    release.set()
    await holder
    assert resets.statistics().active_locks == 0
    # A failed edit under the lock still counts as a change: older copies stay unused.
    arrived = clock.monotonic()
    await clock.advance(0.1)
    with pytest.raises(RuntimeError):
        async with resets.lock("m1"):
            raise RuntimeError("the edit timed out; it may have reached Discord")
    async with resets.answering("m1", arrived_at=arrived) as current:
        assert current is False


async def test_a_pick_whose_copy_shows_the_bots_last_edit_may_reset_from_it() -> None:
    from steadybot.models import Message

    clock = ManualClock()
    store = Store(clock)
    store.add("m1")
    resets, _ = manager(store, clock)
    arrived = clock.monotonic()
    await clock.advance(0.1)
    edited_at = "2024-05-01T12:00:00.500000+00:00"
    async with resets.lock("m1"):
        pass  # the bot's edit of the menu, answered with edited_timestamp = edited_at
    resets.invalidate("m1", Message(id="m1", edited_timestamp=edited_at))
    # The pick arrived before the change, but its copy of the menu shows that edit:
    # Discord rendered it after the change, so writing it back undoes nothing.
    async with resets.answering("m1", arrived, edited_at) as current:
        assert current is True
    for older in (None, "2024-05-01T12:00:00.400000+00:00", "not a timestamp"):
        async with resets.answering("m1", arrived, older) as current:
            assert current is False, older
    # A later change that did not say when it happened voids the earlier edit's time:
    # a copy showing the earlier edit predates it.
    await clock.advance(0.1)
    resets.invalidate("m1")
    async with resets.answering("m1", arrived, edited_at) as current:
        assert current is False
    resets.invalidate("m1", Message(id="m1", edited_timestamp=edited_at))
    await clock.advance(0.3)  # past answer_settle of the answer that reset it above
    async with resets.lock("m1"):
        pass
    async with resets.answering("m1", arrived, edited_at) as current:
        assert current is False
