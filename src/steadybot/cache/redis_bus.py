"""Cache invalidations between processes, over Redis pub/sub.

Every process of a bot publishes and listens on one channel,
``{namespace}:cache-invalidate``; a message names the cache, the kind (key, prefix,
tag), the value and the publishing cache instance, which ignores its own echo.

Pub/sub is fire-and-forget, and that is the contract: a message published while a
process is disconnected never reaches it, and nothing is replayed. So

- a cache's **TTL is the bound on staleness** when a message is lost;
- after a *reconnection* the bus tells every subscribed cache to drop everything
  (``clear_on_reconnect``, on by default), because it cannot know what it missed; the
  cost is a burst of misses, the gain is that an outage does not stretch staleness to
  the TTL;
- ``publish`` never blocks: messages wait in a bounded queue (``max_pending``; the
  oldest is dropped and counted when it is full) for a sender task that retries with
  backoff while Redis is down.

Why our own: redis-py gives the pub/sub connection (and reconnects it quietly within
its retry policy); what to do around it — routing by cache name, skipping one's own
echo, clearing after a gap, a bounded send queue, backoff on the injected clock, one
warning per outage instead of one per failure — is ours.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import msgspec
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import RedisError

from steadybot.cache.bus import (
    Invalidation,
    InvalidationKind,
    InvalidationListener,
    Subscribers,
    check_kind,
)
from steadybot.clock import Clock, SystemClock, within
from steadybot.resilience.retry import backoff_ceiling

if TYPE_CHECKING:
    from steadybot.config import Settings

__all__ = ["INVALIDATION_CHANNEL", "InvalidationBusStatistics", "RedisInvalidationBus"]

INVALIDATION_CHANNEL: Final = "cache-invalidate"
"""The pub/sub channel under the namespace: ``{namespace}:cache-invalidate``."""

log = logging.getLogger("steadybot.cache.bus")

# What can go wrong talking to Redis: its own errors, and socket errors (TimeoutError
# is an OSError) that reach us before redis-py wraps them.
_REDIS_DOWN: Final = (RedisError, OSError)

# Seconds one read of the subscription waits (socket time, not the injected clock's);
# bounds how late a quiet reconnection by redis-py is acted on.
_POLL: Final = 1.0


class _Message(msgspec.Struct, frozen=True):
    c: str  # cache name
    k: InvalidationKind
    v: str
    o: str = ""  # origin


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(_Message).decode


@dataclass(frozen=True, slots=True)
class InvalidationBusStatistics:
    """A snapshot of one Redis invalidation bus."""

    published: int
    """Messages handed to Redis."""
    pending: int
    """Messages waiting to be sent."""
    dropped: int
    """Messages dropped unsent because the queue was full."""
    received: int
    """Messages received and delivered to subscribers."""
    malformed: int
    """Messages on the channel that were not ours to read."""
    reconnects: int
    """Times the subscription came back after losing its connection."""
    subscribed: bool
    """Whether the listener is subscribed right now."""


class RedisInvalidationBus:
    """An :class:`~steadybot.cache.bus.InvalidationBus` on Redis pub/sub.

    ``redis`` is the caller's client (the bus neither creates nor closes it); the
    subscription takes one connection of its pool. Call :meth:`start` before use and
    :meth:`close` at shutdown.
    """

    def __init__(
        self,
        redis: Redis,
        namespace: str,
        *,
        clock: Clock | None = None,
        max_pending: int = 10_000,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        close_timeout: float = 2.0,
        clear_on_reconnect: bool = True,
    ) -> None:
        if not namespace:
            raise ValueError("a Redis invalidation bus needs a namespace")
        if max_pending < 1:
            raise ValueError(f"max_pending must be >= 1, not {max_pending!r}")
        if not 0 < backoff_base <= backoff_cap:
            raise ValueError("backoff needs 0 < backoff_base <= backoff_cap")
        if close_timeout < 0:
            raise ValueError(f"close_timeout must be >= 0, not {close_timeout!r}")
        self.channel = f"{namespace}:{INVALIDATION_CHANNEL}"
        self._redis = redis
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._max_pending = max_pending
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._close_timeout = close_timeout
        self._clear_on_reconnect = clear_on_reconnect
        self._listeners = Subscribers()
        self._pending: collections.deque[bytes] = collections.deque()
        self._pubsub: PubSub | None = None
        self._listener: asyncio.Task[None] | None = None
        self._sender: asyncio.Task[None] | None = None
        # Events belong to a running loop: made in start().
        self._wake: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None
        self._published = self._dropped = self._received = 0
        self._malformed = self._reconnects = 0
        self._down = False  # between losing Redis and subscribing again
        self._gap = False  # redis-py reconnected on its own: messages may have been lost

    @classmethod
    def from_settings(
        cls, redis: Redis, settings: Settings, *, clock: Clock | None = None
    ) -> RedisInvalidationBus:
        """A bus under ``{STEADYBOT_REDIS_PREFIX}`` with the ``STEADYBOT_CACHE_BUS_*``
        settings."""
        return cls(
            redis,
            settings.redis_prefix,
            clock=clock,
            max_pending=settings.cache_bus_max_pending,
            backoff_base=settings.cache_bus_backoff_base,
            backoff_cap=settings.cache_bus_backoff_cap,
            close_timeout=settings.cache_bus_close_timeout,
            clear_on_reconnect=settings.cache_bus_clear_on_reconnect,
        )

    # --- the InvalidationBus protocol ---------------------------------------------------

    def publish(
        self, cache_name: str, kind: InvalidationKind, value: str, *, origin: str = ""
    ) -> None:
        check_kind(kind)
        if len(self._pending) >= self._max_pending:
            self._pending.popleft()  # the oldest goes: the TTL bounds what it would have fixed
            self._dropped += 1
        self._pending.append(_encode(_Message(cache_name, kind, value, origin)))
        if self._idle is not None and self._wake is not None:
            self._idle.clear()
            self._wake.set()

    def subscribe(self, cache_name: str, listener: InvalidationListener) -> Callable[[], None]:
        return self._listeners.subscribe(cache_name, listener)

    async def start(self) -> None:
        """Subscribe (if Redis answers; otherwise keep trying in the background) and
        start the listener and sender tasks. Starting twice changes nothing."""
        if self._listener is not None:
            return
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        if self._pending:
            self._wake.set()
        else:
            self._idle.set()
        try:
            await self._subscribe()
        except _REDIS_DOWN as exc:
            self._lost(exc)
        self._listener = asyncio.create_task(self._listen_forever(), name="cache-bus-listen")
        self._sender = asyncio.create_task(self._send_forever(), name="cache-bus-send")

    async def flush(self) -> None:
        """Wait until every message published so far has been handed to Redis."""
        if self._idle is None:
            raise RuntimeError("the bus is not started: nothing sends its messages")
        await self._idle.wait()

    async def close(self) -> None:
        """Send what is pending (for at most ``close_timeout``), then stop."""
        if self._listener is None:
            return
        if self._pending and self._close_timeout > 0:
            try:
                await within(self._clock, self.flush(), self._close_timeout)
            except TimeoutError:
                log.warning(
                    "cache invalidation bus: %d messages unsent at close", len(self._pending)
                )
        tasks = [task for task in (self._listener, self._sender) if task is not None]
        self._listener = self._sender = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._unsubscribe()

    def statistics(self) -> InvalidationBusStatistics:
        return InvalidationBusStatistics(
            published=self._published,
            pending=len(self._pending),
            dropped=self._dropped,
            received=self._received,
            malformed=self._malformed,
            reconnects=self._reconnects,
            subscribed=self._pubsub is not None,
        )

    # --- listening -------------------------------------------------------------------------

    async def _subscribe(self) -> PubSub:
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self.channel)
        except BaseException:
            await pubsub.aclose()  # type: ignore[no-untyped-call]
            raise
        connection = _connection(pubsub)
        if connection is not None:
            # redis-py reconnects and resubscribes quietly within its retry policy;
            # we still want to know, because messages were lost in the gap.
            connection.register_connect_callback(self._reconnected)  # type: ignore[no-untyped-call]
        self._pubsub = pubsub
        self._gap = False
        if self._down:
            self._down = False
            self._back()
        return pubsub

    async def _unsubscribe(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is None:
            return
        connection = _connection(pubsub)
        if connection is not None:
            # The connection goes back to the pool: our callback must not go with it.
            connection.deregister_connect_callback(self._reconnected)  # type: ignore[no-untyped-call]
        with contextlib.suppress(*_REDIS_DOWN):  # a connection already gone is closed enough
            await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _listen_forever(self) -> None:
        failures = 0
        while True:
            try:
                pubsub = self._pubsub
                if pubsub is None:
                    pubsub = await self._subscribe()
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=_POLL)
            except _REDIS_DOWN as exc:
                failures += 1
                self._lost(exc)
                await self._unsubscribe()
                await self._clock.sleep(self._backoff(failures))
                continue
            failures = 0
            if self._gap:  # redis-py reconnected quietly, and reading works again
                self._gap = False
                self._back()
            if message is not None and message.get("type") == "message":
                self._deliver(message["data"])

    def _reconnected(self, connection: object) -> None:
        # Called inside redis-py's reconnect, which may still fail: only note the gap;
        # the listener acts on it once a read succeeds.
        self._gap = True

    def _lost(self, exc: BaseException) -> None:
        if self._down:
            return  # one warning per outage, not one per attempt
        self._down = True
        log.warning(
            "cache invalidation bus lost Redis (%s); reconnecting with backoff, caches "
            "rely on their TTL meanwhile",
            type(exc).__name__,
        )

    def _back(self) -> None:
        self._reconnects += 1
        log.info("cache invalidation bus: subscribed again after losing the connection")
        if self._clear_on_reconnect:
            for cache_name in self._listeners.names():
                self._dispatch(Invalidation(cache_name, "prefix", ""))

    def _deliver(self, data: bytes | str) -> None:
        try:
            message = _decode(data)
        except msgspec.DecodeError:
            self._malformed += 1
            if self._malformed == 1:
                log.warning("cache invalidation bus: ignoring a message it cannot read")
            return
        self._received += 1
        self._dispatch(Invalidation(message.c, message.k, message.v, message.o))

    def _dispatch(self, message: Invalidation) -> None:
        for listener in self._listeners.of(message.cache):
            try:
                listener(message)
            except Exception:
                log.exception("cache invalidation listener of %r failed", message.cache)

    # --- sending ---------------------------------------------------------------------------

    async def _send_forever(self) -> None:
        assert self._wake is not None
        assert self._idle is not None
        failures = 0
        while True:
            if not self._pending:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            data = self._pending[0]
            try:
                await self._redis.publish(self.channel, data)
            except _REDIS_DOWN as exc:
                failures += 1
                if failures == 1:
                    log.warning(
                        "cache invalidation bus cannot publish (%s); retrying with backoff",
                        type(exc).__name__,
                    )
                await self._clock.sleep(self._backoff(failures))
                continue
            if failures:
                log.info("cache invalidation bus: publishing again")
                failures = 0
            # The queue may have dropped its oldest while we sent: only pop what we sent.
            if self._pending and self._pending[0] is data:
                self._pending.popleft()
            self._published += 1

    def _backoff(self, failures: int) -> float:
        ceiling = backoff_ceiling(failures - 1, base=self._backoff_base, cap=self._backoff_cap)
        return ceiling / 2 + random.uniform(0, ceiling / 2)  # jitter: processes spread out


def _connection(pubsub: PubSub) -> AbstractConnection | None:
    # redis-py declares PubSub.connection as always None; it is set once subscribed.
    connection: AbstractConnection | None = pubsub.connection
    return connection
