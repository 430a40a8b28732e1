"""Keyed locks shared by every process on one Redis: owner token, TTL, renewal, fences.

The theory, in the order things happen:

- **Acquire** is one Lua script: ``SET lock:{key} {token} NX PX {ttl}`` and, only if
  that set the key, ``INCR fence``. The token is random per acquisition, so only the
  holder can release or renew; the fence comes from *one* counter for the namespace,
  so fences grow across keys and processes and a store can order every writer.
- **Waiting** for a held key polls: a jittered pause of up to ``poll`` seconds on the
  injected clock between tries, until ``timeout``. Pub/sub or keyspace notifications
  would wake waiters sooner, but need a connection per waiter (or a dispatcher) and
  config on the server, and they still need a poll for holders that died (their key
  *expires*, it is not released). Waiters of one key *in one process* queue on an
  in-process :class:`~steadybot.coordination.keyed.KeyedLock` first, so only the head of
  that queue polls Redis, and they get the key in arrival order; across processes the
  order is whoever polls first after the release (not FIFO).
- **Holding**: a renewal task extends the TTL every ``renew_interval`` (``ttl / 3`` by
  default) with a compare-and-``PEXPIRE`` script. If the key no longer holds our token
  (the TTL ran out during a long pause, a network split, a Redis failover), the lease
  is marked :attr:`RedisLease.lost`, a warning is logged and counted; if Redis does not
  answer, renewal retries on the next tick and declares the lease lost once a whole
  TTL has passed without a successful renewal. The holder sees ``lease.lost`` (or
  ``lease.check()`` raises :class:`~steadybot.coordination.contracts.LockLost`).
- **Release** is a compare-and-delete script: a lock that expired and was taken by
  another process is never deleted by its old holder. A release that fails (Redis
  down) is logged: the TTL frees the key.

Why Redis locks cannot be the whole answer: a holder can be paused (GC, a slow disk,
a stopped VM) past its TTL and wake up believing it still holds the lock. So these
locks make duplicate work *rare* (efficiency); the store makes it *impossible*
(correctness) with unique keys, version checks, or by refusing a write whose fence is
older than the last one it saw. docs/coordination.md shows how.

Keys (under the namespace, ``{redis_prefix}:co`` for a bot): ``lock:{key}`` (with a
TTL: gone when unused) and ``fence`` (one counter, no TTL, so fences never go back).
The lock and fence keys are used by one script, so on Redis Cluster they would need a
common hash tag; steadybot targets a single Redis (or a primary with replicas).
Redis's own ``PX`` expiry runs on real time, while renewal ticks and waits run on the
injected clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
from collections.abc import AsyncIterator
from typing import Any, Final

from redis.asyncio import Redis
from redis.exceptions import RedisError

from steadybot.clock import Clock
from steadybot.coordination.contracts import CoordinationUnavailable, LockLost, LockStatistics
from steadybot.coordination.keyed import KeyedLock, LockTimeout

__all__ = ["FENCE_KEY", "LOCK_KEY", "RedisLease", "RedisLocks"]

log = logging.getLogger("steadybot.coordination")

LOCK_KEY: Final = "lock"
"""Key part of a lock: ``{namespace}:lock:{key}``."""
FENCE_KEY: Final = "fence"
"""Key of the namespace's fence counter: ``{namespace}:fence``."""

# KEYS: lock key, fence key. ARGV: token, ttl in ms. Returns the fence, or 0 when held.
_ACQUIRE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return redis.call('INCR', KEYS[2])
end
return 0
"""
# KEYS: lock key. ARGV: token. Deletes only our own lock.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
# KEYS: lock key. ARGV: token, ttl in ms. Extends only our own lock.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""


class RedisLease:
    """Holding one key's Redis lock (see the module docstring)."""

    __slots__ = ("_lost", "fence", "key", "redis_key", "token")

    def __init__(self, key: str, redis_key: str, token: str, fence: int) -> None:
        self.key = key
        self.redis_key = redis_key
        self.token = token  # the value stored under the key: proves ownership
        self.fence = fence
        self._lost = False

    @property
    def lost(self) -> bool:
        return self._lost

    def check(self) -> None:
        if self._lost:
            raise LockLost(f"lock {self.key!r} (fence {self.fence}) was lost while held")


class RedisLocks:
    """Keyed locks on Redis for every process of a bot (the :class:`Locks` contract)."""

    def __init__(
        self,
        redis: Redis,
        *,
        clock: Clock,
        namespace: str,
        ttl: float = 30.0,
        renew_interval: float | None = None,
        poll: float = 0.05,
        rng: random.Random | None = None,
        owns_client: bool = False,
    ) -> None:
        if ttl <= 0 or poll <= 0:
            raise ValueError("lock ttl and poll must be positive")
        renew = ttl / 3 if renew_interval is None else renew_interval
        if not 0 < renew < ttl:
            raise ValueError(f"lock renew interval must be in (0, ttl={ttl}); got {renew}")
        self._redis = redis
        self._clock = clock
        self._namespace = namespace
        self._ttl_ms = max(1, round(ttl * 1000))
        self._ttl = ttl
        self._renew_interval = renew
        self._poll = poll
        self._rng = rng if rng is not None else random.Random()
        self._owns_client = owns_client
        self._local: KeyedLock[str] = KeyedLock(clock)
        self._acquire_script = redis.register_script(_ACQUIRE)
        self._release_script = redis.register_script(_RELEASE)
        self._renew_script = redis.register_script(_RENEW)
        self._tasks: set[asyncio.Future[Any]] = set()  # renewals, releases after a cancel
        self._held = 0
        self._acquired = 0
        self._waited = 0
        self._timeouts = 0
        self._lost = 0

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        clock: Clock,
        namespace: str,
        ttl: float = 30.0,
        renew_interval: float | None = None,
        poll: float = 0.05,
    ) -> RedisLocks:
        """Locks on their own Redis client (closed by :meth:`close`)."""
        return cls(
            Redis.from_url(url),
            clock=clock,
            namespace=namespace,
            ttl=ttl,
            renew_interval=renew_interval,
            poll=poll,
            owns_client=True,
        )

    @property
    def redis(self) -> Redis:
        return self._redis

    @property
    def namespace(self) -> str:
        return self._namespace

    def redis_key(self, key: str) -> str:
        return f"{self._namespace}:{LOCK_KEY}:{key}"

    def active_keys(self) -> int:
        return self._local.active_keys()

    def statistics(self) -> LockStatistics:
        return LockStatistics(
            active_keys=self._local.active_keys(),
            acquired=self._acquired,
            waited=self._waited,
            timeouts=self._timeouts,
            lost=self._lost,
        )

    @contextlib.asynccontextmanager
    async def __call__(
        self, key: str, *, timeout: float | None = None
    ) -> AsyncIterator[RedisLease]:
        started = self._clock.monotonic()
        # Same-process waiters queue here (FIFO, one poller per key); a key held here is
        # busy without a round trip.
        try:
            local = self._local(key, timeout=timeout)
            await local.__aenter__()
        except LockTimeout:
            self._timeouts += 1
            raise
        try:
            remaining = None if timeout is None else timeout - (self._clock.monotonic() - started)
            lease = await self._acquire(key, remaining)
            renewal = asyncio.ensure_future(self._renew(lease))
            self._tasks.add(renewal)
            renewal.add_done_callback(self._tasks.discard)
            self._held += 1
            try:
                yield lease
            finally:
                self._held -= 1
                renewal.cancel()
                await asyncio.gather(renewal, return_exceptions=True)
                await self._release(lease)
        finally:
            await local.__aexit__(None, None, None)

    async def _acquire(self, key: str, timeout: float | None) -> RedisLease:
        redis_key = self.redis_key(key)
        token = secrets.token_hex(16)
        deadline = None if timeout is None else self._clock.monotonic() + max(0.0, timeout)
        waited = False
        while True:
            fence = await self._attempt(redis_key, token)
            if fence:
                self._acquired += 1
                return RedisLease(key, redis_key, token, fence)
            if not waited:
                waited = True
                self._waited += 1
            now = self._clock.monotonic()
            if deadline is not None and now >= deadline:
                self._timeouts += 1
                if timeout is not None and timeout <= 0:
                    raise LockTimeout(f"lock {key!r} is held")
                raise LockTimeout(f"lock {key!r} not free within {timeout:.2f}s")
            pause = self._rng.uniform(self._poll / 2, self._poll)
            if deadline is not None:
                pause = min(pause, deadline - now)
            await self._clock.sleep(pause)

    async def _attempt(self, redis_key: str, token: str) -> int:
        """One try; a try cancelled after Redis set the key still releases it."""
        attempt = asyncio.ensure_future(self._set(redis_key, token))
        try:
            return await asyncio.shield(attempt)
        except asyncio.CancelledError:
            attempt.add_done_callback(lambda done: self._release_if_won(done, redis_key, token))
            raise

    async def _set(self, redis_key: str, token: str) -> int:
        keys = [redis_key, f"{self._namespace}:{FENCE_KEY}"]
        try:
            return int(await self._acquire_script(keys=keys, args=[token, self._ttl_ms]))
        except RedisError as exc:
            raise CoordinationUnavailable(f"Redis lock unavailable: {type(exc).__name__}") from exc

    def _release_if_won(self, attempt: asyncio.Future[int], redis_key: str, token: str) -> None:
        if attempt.cancelled() or attempt.exception() is not None or not attempt.result():
            return
        task = asyncio.ensure_future(self._release_script(keys=[redis_key], args=[token]))
        self._tasks.add(task)
        task.add_done_callback(self._released_late)

    def _released_late(self, task: asyncio.Future[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("could not release a lock after a cancelled acquire; its TTL will")

    async def _renew(self, lease: RedisLease) -> None:
        last_renewed = self._clock.monotonic()
        while True:
            await self._clock.sleep(self._renew_interval)
            try:
                renewed = await self._renew_script(
                    keys=[lease.redis_key], args=[lease.token, self._ttl_ms]
                )
            except RedisError as exc:
                if self._clock.monotonic() - last_renewed < self._ttl:
                    log.warning("lock %r: renewal failed (%s); retrying", lease.key, exc)
                    continue
                renewed = 0
            if not renewed:
                self._mark_lost(lease)
                return
            last_renewed = self._clock.monotonic()

    def _mark_lost(self, lease: RedisLease) -> None:
        if lease.lost:
            return
        lease._lost = True
        self._lost += 1
        log.warning(
            "lock %r (fence %d) was lost while held: its TTL ran out; the store must refuse "
            "this holder's stale writes",
            lease.key,
            lease.fence,
        )

    async def _release(self, lease: RedisLease) -> None:
        try:
            released = await self._release_script(keys=[lease.redis_key], args=[lease.token])
        except RedisError as exc:
            log.warning("lock %r: release failed (%s); its TTL frees it", lease.key, exc)
            return
        if not released:
            self._mark_lost(lease)  # expired (and maybe taken) before we let go

    async def close(self) -> None:
        """Stop pending renewals and releases; close the Redis client if it is ours."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._owns_client:
            await self._redis.aclose()
