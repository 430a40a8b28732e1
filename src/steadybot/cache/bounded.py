"""A bounded TTL/LRU cache whose entries cannot vanish while an operation uses them.

The production story: a member cache with a size limit evicted a member in the middle
of an operation, and the next Discord call failed with "Supplied parameter is not a
User nor a Role"; elsewhere, per-user maps grew until the process died. This cache is
bounded in size and time, and an entry *in use* stays put until it is released.

What cachetools gives (:mod:`steadybot.cache._store`): LRU order, the size bound,
per-entry expiry on the injected clock, lazy removal of expired entries on writes.
What we add, and why cachetools alone does not do it:

- **Pinning.** ``async with cache.pinned(key) as value:`` moves the entry *out* of the
  LRU structure into a side map for as long as someone holds it (a re-entrant count).
  A pinned entry is never evicted by size nor expired by TTL; when the last holder
  leaves it goes back in as the most recently used (and is dropped if its TTL passed
  meanwhile). Moving it aside, rather than refusing to evict it, keeps cachetools'
  bound honest without hacks: at any moment ``len(cache) <= max_size + pinned``, and
  ``pinned`` is bounded by the operations running at once.
- **Tags and prefixes.** ``set(key, value, tags=[...])``; ``invalidate_tag(tag)`` and
  ``invalidate_prefix(prefix)`` drop every matching entry. The tag → keys index loses a
  key whenever its entry leaves, by eviction, expiry, invalidation or overwrite (the
  classic leak of tag indexes), so its size is bounded by the cache's.
- **Single flight.** ``get_or_load`` runs ``load`` once for concurrent misses of one
  key; every caller gets its result or its exception, and a failure is not cached. The
  first caller runs the load (no task per miss: this is the hot path); the others wait
  on a shared future, shielded, so a waiter that is cancelled cancels nobody else, and
  if the *first* caller is cancelled the waiters load again. An invalidation (or a
  ``set``) of the key while it loads wins: the load's result is returned to its
  callers but not stored, so a cache never re-stores a value read before it was
  invalidated.
- **Invalidation across processes.** Local drops are published on an
  :class:`~steadybot.cache.bus.InvalidationBus`; other caches of the same name drop the
  same entries. Delivery is fire-and-forget, so the TTL bounds staleness.
- **Statistics** (:class:`CacheStatistics`) and a **sweeper** task on the injected
  clock that removes expired entries even when nobody writes.

Invalidating a *pinned* entry: the entry leaves the cache at once (the next ``get``
misses, ``len`` and the tag index no longer count it), the holders keep the object
they were given, and nothing is put back when they release it.

Every per-key structure exists only while it is needed: single-flight records while a
load runs, pins while held, tag index entries while a tagged entry is cached. With
distinct keys streaming through, the cache's memory stays that of ``max_size`` entries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Generic, TypeVar

from steadybot.cache._parts import Flight, Pin, TagIndex, check_ttl, clean_tags, retrieve
from steadybot.cache._store import Entry, Store
from steadybot.cache.bus import Invalidation, InvalidationBus, InvalidationKind
from steadybot.cache.statistics import CacheMiss, CacheStatistics
from steadybot.clock import Clock

if TYPE_CHECKING:
    from steadybot.config import Settings

__all__ = ["BoundedCache", "CacheMiss", "CacheStatistics"]

V = TypeVar("V")

log = logging.getLogger("steadybot.cache")

Load = Callable[[], Awaitable[V]]


class _Pinned(Generic[V]):
    """The context manager of :meth:`BoundedCache.pinned` (a class: it runs per
    operation, and a generator-based one costs twice as much)."""

    __slots__ = ("_cache", "_key", "_load", "_pin", "_tags", "_ttl")

    def __init__(
        self,
        cache: BoundedCache[V],
        key: str,
        load: Load[V] | None,
        tags: Iterable[str],
        ttl: float | None,
    ) -> None:
        self._cache = cache
        self._key = key
        self._load = load
        self._tags = tags
        self._ttl = ttl
        self._pin: Pin[V] | None = None

    async def __aenter__(self) -> V:
        if self._pin is not None:
            raise RuntimeError("a pinned() context cannot be entered twice; call pinned() again")
        self._pin = pin = await self._cache._acquire(self._key, self._load, self._tags, self._ttl)
        return pin.entry.value

    async def __aexit__(self, *exc_info: object) -> None:
        if self._pin is not None:
            self._cache._release(self._key, self._pin)


class BoundedCache(Generic[V]):
    """A bounded TTL/LRU cache with pinning, tags, single-flight loads and a bus.

    ``max_size`` bounds the unpinned entries; ``ttl`` (seconds, ``None``: no expiry) is
    the default lifetime of an entry, overridable per ``set``. ``sweep_interval`` is the
    period of the sweeper that ``start()`` runs on ``clock``.
    """

    def __init__(
        self,
        name: str,
        *,
        clock: Clock,
        max_size: int,
        ttl: float | None,
        bus: InvalidationBus | None = None,
        sweep_interval: float = 60.0,
    ) -> None:
        if not name:
            raise ValueError("a cache needs a name (the bus addresses caches by name)")
        if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 1:
            raise ValueError(f"max_size must be a positive int, not {max_size!r}")
        check_ttl(ttl)
        if not sweep_interval > 0:
            raise ValueError(f"sweep_interval must be > 0 seconds, not {sweep_interval!r}")
        self.name = name
        self.max_size = max_size
        self.ttl = ttl
        self.sweep_interval = sweep_interval
        self._clock = clock
        self._bus = bus
        self._id = uuid.uuid4().hex
        self._store: Store[V] = Store(
            max_size, clock.monotonic, on_evict=self._evicted, on_expire=self._expired
        )
        self._pins: dict[str, Pin[V]] = {}
        self._flights: dict[str, Flight[V]] = {}
        self._tags = TagIndex()
        self._sweeper: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._hits = self._misses = self._loads = self._load_failures = 0
        self._evictions = self._expirations = self._invalidations = self._remote = 0

    @classmethod
    def from_settings(
        cls,
        name: str,
        settings: Settings,
        *,
        clock: Clock,
        bus: InvalidationBus | None = None,
    ) -> BoundedCache[V]:
        """A cache with the ``STEADYBOT_CACHE_*`` defaults."""
        return cls(
            name,
            clock=clock,
            max_size=settings.cache_max_size,
            ttl=settings.cache_ttl,
            bus=bus,
            sweep_interval=settings.cache_sweep_interval,
        )

    # --- reading ----------------------------------------------------------------------

    def get(self, key: str) -> V | None:
        """The cached value, or ``None`` on a miss (an expired entry is a miss)."""
        entry = self._lookup(key)
        return None if entry is None else entry.value

    def __contains__(self, key: object) -> bool:
        """Whether ``key`` has a live entry (no statistics, no change of LRU order)."""
        return key in self._pins or key in self._store

    def __len__(self) -> int:
        """Live entries, pinned ones included (expired ones are removed first)."""
        return len(self._store) + len(self._pins)

    async def get_or_load(
        self,
        key: str,
        load: Load[V],
        *,
        tags: Iterable[str] = (),
        ttl: float | None = None,
    ) -> V:
        """The cached value, or ``await load()`` stored under ``key``.

        Concurrent misses of one key share one run of ``load``; if it raises, every
        caller gets the exception and nothing is cached.
        """
        value, _ = await self._load(key, load, tags, ttl)
        return value

    def pinned(
        self,
        key: str,
        load: Load[V] | None = None,
        *,
        tags: Iterable[str] = (),
        ttl: float | None = None,
    ) -> contextlib.AbstractAsyncContextManager[V]:
        """``async with cache.pinned(key) as value:`` holds ``key``'s entry for the
        block: no eviction, no expiry until released.

        Without a cached entry, ``load`` fills it (as in :meth:`get_or_load`); without
        ``load``, :class:`CacheMiss` is raised. Pins are counted, so nested and
        concurrent pins of one key release it when the last one leaves.
        """
        return _Pinned(self, key, load, tags, ttl)

    # --- writing ----------------------------------------------------------------------

    def set(
        self, key: str, value: V, *, tags: Iterable[str] = (), ttl: float | None = None
    ) -> None:
        """Store ``value``; ``ttl`` overrides the cache's for this entry.

        A load of ``key`` under way will not overwrite it. Setting a pinned key
        replaces the pinned entry (its holders keep the object they were given).
        """
        entry = self._entry(value, clean_tags(tags), ttl)
        self._detach_flight(key)
        self._put(key, entry)

    def invalidate(self, key: str) -> bool:
        """Drop ``key`` here and, through the bus, in every process; whether it was here."""
        dropped = self._drop(key)
        self._detach_flight(key)
        self._publish("key", key)
        return dropped

    def invalidate_prefix(self, prefix: str) -> int:
        """Drop every key starting with ``prefix`` (``""``: all) here and everywhere;
        how many were here. Scans the cache: O(size)."""
        dropped = self._drop_prefix(prefix)
        self._publish("prefix", prefix)
        return dropped

    def invalidate_tag(self, tag: str) -> int:
        """Drop every entry tagged ``tag`` here and everywhere; how many were here."""
        dropped = self._drop_tag(tag)
        self._publish("tag", tag)
        return dropped

    def sweep(self) -> int:
        """Drop the expired entries now; how many. (Pinned entries do not expire.)"""
        return len(self._store.expire())

    # --- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        """Start the sweeper and subscribe to the bus. Starting twice changes nothing."""
        if self._sweeper is not None:
            return
        self._sweeper = asyncio.create_task(self._sweep_forever(), name=f"cache-sweep:{self.name}")
        if self._bus is not None:
            self._unsubscribe = self._bus.subscribe(self.name, self._received)

    async def close(self) -> None:
        """Stop the sweeper and leave the bus. (Loads under way belong to their
        callers and finish normally.)"""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        sweeper, self._sweeper = self._sweeper, None
        if sweeper is not None:
            sweeper.cancel()
            await asyncio.gather(sweeper, return_exceptions=True)

    @property
    def running(self) -> bool:
        """Whether the sweeper runs (between ``start()`` and ``close()``)."""
        return self._sweeper is not None and not self._sweeper.done()

    def statistics(self) -> CacheStatistics:
        size = len(self)  # first: it removes expired entries, which the counters count
        return CacheStatistics(
            name=self.name,
            hits=self._hits,
            misses=self._misses,
            loads=self._loads,
            load_failures=self._load_failures,
            evictions=self._evictions,
            expirations=self._expirations,
            invalidations=self._invalidations,
            remote_invalidations=self._remote,
            size=size,
            pinned=len(self._pins),
            loading=len(self._flights),
            tags=len(self._tags),
            max_size=self.max_size,
        )

    def __repr__(self) -> str:
        return f"<BoundedCache {self.name!r} size={len(self)} max_size={self.max_size}>"

    # --- internals: lookup and load ----------------------------------------------------

    def _lookup(self, key: str) -> Entry[V] | None:
        pin = self._pins.get(key)
        if pin is not None:
            self._hits += 1
            return pin.entry
        try:
            entry = self._store[key]  # refreshes the LRU position
        except KeyError:
            self._misses += 1
            return None
        self._hits += 1
        return entry

    async def _load(
        self, key: str, load: Load[V], tags: Iterable[str], ttl: float | None, *, pin: bool = False
    ) -> tuple[V, bool]:
        """``(value, current)``: ``current`` is false when the key was invalidated (or
        set) while the value loaded, so it must not be pinned into the cache."""
        while True:
            entry = self._lookup(key)
            if entry is not None:
                return entry.value, True
            flight = self._flights.get(key)
            if flight is None:
                return await self._lead(key, load, clean_tags(tags), ttl, pin)
            if flight.future is None:
                flight.future = asyncio.get_running_loop().create_future()
                flight.future.add_done_callback(retrieve)
            try:
                # shield: a joiner that is cancelled must not cancel the shared outcome
                value = await asyncio.shield(flight.future)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if flight.future.cancelled() and task is not None and not task.cancelling():
                    continue  # the leader was cancelled, not us: load again
                raise
            return value, not flight.invalidated

    async def _lead(
        self, key: str, load: Load[V], tags: tuple[str, ...], ttl: float | None, pin: bool
    ) -> tuple[V, bool]:
        # The first caller runs the load itself (no task per miss: this is the hot
        # path); joiners wait on the flight's future.
        check_ttl(ttl)  # bad input fails before the load runs
        flight: Flight[V] = Flight(tags)
        self._flights[key] = flight
        self._loads += 1
        try:
            value = await load()
        except BaseException as exc:
            self._load_failures += 1
            self._end_flight(key, flight)
            if flight.future is not None:
                if isinstance(exc, asyncio.CancelledError):
                    flight.future.cancel()
                else:
                    flight.future.set_exception(exc)
            raise
        self._end_flight(key, flight)
        if not flight.invalidated:
            entry = self._entry(value, tags, ttl)
            if pin and key not in self._pins:
                self._pin_new(key, entry)  # straight into the pins: no trip through the LRU
            else:
                self._put(key, entry)
        if flight.future is not None:
            flight.future.set_result(value)
        return value, not flight.invalidated

    def _pin_new(self, key: str, entry: Entry[V]) -> None:
        old = self._pop_live(key)
        if old is not None:
            self._unindex(key, old)
        self._pins[key] = Pin(entry)
        self._index(key, entry)

    def _end_flight(self, key: str, flight: Flight[V]) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]

    def _detach_flight(self, key: str) -> None:
        flight = self._flights.pop(key, None)
        if flight is not None:
            flight.invalidated = True

    # --- internals: pins ----------------------------------------------------------------

    async def _acquire(
        self, key: str, load: Load[V] | None, tags: Iterable[str], ttl: float | None
    ) -> Pin[V]:
        pin = self._pin_cached(key)
        if pin is None:
            if load is None:
                self._misses += 1
                raise CacheMiss(self.name, key)
            value, current = await self._load(key, load, tags, ttl, pin=True)
            pin = self._pin_loaded(key, value, current, tags, ttl)
        pin.count += 1
        return pin

    def _pin_cached(self, key: str) -> Pin[V] | None:
        pin = self._pins.get(key)
        if pin is not None:
            self._hits += 1
            return pin
        entry = self._pop_live(key)
        if entry is None:
            return None  # the load path counts the miss
        self._hits += 1
        pin = self._pins[key] = Pin(entry)
        return pin

    def _pin_loaded(
        self, key: str, value: V, current: bool, tags: Iterable[str], ttl: float | None
    ) -> Pin[V]:
        pin = self._pins.get(key)
        if pin is not None:
            return pin  # pinned by someone else while we waited: share their entry
        entry = self._pop_live(key)
        if entry is None:
            entry = self._entry(value, clean_tags(tags), ttl)
            if not current:
                return Pin(entry)  # invalidated while loading: the holder's alone
            self._index(key, entry)  # evicted or expired between load and pin
        pin = self._pins[key] = Pin(entry)
        return pin

    def _release(self, key: str, pin: Pin[V]) -> None:
        pin.count -= 1
        if pin.count > 0 or self._pins.get(key) is not pin:
            return  # still held, or invalidated (or never in the cache): nothing to put back
        del self._pins[key]
        entry = pin.entry
        if entry.expires <= self._clock.monotonic():
            self._expired(key, entry)
            return
        self._store[key] = entry  # back as the most recently used; may evict the LRU

    def _pop_live(self, key: str) -> Entry[V] | None:
        store = self._store
        with store.timer:
            # Expired entries leave (unindexed) first, so none of this key lingers to be
            # unindexed later, after a new entry of the key has been indexed.
            store.expire()
            try:
                return store.pop(key)
            except KeyError:
                return None

    # --- internals: writes and drops ---------------------------------------------------

    def _entry(self, value: V, tags: tuple[str, ...], ttl: float | None) -> Entry[V]:
        check_ttl(ttl)
        lifetime = self.ttl if ttl is None else ttl
        expires = math.inf if lifetime is None else self._clock.monotonic() + lifetime
        return Entry(value, tags, expires)

    def _put(self, key: str, entry: Entry[V]) -> None:
        pin = self._pins.get(key)
        if pin is not None:
            self._unindex(key, pin.entry)
            pin.entry = entry
            self._index(key, entry)
            return
        with self._store.timer:  # one frozen "now" for the expiry pass and the write
            old = self._pop_live(key)
            if old is not None:
                self._unindex(key, old)
            self._store[key] = entry
        self._index(key, entry)

    def _drop(self, key: str) -> bool:
        pin = self._pins.pop(key, None)
        entry = pin.entry if pin is not None else self._pop_live(key)
        if entry is None:
            return False
        self._invalidations += 1
        self._unindex(key, entry)
        return True

    def _drop_prefix(self, prefix: str) -> int:
        for key in [key for key in self._flights if key.startswith(prefix)]:
            self._detach_flight(key)
        keys = [key for key in self._pins if key.startswith(prefix)]
        keys += [key for key in self._store if key.startswith(prefix)]
        return sum(self._drop(key) for key in keys)

    def _drop_tag(self, tag: str) -> int:
        for key in [key for key, flight in self._flights.items() if tag in flight.tags]:
            self._detach_flight(key)
        return sum(self._drop(key) for key in self._tags.keys(tag))

    def _evicted(self, key: str, entry: Entry[V]) -> None:
        self._evictions += 1
        self._unindex(key, entry)

    def _expired(self, key: str, entry: Entry[V]) -> None:
        self._expirations += 1
        self._unindex(key, entry)

    def _index(self, key: str, entry: Entry[V]) -> None:
        self._tags.add(key, entry.tags)

    def _unindex(self, key: str, entry: Entry[V]) -> None:
        self._tags.remove(key, entry.tags)

    # --- internals: bus and sweeper ------------------------------------------------------

    def _publish(self, kind: InvalidationKind, value: str) -> None:
        if self._bus is not None:
            self._bus.publish(self.name, kind, value, origin=self._id)

    def _received(self, message: Invalidation) -> None:
        if message.origin == self._id or message.cache != self.name:
            return
        self._remote += 1
        if message.kind == "key":
            self._drop(message.value)
            self._detach_flight(message.value)
        elif message.kind == "prefix":
            self._drop_prefix(message.value)
        else:
            self._drop_tag(message.value)

    async def _sweep_forever(self) -> None:
        while True:
            await self._clock.sleep(self.sweep_interval)
            swept = self.sweep()
            if swept:
                log.debug("cache %s: swept %d expired entries", self.name, swept)
