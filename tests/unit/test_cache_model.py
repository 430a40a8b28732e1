"""BoundedCache against a plain model, by hypothesis: any sequence of sets, gets, pins,
releases, invalidations, sweeps and clock moves keeps the size bound, never loses a
pinned entry, serves exactly what the model serves, and counts the same statistics."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from steadybot.cache import BoundedCache, CacheMiss
from steadybot.clock import Timer

T = TypeVar("T")
KEYS = st.sampled_from(["a", "b", "c", "d", "e", "f"])
TAGS = st.lists(st.sampled_from(["x", "y", "z"]), max_size=2, unique=True)
TTLS = st.sampled_from([None, 1.0, 3.0])


class _Time:
    """Just enough of a Clock for synchronous driving: the cache reads monotonic()."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:  # pragma: no cover - no sweeper here
        raise AssertionError("the model test does not start the sweeper")

    def call_later(self, seconds: float, callback: Callable[[], None]) -> Timer:  # pragma: no cover
        raise AssertionError("not used")


def run_now(awaitable: Awaitable[T]) -> T:
    """Run an awaitable that never suspends (pinning a cached key does not)."""
    coroutine: Coroutine[Any, Any, T] = awaitable  # type: ignore[assignment]
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    raise AssertionError("suspended: this path should not wait")


@dataclass
class _MEntry:
    value: int
    tags: tuple[str, ...]
    expires: float


@dataclass
class _MPin:
    entry: _MEntry
    count: int = 0


@dataclass
class Model:
    max_size: int
    ttl: float | None
    now: float = 0.0
    lru: dict[str, _MEntry] = field(default_factory=dict)  # insertion order = LRU order
    pins: dict[str, _MPin] = field(default_factory=dict)
    hits: int = 0
    misses: int = 0
    evictions: int = 0
    expirations: int = 0
    invalidations: int = 0

    def live(self, entry: _MEntry) -> bool:
        return self.now < entry.expires

    def expire(self) -> None:
        for key in [k for k, e in self.lru.items() if not self.live(e)]:
            del self.lru[key]
            self.expirations += 1

    def insert(self, key: str, entry: _MEntry) -> None:
        self.expire()
        self.lru.pop(key, None)
        if len(self.lru) >= self.max_size:
            del self.lru[next(iter(self.lru))]
            self.evictions += 1
        self.lru[key] = entry

    def entry(self, value: int, tags: list[str], ttl: float | None) -> _MEntry:
        lifetime = self.ttl if ttl is None else ttl
        return _MEntry(value, tuple(tags), self.now + lifetime if lifetime else float("inf"))


class CacheMachine(RuleBasedStateMachine):
    @initialize(max_size=st.integers(1, 4), ttl=st.sampled_from([None, 2.0, 5.0]))
    def setup(self, max_size: int, ttl: float | None) -> None:
        self.time = _Time()
        self.cache: BoundedCache[int] = BoundedCache(
            "model", clock=self.time, max_size=max_size, ttl=ttl
        )
        self.model = Model(max_size, ttl)
        self.counter = 0
        # Held pins: (key, the model's pin record, the cache's context manager, value)
        self.held: list[tuple[str, _MPin, contextlib.AbstractAsyncContextManager[int], int]] = []

    @rule(key=KEYS, tags=TAGS, ttl=TTLS)
    def set(self, key: str, tags: list[str], ttl: float | None) -> None:
        self.counter += 1
        self.cache.set(key, self.counter, tags=tags, ttl=ttl)
        entry = self.model.entry(self.counter, tags, ttl)
        pin = self.model.pins.get(key)
        if pin is not None:
            pin.entry = entry
        else:
            self.model.insert(key, entry)

    @rule(key=KEYS)
    def get(self, key: str) -> None:
        got = self.cache.get(key)
        model = self.model
        pin = model.pins.get(key)
        if pin is not None:
            expected: int | None = pin.entry.value
        elif key in model.lru and model.live(model.lru[key]):
            expected = model.lru[key].value
            model.lru[key] = model.lru.pop(key)  # most recently used
        else:
            expected = None
        if expected is None:
            model.misses += 1
        else:
            model.hits += 1
        assert got == expected

    @rule(key=KEYS)
    def pin(self, key: str) -> None:
        model = self.model
        manager = self.cache.pinned(key)
        try:
            value = run_now(manager.__aenter__())
        except CacheMiss:
            model.misses += 1
            model.expire()
            assert key not in model.pins
            assert key not in model.lru or not model.live(model.lru[key])
            return
        model.hits += 1
        pin = model.pins.get(key)
        if pin is None:
            assert model.live(model.lru[key])
            model.expire()
            pin = model.pins[key] = _MPin(model.lru.pop(key))
        pin.count += 1
        assert value == pin.entry.value
        self.held.append((key, pin, manager, value))

    @precondition(lambda self: bool(self.held))
    @rule(index=st.integers(0, 100))
    def release(self, index: int) -> None:
        key, pin, manager, _ = self.held.pop(index % len(self.held))
        run_now(manager.__aexit__(None, None, None))
        model = self.model
        pin.count -= 1
        if pin.count == 0 and model.pins.get(key) is pin:
            del model.pins[key]
            if model.live(pin.entry):
                model.insert(key, pin.entry)
            else:
                model.expirations += 1

    @rule(key=KEYS)
    def invalidate(self, key: str) -> None:
        assert self.cache.invalidate(key) == self._drop(key)

    @rule(tag=st.sampled_from(["x", "y", "z"]))
    def invalidate_tag(self, tag: str) -> None:
        model = self.model
        keys = [k for k, p in model.pins.items() if tag in p.entry.tags]
        keys += [k for k, e in model.lru.items() if tag in e.tags and model.live(e)]
        assert self.cache.invalidate_tag(tag) == sum(self._drop(k) for k in keys)

    @rule(prefix=st.sampled_from(["", "a", "b"]))
    def invalidate_prefix(self, prefix: str) -> None:
        keys = [k for k in [*self.model.pins, *self.model.lru] if k.startswith(prefix)]
        assert self.cache.invalidate_prefix(prefix) == sum(self._drop(k) for k in keys)

    @rule(seconds=st.sampled_from([0.5, 1.0, 2.0, 4.0]))
    def advance(self, seconds: float) -> None:
        self.time.now += seconds
        self.model.now = self.time.now

    @rule()
    def sweep(self) -> None:
        before = self.model.expirations
        self.model.expire()
        assert self.cache.sweep() == self.model.expirations - before

    def _drop(self, key: str) -> bool:
        model = self.model
        if model.pins.pop(key, None) is not None:
            model.invalidations += 1
            return True
        entry = model.lru.get(key)
        if entry is None or not model.live(entry):
            return False
        del model.lru[key]
        model.invalidations += 1
        return True

    @invariant()
    def agrees_with_the_model(self) -> None:
        # len() and statistics() expire first, as the model does here.
        self.model.expire()
        stats = self.cache.statistics()
        model = self.model
        assert stats.size == len(model.lru) + len(model.pins)
        assert stats.size - stats.pinned <= model.max_size  # the bound, pinned on top
        assert stats.pinned == len(model.pins)
        for key, pin in model.pins.items():
            assert key in self.cache  # a pinned entry is never evicted nor expired
            assert self.cache._pins[key].entry.value == pin.entry.value
        assert set(self.cache._store) == set(model.lru)  # the same keys were evicted
        tags = {
            t
            for e in [*model.lru.values(), *(p.entry for p in model.pins.values())]
            for t in e.tags
        }
        assert self.cache._tags.tags() == tags  # no dangling tag, none missing
        assert (stats.hits, stats.misses) == (model.hits, model.misses)
        assert (stats.evictions, stats.expirations, stats.invalidations) == (
            model.evictions,
            model.expirations,
            model.invalidations,
        )

    def teardown(self) -> None:
        while self.held:
            _, _, manager, _ = self.held.pop()
            run_now(manager.__aexit__(None, None, None))


CacheMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)
test_cache_agrees_with_its_model = CacheMachine.TestCase
