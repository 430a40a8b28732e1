"""The bot's named caches: made once per name, on the bot's clock, started and closed with it.

``bot.cache("board", max_size=500, ttl=30)`` returns the same
:class:`~steadybot.cache.BoundedCache` every time it is called with that name, so a
module can declare its caches at import and a handler can ask for one by name. Every
cache of a bot shares one invalidation bus: Redis pub/sub
(:class:`~steadybot.cache.RedisInvalidationBus`) when ``STEADYBOT_REDIS_URL`` is set, so
an invalidation in one process drops the entry in every process serving the bot; an
in-process bus otherwise. The bot starts the bus and the caches before it takes
interactions and closes them on shutdown; a cache first asked for after the start is
started at once. Their statistics are in the bot's metrics, labelled by cache name.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Literal

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from redis.asyncio import Redis

from steadybot.cache import (
    BoundedCache,
    CacheStatistics,
    InvalidationBus,
    LocalInvalidationBus,
    RedisInvalidationBus,
)
from steadybot.clock import Clock
from steadybot.config import Settings
from steadybot.redis_pool import redis_from_settings

__all__ = ["CacheRegistry", "TtlSetting"]

log = logging.getLogger("steadybot.cache")

TtlSetting = float | Literal["never"] | None
"""A cache's TTL in seconds; ``"never"``: no expiry; ``None``: ``STEADYBOT_CACHE_TTL``."""


class CacheRegistry:
    """Named caches sharing one invalidation bus; see the module docstring."""

    def __init__(self, settings: Settings, clock: Callable[[], Clock]) -> None:
        # A getter: caches are made on first use, on the bot's clock at that time.
        self._settings = settings
        self._clock = clock
        self._caches: dict[str, BoundedCache[Any]] = {}
        self._redis: Redis | None = None
        self.bus: InvalidationBus
        if settings.redis_url:
            self._redis = redis_from_settings(settings)
            self.bus = RedisInvalidationBus.from_settings(self._redis, settings, clock=clock())
        else:
            self.bus = LocalInvalidationBus()
        self._running = False
        self._starting: set[asyncio.Task[None]] = set()

    def get(
        self, name: str, *, max_size: int | None = None, ttl: TtlSetting = None
    ) -> BoundedCache[Any]:
        """The cache called ``name``, made on first use (later calls' sizes are ignored:
        one name, one cache)."""
        existing = self._caches.get(name)
        if existing is not None:
            return existing
        settings = self._settings
        if max_size is not None and max_size < 1:
            raise ValueError(f"cache {name!r}: max_size must be >= 1, not {max_size}")
        cache: BoundedCache[Any] = BoundedCache(
            name,
            clock=self._clock(),
            max_size=max_size if max_size is not None else settings.cache_max_size,
            ttl=None if ttl == "never" else (settings.cache_ttl if ttl is None else ttl),
            bus=self.bus,
            sweep_interval=settings.cache_sweep_interval,
        )
        self._caches[name] = cache
        if self._running:
            # BoundedCache.start() only creates its sweeper and subscribes; a task keeps
            # get() synchronous for handlers that ask for a cache by name.
            task = asyncio.ensure_future(cache.start())
            self._starting.add(task)
            task.add_done_callback(self._starting.discard)
        return cache

    def __contains__(self, name: object) -> bool:
        return name in self._caches

    async def start(self) -> None:
        """Start the bus, then every cache made so far (idempotent)."""
        if self._running:
            return
        await self.bus.start()
        for cache in self._caches.values():
            await cache.start()
        self._running = True

    async def close(self) -> None:
        """Close every cache, then the bus and its Redis connection."""
        self._running = False
        if self._starting:
            await asyncio.gather(*self._starting, return_exceptions=True)
        for cache in self._caches.values():
            await cache.close()
        await self.bus.close()
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    def statistics(self) -> Mapping[str, CacheStatistics]:
        """Each cache's statistics by name."""
        return {name: cache.statistics() for name, cache in self._caches.items()}

    def collect(self) -> Iterator[Metric]:
        """Prometheus metrics of every cache, labelled ``cache``."""
        counters = {
            "hits": "Lookups that found a live entry.",
            "misses": "Lookups that found none.",
            "loads": "Loader runs (single flight: concurrent misses share one).",
            "load_failures": "Loader runs that raised.",
            "evictions": "Entries dropped to respect max_size.",
            "expirations": "Entries dropped because their TTL passed.",
            "invalidations": "Entries dropped by invalidations, local or remote.",
        }
        gauges = {
            "size": "Live entries, pinned ones included.",
            "pinned": "Keys pinned by running operations.",
            "max_size": "The size bound of unpinned entries.",
        }
        stats = self.statistics()
        for field, text in counters.items():
            family = CounterMetricFamily(f"steadybot_cache_{field}", text, labels=["cache"])
            for name, record in stats.items():
                family.add_metric([name], getattr(record, field))
            yield family
        for field, text in gauges.items():
            gauge = GaugeMetricFamily(f"steadybot_cache_{field}", text, labels=["cache"])
            for name, record in stats.items():
                gauge.add_metric([name], getattr(record, field))
            yield gauge
