"""BoundedCache: LRU and TTL bounds, pinning, single-flight loads, tags, sweeper, bus."""

from __future__ import annotations

import asyncio
import math

import pytest
from cachetools import Cache

from steadybot.cache import (
    BoundedCache,
    CacheMiss,
    Invalidation,
    InvalidationBus,
    LocalInvalidationBus,
)
from steadybot.clock import ManualClock
from steadybot.config import Settings
from steadybot.errors import SteadybotError


def make(
    clock: ManualClock,
    *,
    max_size: int = 3,
    ttl: float | None = 10.0,
    bus: LocalInvalidationBus | None = None,
    name: str = "members",
) -> BoundedCache[object]:
    return BoundedCache(name, clock=clock, max_size=max_size, ttl=ttl, bus=bus)


def stored(cache: BoundedCache[object]) -> int:
    """Entries physically stored, expired or not (len() drops expired ones first)."""
    return Cache.__len__(cache._store)


# --- LRU, TTL, statistics ---------------------------------------------------------------


def test_evicts_the_least_recently_used_entry() -> None:
    cache = make(ManualClock())
    for key in ("a", "b", "c"):
        cache.set(key, key.upper())
    assert cache.get("a") == "A"  # a is now the most recently used: b is the oldest
    cache.set("d", "D")
    assert "b" not in cache
    assert [key in cache for key in ("a", "c", "d")] == [True, True, True]
    cache.set("e", "E")  # now c is the oldest
    assert "c" not in cache
    stats = cache.statistics()
    assert (stats.evictions, stats.size, stats.max_size) == (2, 3, 3)


async def test_entries_expire_on_the_injected_clock() -> None:
    clock = ManualClock()
    cache = make(clock, ttl=10.0)
    cache.set("a", 1)
    await clock.advance(9.9)
    assert cache.get("a") == 1
    await clock.advance(0.1)  # exactly the TTL: expired
    assert cache.get("a") is None
    assert "a" not in cache
    assert len(cache) == 0
    stats = cache.statistics()
    assert (stats.hits, stats.misses, stats.expirations) == (1, 1, 1)


async def test_a_per_entry_ttl_overrides_the_cache_ttl_and_none_means_no_expiry() -> None:
    clock = ManualClock()
    cache = make(clock, ttl=10.0)
    cache.set("short", 1, ttl=1.0)
    cache.set("default", 2)
    await clock.advance(1.0)
    assert cache.get("short") is None
    assert cache.get("default") == 2
    forever = make(clock, ttl=None)
    forever.set("k", 3)
    await clock.advance(1e9)
    assert forever.get("k") == 3


def test_statistics_count_hits_misses_and_are_frozen() -> None:
    cache = make(ManualClock())
    cache.set("a", 1)
    cache.get("a")
    cache.get("a")
    cache.get("nope")
    stats = cache.statistics()
    assert (stats.name, stats.hits, stats.misses, stats.size) == ("members", 2, 1, 1)
    with pytest.raises(AttributeError):
        stats.hits = 0  # type: ignore[misc]


def test_bad_arguments_get_clear_errors() -> None:
    clock = ManualClock()
    with pytest.raises(ValueError, match="max_size"):
        BoundedCache("c", clock=clock, max_size=0, ttl=1.0)
    with pytest.raises(ValueError, match="ttl"):
        BoundedCache("c", clock=clock, max_size=1, ttl=0.0)
    with pytest.raises(ValueError, match="sweep_interval"):
        BoundedCache("c", clock=clock, max_size=1, ttl=1.0, sweep_interval=0)
    with pytest.raises(ValueError, match="name"):
        BoundedCache("", clock=clock, max_size=1, ttl=1.0)
    cache = make(clock)
    with pytest.raises(TypeError, match="iterable of strings"):
        cache.set("k", 1, tags="guild:1")
    with pytest.raises(TypeError, match="a tag must be a string"):
        cache.set("k", 1, tags=[1])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="ttl"):
        cache.set("k", 1, ttl=-1.0)
    assert "k" not in cache


def test_from_settings_takes_the_cache_settings() -> None:
    settings = Settings(cache_max_size=7, cache_ttl=12.0, cache_sweep_interval=3.0)
    cache: BoundedCache[int] = BoundedCache.from_settings("x", settings, clock=ManualClock())
    assert (cache.max_size, cache.ttl, cache.sweep_interval) == (7, 12.0, 3.0)


# --- pinning ----------------------------------------------------------------------------


async def test_a_pinned_entry_survives_eviction_pressure_and_is_evictable_after_release() -> None:
    clock = ManualClock()
    cache = make(clock, max_size=10)
    member = object()
    cache.set("member:1", member)
    async with cache.pinned("member:1") as value:
        assert value is member
        for i in range(cache.max_size * 3):  # pressure: 30 other keys through a 10-slot cache
            cache.set(f"other:{i}", i)
            stats = cache.statistics()
            assert stats.size <= cache.max_size + stats.pinned
        assert cache.get("member:1") is member  # the same object, not a reload
        assert cache.statistics().pinned == 1
        assert cache.statistics().evictions == 20  # 30 inserts into 10 free slots: A is aside
    assert cache.statistics().pinned == 0
    assert cache.get("member:1") is member  # back in the LRU, as the most recent entry
    for i in range(cache.max_size):
        cache.set(f"after:{i}", i)
    assert "member:1" not in cache  # evictable again
    assert len(cache) == cache.max_size


async def test_the_ttl_does_not_expire_a_pinned_entry_but_applies_on_release() -> None:
    clock = ManualClock()
    cache = make(clock, ttl=5.0)
    cache.set("a", "A")
    async with cache.pinned("a") as value:
        await clock.advance(60.0)
        assert cache.sweep() == 0
        assert cache.get("a") == "A" == value
    assert cache.get("a") is None
    assert cache.statistics().expirations == 1
    assert len(cache) == 0


async def test_pins_are_counted_and_the_last_release_unpins() -> None:
    cache = make(ManualClock())
    cache.set("a", 1)
    async with cache.pinned("a"):
        async with cache.pinned("a"):
            assert cache.statistics().pinned == 1
        assert cache.statistics().pinned == 1  # the outer pin still holds
        for i in range(10):
            cache.set(f"x{i}", i)
        assert "a" in cache
    assert cache.statistics().pinned == 0


async def test_pinning_an_absent_key_without_a_loader_raises_cache_miss() -> None:
    cache = make(ManualClock())
    with pytest.raises(CacheMiss) as caught:
        async with cache.pinned("ghost"):
            pass  # pragma: no cover - never entered
    assert isinstance(caught.value, KeyError)
    assert isinstance(caught.value, SteadybotError)
    assert "ghost" in str(caught.value)
    assert cache.statistics().misses == 1


async def test_pinning_with_a_loader_loads_once_and_pins() -> None:
    cache = make(ManualClock(), max_size=2)
    calls = 0

    async def load() -> str:
        nonlocal calls
        calls += 1
        return "loaded"

    async with cache.pinned("k", load, tags=["guild:1"]) as value:
        assert value == "loaded"
        for i in range(5):
            cache.set(f"x{i}", i)
        assert cache.get("k") == "loaded"
        async with cache.pinned("k", load):
            pass
    assert calls == 1
    assert cache.invalidate_tag("guild:1") == 1


async def test_invalidating_a_pinned_entry_drops_it_now_and_the_holder_keeps_its_object() -> None:
    cache = make(ManualClock())
    member = object()
    cache.set("m", member, tags=["guild:1"])
    async with cache.pinned("m") as value:
        assert cache.invalidate("m") is True
        assert value is member  # the operation keeps working with what it holds
        assert cache.get("m") is None  # but nobody else gets the stale entry
        assert cache.statistics().pinned == 0
        assert cache.statistics().tags == 0
        cache.set("m", "fresh")
        async with cache.pinned("m") as again:
            assert again == "fresh"
    assert cache.get("m") == "fresh"  # releasing the stale pin did not put it back


async def test_set_on_a_pinned_key_replaces_the_entry_the_cache_serves() -> None:
    cache = make(ManualClock())
    cache.set("k", "old", tags=["a"])
    async with cache.pinned("k") as value:
        cache.set("k", "new", tags=["b"])
        assert value == "old"
        assert cache.get("k") == "new"
    assert cache.get("k") == "new"
    assert cache.invalidate_tag("a") == 0
    assert cache.invalidate_tag("b") == 1
    assert cache.statistics().tags == 0


# --- get_or_load ------------------------------------------------------------------------


async def test_concurrent_misses_share_one_load() -> None:
    clock = ManualClock()
    cache = make(clock)
    calls = 0

    async def load() -> str:
        nonlocal calls
        calls += 1
        await clock.sleep(1.0)
        return "value"

    callers = [asyncio.ensure_future(cache.get_or_load("k", load)) for _ in range(20)]
    await clock.settle()
    assert cache.statistics().loading == 1
    await clock.advance(1.0)
    assert await asyncio.gather(*callers) == ["value"] * 20
    assert calls == 1
    stats = cache.statistics()
    assert (stats.loads, stats.misses, stats.loading) == (1, 20, 0)
    assert await cache.get_or_load("k", load) == "value"  # now a hit
    assert calls == 1


async def test_a_failing_load_reaches_every_caller_and_is_not_cached() -> None:
    clock = ManualClock()
    cache = make(clock)
    calls = 0

    async def load() -> str:
        nonlocal calls
        calls += 1
        await clock.sleep(1.0)
        if calls == 1:
            raise RuntimeError("database down")
        return "ok"

    callers = [asyncio.ensure_future(cache.get_or_load("k", load)) for _ in range(3)]
    await clock.advance(1.0)
    results = await asyncio.gather(*callers, return_exceptions=True)
    assert all(isinstance(r, RuntimeError) and str(r) == "database down" for r in results)
    assert "k" not in cache
    assert cache.statistics().load_failures == 1
    retry = asyncio.ensure_future(cache.get_or_load("k", load))
    await clock.advance(1.0)
    assert await retry == "ok"
    assert calls == 2


async def test_a_cancelled_waiter_cancels_nobody_and_a_cancelled_leader_hands_over() -> None:
    clock = ManualClock()
    cache = make(clock)
    calls = 0

    async def load() -> str:
        nonlocal calls
        calls += 1
        await clock.sleep(1.0)
        return f"value {calls}"

    leader = asyncio.ensure_future(cache.get_or_load("k", load))
    waiter = asyncio.ensure_future(cache.get_or_load("k", load))
    impatient = asyncio.ensure_future(cache.get_or_load("k", load))
    await clock.settle()
    impatient.cancel()  # a waiter gives up: the load goes on for the others
    await clock.settle()
    assert impatient.cancelled()
    assert cache.statistics().loading == 1
    leader.cancel()  # the one running the load gives up: the waiter loads again
    await clock.settle()
    assert leader.cancelled()
    assert not waiter.done()
    await clock.advance(1.0)
    assert await waiter == "value 2"
    assert calls == 2
    assert cache.get("k") == "value 2"
    assert cache.statistics().loading == 0


async def test_an_invalidation_during_a_load_keeps_the_stale_result_out() -> None:
    clock = ManualClock()
    cache = make(clock)
    versions = iter(["stale", "fresh"])

    async def load() -> str:
        await clock.sleep(1.0)
        return next(versions)

    caller = asyncio.ensure_future(cache.get_or_load("k", load))
    await clock.settle()
    cache.invalidate("k")  # the row changed while we were reading it
    await clock.advance(1.0)
    assert await caller == "stale"  # the caller asked before the change: it gets its read
    assert "k" not in cache  # but the cache does not keep it
    reload = asyncio.ensure_future(cache.get_or_load("k", load))
    await clock.advance(1.0)
    assert await reload == "fresh"
    assert cache.get("k") == "fresh"


async def test_a_set_during_a_load_wins_over_the_loaded_value() -> None:
    clock = ManualClock()
    cache = make(clock)

    async def load() -> str:
        await clock.sleep(1.0)
        return "read before the write"

    caller = asyncio.ensure_future(cache.get_or_load("k", load))
    await clock.settle()
    cache.set("k", "written")
    await clock.advance(1.0)
    assert await caller == "read before the write"
    assert cache.get("k") == "written"


async def test_a_pin_whose_load_was_invalidated_keeps_its_value_out_of_the_cache() -> None:
    clock = ManualClock()
    cache = make(clock)

    async def load() -> str:
        await clock.sleep(1.0)
        return "stale"

    async def hold() -> None:
        async with cache.pinned("k", load) as value:
            assert value == "stale"
            assert "k" not in cache
            assert cache.statistics().pinned == 0

    holder = asyncio.ensure_future(hold())
    await clock.settle()
    cache.invalidate("k")
    await clock.advance(1.0)
    await holder
    assert "k" not in cache


async def test_pinning_a_loaded_key_into_a_full_cache_evicts_nothing() -> None:
    cache = make(ManualClock(), max_size=3)
    for i in range(3):
        cache.set(f"x{i}", i)

    async def load() -> str:
        return "loaded"

    async with cache.pinned("k", load):
        assert cache.statistics().evictions == 0  # straight into the pins, not via the LRU
        assert all(f"x{i}" in cache for i in range(3))


async def test_a_pin_over_an_expired_unswept_entry_keeps_its_tag_through_the_sweep() -> None:
    clock = ManualClock()
    cache = make(clock, ttl=1.0)
    cache.set("k", "old", tags=["t"])
    await clock.advance(2.0)  # expired, still stored: nobody swept

    async def load() -> str:
        return "new"

    async with cache.pinned("k", load, tags=["t"]):
        cache.sweep()  # must not unindex the pinned entry's tag with the old entry's
        assert cache.invalidate_tag("t") == 1
    assert "k" not in cache


# --- invalidation and the tag index -------------------------------------------------------


def test_invalidate_by_key_prefix_and_tag() -> None:
    cache = make(ManualClock(), max_size=10)
    cache.set("user:1", 1, tags=["guild:a"])
    cache.set("user:2", 2, tags=["guild:a", "guild:b"])
    cache.set("user:3", 3, tags=["guild:b"])
    cache.set("role:1", 4)
    assert cache.invalidate("user:1") is True
    assert cache.invalidate("user:1") is False
    assert cache.invalidate_tag("guild:b") == 2
    assert cache.invalidate_tag("guild:b") == 0
    cache.set("user:4", 5, tags=["guild:a"])
    cache.set("user:5", 6)
    assert cache.invalidate_prefix("user:") == 2
    assert cache.get("role:1") == 4
    assert cache.invalidate_prefix("") == 1  # everything
    assert len(cache) == 0
    stats = cache.statistics()
    assert (stats.invalidations, stats.tags) == (6, 0)


async def test_the_tag_index_forgets_keys_that_leave_by_any_way() -> None:
    clock = ManualClock()
    cache = make(clock, max_size=5, ttl=10.0)
    # eviction: 1000 tagged keys through 5 slots
    for i in range(1000):
        cache.set(f"k{i}", i, tags=[f"t{i}", "shared"])
    assert cache.statistics().tags == 6  # 5 own tags + "shared"
    assert cache.invalidate_tag("t0") == 0  # evicted long ago, not a dangling index entry
    # overwrite with other tags
    cache.set("k999", "new", tags=["other"])
    assert cache.invalidate_tag("t999") == 0
    # expiry, noticed by the sweep
    await clock.advance(10.0)
    assert cache.sweep() == 5
    assert cache.statistics().tags == 0
    assert cache._tags.tags() == set()  # the index itself, not only its count


async def test_an_expired_entry_overwritten_before_the_sweep_leaves_no_tag_behind() -> None:
    clock = ManualClock()
    cache = make(clock, ttl=1.0)
    cache.set("k", 1, tags=["a", "b"])
    await clock.advance(2.0)
    cache.set("k", 2, tags=["b"])  # the expired entry (tags a, b) is still stored
    assert cache.invalidate_tag("a") == 0
    assert cache.statistics().tags == 1
    assert cache.invalidate_tag("b") == 1
    assert cache._tags.tags() == set()


async def test_distinct_keys_leave_no_per_key_structures_behind() -> None:
    clock = ManualClock()
    cache = make(clock, max_size=50)

    async def load() -> int:
        await asyncio.sleep(0)
        return 1

    for batch in range(20):
        keys = [f"user:{batch * 100 + i}" for i in range(100)]
        await asyncio.gather(*(cache.get_or_load(k, load, tags=[k]) for k in keys))
        for key in keys[:10]:  # evicted by now: loaded again, pinned, released
            async with cache.pinned(key, load, tags=[key]):
                pass
    stats = cache.statistics()
    assert (stats.loading, stats.pinned) == (0, 0)
    assert stats.size <= 50
    assert stats.tags == stats.size
    assert cache._flights == {}
    assert cache._pins == {}


# --- sweeper --------------------------------------------------------------------------------


async def test_the_sweeper_runs_on_the_clock_and_close_stops_it() -> None:
    clock = ManualClock()
    cache = BoundedCache[int]("c", clock=clock, max_size=10, ttl=5.0, sweep_interval=10.0)
    await cache.start()
    await cache.start()  # idempotent
    assert cache.running
    for i in range(3):
        cache.set(f"k{i}", i, tags=["t"])
    await clock.advance(9.0)
    assert stored(cache) == 3  # expired at 5 s, but the sweep comes at 10 s
    await clock.advance(1.0)
    assert stored(cache) == 0  # swept without a read or a write
    assert cache.statistics().expirations == 3
    assert cache.statistics().tags == 0
    await cache.close()
    assert not cache.running
    assert clock.pending_sleepers == 0
    cache.set("late", 1, ttl=1.0)
    await clock.advance(100.0)
    assert stored(cache) == 1  # no sweeper any more


# --- the bus --------------------------------------------------------------------------------


async def test_an_invalidation_reaches_the_other_caches_of_the_same_name() -> None:
    clock = ManualClock()
    bus = LocalInvalidationBus()
    assert isinstance(bus, InvalidationBus)
    here = make(clock, bus=bus)
    there = make(clock, bus=bus)
    unrelated = make(clock, bus=bus, name="roles")
    for cache in (here, there, unrelated):
        await cache.start()
        cache.set("user:1", 1, tags=["g"])
        cache.set("user:2", 2)
        cache.set("x", 3)
    assert here.invalidate("user:1")
    here.set("user:1", "new")  # stored right after: no echo may drop it
    assert here.get("user:1") == "new"
    assert "user:1" not in there
    assert "user:1" in unrelated
    here.invalidate_prefix("user:")
    assert "user:2" not in there
    assert there.get("x") == 3
    there.set("y", 4, tags=["g"])
    here.invalidate_tag("g")
    assert "y" not in there
    assert there.statistics().remote_invalidations == 3
    assert here.statistics().remote_invalidations == 0
    for cache in (here, there, unrelated):
        await cache.close()
    assert bus.subscribers("members") == 0


async def test_a_remote_invalidation_during_a_load_keeps_the_stale_result_out() -> None:
    clock = ManualClock()
    bus = LocalInvalidationBus()
    here, there = make(clock, bus=bus), make(clock, bus=bus)
    await there.start()

    async def load() -> str:
        await clock.sleep(1.0)
        return "stale"

    caller = asyncio.ensure_future(there.get_or_load("k", load))
    await clock.settle()
    here.invalidate("k")
    await clock.advance(1.0)
    assert await caller == "stale"
    assert "k" not in there
    await there.close()


def test_the_local_bus_rejects_unknown_kinds() -> None:
    bus = LocalInvalidationBus()
    seen: list[Invalidation] = []
    unsubscribe = bus.subscribe("c", seen.append)
    with pytest.raises(ValueError, match="kind"):
        bus.publish("c", "everything", "x")  # type: ignore[arg-type]
    bus.publish("c", "key", "k", origin="o")
    assert seen == [Invalidation("c", "key", "k", "o")]
    unsubscribe()
    unsubscribe()  # twice is harmless
    bus.publish("c", "key", "k")
    assert len(seen) == 1


def test_the_entry_time_is_infinite_without_a_ttl() -> None:
    cache = make(ManualClock(), ttl=None)
    cache.set("k", 1)
    assert cache._store["k"].expires == math.inf


def test_the_public_names_stay_what_the_docs_promise() -> None:
    import steadybot
    import steadybot.cache

    assert steadybot.cache.__all__ == [
        "BoundedCache",
        "CacheMiss",
        "CacheStatistics",
        "Invalidation",
        "InvalidationBus",
        "InvalidationKind",
        "InvalidationListener",
        "LocalInvalidationBus",
        "RedisInvalidationBus",
    ]
    assert {"BoundedCache", "CacheMiss", "CacheStatistics"} <= set(steadybot.__all__)
