"""The bucket manager: Discord's per-route buckets and the global limit, obeyed before sending.

Why our own: Discord's limits are undocumented and change; the client must learn them
from the ``X-RateLimit-*`` headers (facts file, "Rate limits") and no library exposes a
limiter we can drive with an injected clock, deadlines and a shared store.

How a request gets its permit:

1. **Route → bucket.** Routes that share a limit answer with the same
   ``X-RateLimit-Bucket``; the manager remembers route → bucket hash and, per hash, the
   limit and the window (the largest ``Reset-After`` seen). A bucket is split by the
   route's top-level resource (channel, guild, webhook id + token), so the slot key is
   ``hash:major``. A route answered 2xx without bucket headers is not limited.
2. **Unknown buckets are probed one request at a time**: until a route's bucket is
   known, requests on one (route, resource) wait for the first one's answer.
3. **Slots.** A known bucket allows ``limit`` sends per ``window + margin`` seconds on
   a sliding log (:mod:`steadybot.rest.slots` says why that is safe), and every request
   that is not an interaction callback or webhook-token route also takes a slot of the
   proactive **global limit** (``global_per_second`` per ``1 + margin`` seconds). Slots
   are taken all at once or not at all, so waiting for the global limit never holds a
   bucket slot. Requests on one slot key wait in FIFO order.
4. **What the server says wins.** An answer with ``Remaining: 0`` blocks its key until
   the reset; a 429 of scope ``user`` blocks its bucket and one of scope ``global``
   every non-exempt route, for ``retry_after``. A 429 of scope ``shared`` (a limit on
   the resource, shared with other bots) blocks nothing of ours.

No wait goes past the call's deadline: :class:`~steadybot.errors.RateLimitWait` is
raised at once instead, and nothing is sent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Mapping
from typing import Final

from steadybot.clock import Clock, within
from steadybot.coordination.keyed import PriorityGate
from steadybot.errors import RateLimited, RateLimitWait
from steadybot.rest.ratelimit import Permit, parse_bucket_headers
from steadybot.rest.routes import CompiledRoute
from steadybot.rest.slots import Claim, LocalSlotStore, SlotStore

__all__ = ["GLOBAL_KEY", "BucketManager"]

log = logging.getLogger("steadybot.rest.ratelimit")

GLOBAL_KEY: Final = "global"
_NOT_LIMITED: Final = ""  # the bucket "hash" of a route that answered without bucket headers


class _Queue:
    """FIFO order for the requests waiting on one key; gone when nobody uses it."""

    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


class BucketManager:
    """Per-route buckets, probing, the global limit and 429 scopes, for one bot token."""

    def __init__(
        self,
        *,
        clock: Clock,
        store: SlotStore | None = None,
        global_per_second: int = 50,
        margin: float = 0.05,
        probe_ttl: float = 10.0,
        probe_poll: float = 0.02,
    ) -> None:
        self._clock = clock
        self._store: SlotStore = store if store is not None else LocalSlotStore(clock)
        self._global = Claim(GLOBAL_KEY, global_per_second, 1.0 + margin)
        self._margin = margin
        self._route_buckets: dict[str, str] = {}  # "METHOD template" → bucket hash
        self._limits: dict[str, tuple[int, float]] = {}  # bucket hash → (limit, window)
        self._queues: dict[str, _Queue] = {}
        self._global_gate = PriorityGate()
        self._probe_ttl = probe_ttl  # a crashed process's probe claim lapses after this
        self._probe_poll = probe_poll  # how often to look whether another's probe answered
        self._background: set[asyncio.Future[None]] = set()
        self.waits = 0  # requests that waited (for a slot, a probe's answer or their turn)

    @property
    def store(self) -> SlotStore:
        return self._store

    def bucket_of(self, route: CompiledRoute) -> str | None:
        """The learned bucket hash of ``route`` ("" not limited, None not known yet)."""
        return self._route_buckets.get(route.route.key)

    def limits(self, bucket: str) -> tuple[int, float] | None:
        """The learned ``(limit, window seconds)`` of a bucket hash."""
        return self._limits.get(bucket)

    @property
    def queued_keys(self) -> int:
        """Keys that have requests waiting or being admitted right now."""
        return len(self._queues)

    # --- before sending ---------------------------------------------------------------

    async def acquire(self, route: CompiledRoute, *, deadline: float | None) -> Permit:
        arrived = self._clock.monotonic()
        permit = await self._acquire(route, deadline)
        if self._clock.monotonic() > arrived:
            self.waits += 1
        return permit

    async def _acquire(self, route: CompiledRoute, deadline: float | None) -> Permit:
        route_key = route.route.key
        bucket = self._route_buckets.get(route_key)
        if bucket is None:
            bucket = await self._shared_route(route_key)
        if bucket is None:
            probe = await self._probe(route, deadline)
            if probe is not None:
                return probe
            bucket = self._route_buckets[route_key]
        key = f"{bucket}:{route.major}" if bucket else ""
        claims = self._claims(route, key or None)
        if not claims:
            return Permit(route)
        queue_key = key or GLOBAL_KEY
        queue = self._enter(queue_key)
        try:
            await self._turn(queue.lock, route, deadline)
            try:
                await self._admit(route, claims, deadline, backlog=queue.users)
            finally:
                queue.lock.release()
        finally:
            self._leave(queue_key, queue)
        return Permit(route, bucket=key)

    async def _probe(self, route: CompiledRoute, deadline: float | None) -> Permit | None:
        """Wait until ``route``'s bucket is known or it is this request's turn to probe it.

        Returns the probe's permit (the probe queue stays locked until its answer), or
        None when the bucket became known meanwhile.
        """
        route_key = route.route.key
        probe_key = f"?{route_key}:{route.major}"
        queue = self._enter(probe_key)
        try:
            await self._turn(queue.lock, route, deadline)
        except BaseException:
            self._leave(probe_key, queue)
            raise
        claimed = False
        try:
            while self._route_buckets.get(route_key) is None:
                claimed = await self._store.claim_probe(probe_key, self._probe_ttl)
                if claimed and await self._shared_route(route_key) is not None:
                    # Another process learnt it between our look and our claim.
                    claimed = False
                    await self._store.end_probe(probe_key)
                    break
                if claimed:
                    await self._admit(route, self._claims(route, None), deadline)
                    return Permit(route, bucket=probe_key, probe=True)
                # Another process is probing it.
                await self._sleep(route, self._probe_poll, deadline)
                await self._shared_route(route_key)
        except BaseException:
            try:
                if claimed:
                    await self._store.end_probe(probe_key)
            finally:
                self._unlock(probe_key, queue)
            raise
        self._unlock(probe_key, queue)
        return None

    async def _shared_route(self, route_key: str) -> str | None:
        """What another process sharing the store learned about ``route_key``."""
        learned = await self._store.route(route_key)
        if learned is None:
            return None
        if learned == _NOT_LIMITED:
            self._route_buckets[route_key] = _NOT_LIMITED
            return _NOT_LIMITED
        try:
            bucket, limit, window = learned.split()
            self._learn_limits(bucket, int(limit), float(window))
        except ValueError:
            return None
        self._route_buckets[route_key] = bucket
        return bucket

    def _claims(self, route: CompiledRoute, key: str | None) -> list[Claim]:
        claims: list[Claim] = []
        if key is not None:
            limit, window = self._limits[key.split(":", 1)[0]]
            claims.append(Claim(key, limit, window + self._margin))
        if not route.route.interaction:
            claims.append(self._global)
        return claims

    async def _admit(
        self, route: CompiledRoute, claims: list[Claim], deadline: float | None, backlog: int = 0
    ) -> None:
        """Wait until every claim has a slot, then take them all at once.

        Requests that need the global limit queue for it only once their bucket has a
        slot, and the queue serves first the bucket whose waiting requests need the most
        time at its own pace (backlog x window / limit; then arrival order). When the
        global limit holds a burst back, slow buckets start their windows early and fast
        ones fill the gaps, so no bucket is left with a tail of its own at the end.
        """
        if not claims:
            return
        bucket = [claim for claim in claims if claim is not self._global]
        while True:
            if bucket:
                wait = await self._store.take(bucket, record=False)
                if wait > 0.0:
                    await self._sleep(route, wait, deadline)
                    continue
            if len(bucket) == len(claims):
                if await self._store.take(claims) <= 0.0:
                    return
                continue
            # The bucket's backlog in seconds of its own pace: what it still needs at least.
            need = max((backlog * claim.period / claim.limit for claim in bucket), default=0.0)
            priority = -int(need * 1000)
            if self._global_gate.free:
                await self._global_gate.enter(priority)
            else:
                await self._before(self._global_gate.enter(priority), route, deadline)
            try:
                while True:
                    wait = await self._store.take(claims)
                    if wait <= 0.0:
                        return
                    if bucket and await self._store.take(bucket, record=False) > 0.0:
                        break  # the bucket filled meanwhile: wait for it outside the gate
                    await self._sleep(route, wait, deadline)
            finally:
                self._global_gate.leave()

    async def _turn(self, lock: asyncio.Lock, route: CompiledRoute, deadline: float | None) -> None:
        if lock.locked():
            await self._before(lock.acquire(), route, deadline)
        else:
            await lock.acquire()  # free: taken at once, nothing to time

    async def _before(
        self, waiting: Awaitable[object], route: CompiledRoute, deadline: float | None
    ) -> None:
        """Await ``waiting`` (a turn in a queue), but not past ``deadline``: then cancel it
        and raise :class:`RateLimitWait`, as for a slot."""
        if deadline is None:
            await waiting
            return
        left = deadline - self._clock.monotonic()
        try:
            await within(self._clock, waiting, left)
        except TimeoutError:
            raise RateLimitWait(route=str(route.route), wait=max(0.0, left)) from None

    async def _sleep(self, route: CompiledRoute, wait: float, deadline: float | None) -> None:
        if deadline is not None and self._clock.monotonic() + wait > deadline:
            raise RateLimitWait(route=str(route.route), wait=wait)
        log.debug("%s: waiting %.3fs for a rate-limit slot", route.route, wait)
        await self._clock.sleep(wait)

    def _enter(self, key: str) -> _Queue:
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = _Queue()
        queue.users += 1
        return queue

    def _leave(self, key: str, queue: _Queue) -> None:
        queue.users -= 1
        if queue.users == 0 and self._queues.get(key) is queue:
            del self._queues[key]

    def _unlock(self, key: str, queue: _Queue) -> None:
        queue.lock.release()
        self._leave(key, queue)

    # --- after the answer -------------------------------------------------------------

    async def complete(
        self,
        permit: Permit,
        status: int,
        headers: Mapping[str, str],
        rate_limited: RateLimited | None = None,
    ) -> None:
        if permit.done:
            return
        try:
            await self._learn(permit, status, headers, rate_limited)
        finally:
            permit.done = True
            if permit.probe:
                try:
                    await self._store.end_probe(permit.bucket)
                finally:
                    self._unlock_probe(permit)

    def release(self, permit: Permit) -> None:
        if permit.done:
            return
        permit.done = True
        if permit.probe:
            self._unlock_probe(permit)
            # No answer came: let another process probe without waiting for the TTL.
            task = asyncio.ensure_future(self._store.end_probe(permit.bucket))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    def _unlock_probe(self, permit: Permit) -> None:
        queue = self._queues.get(permit.bucket)
        if queue is not None:
            self._unlock(permit.bucket, queue)

    async def close(self) -> None:
        await self._store.close()

    async def _learn(
        self,
        permit: Permit,
        status: int,
        headers: Mapping[str, str],
        rate_limited: RateLimited | None,
    ) -> None:
        route = permit.route
        route_key = route.route.key
        parsed = parse_bucket_headers(headers)
        key = "" if permit.probe else permit.bucket
        if parsed is not None:
            known = self._route_buckets.get(route_key)
            limit, window = self._learn_limits(parsed.bucket, parsed.limit, parsed.reset_after)
            key = f"{parsed.bucket}:{route.major}"
            claim = Claim(key, limit, window + self._margin)
            # Count what the server counted (the probe included) before anyone, here or
            # in another process, learns the bucket and starts taking its slots.
            await self._store.sync(claim, limit - parsed.remaining, parsed.reset_after)
            self._route_buckets[route_key] = parsed.bucket
            if known != parsed.bucket or permit.probe:
                await self._store.learn_route(route_key, f"{parsed.bucket} {limit} {window!r}")
        elif status < 300 and route_key not in self._route_buckets:
            self._route_buckets[route_key] = _NOT_LIMITED
            await self._store.learn_route(route_key, _NOT_LIMITED)
        if rate_limited is None or rate_limited.cloudflare:
            return
        retry_after = rate_limited.retry_after
        if rate_limited.scope == "global" or rate_limited.is_global:
            log.warning("global rate limit hit; holding every route %.2fs", retry_after)
            await self._store.block(GLOBAL_KEY, retry_after)
        elif rate_limited.scope == "user" and key:
            log.warning("%s: 429 on its bucket; holding it %.2fs", route.route, retry_after)
            await self._store.block(key, retry_after)

    def _learn_limits(self, bucket: str, limit: int, reset_after: float) -> tuple[int, float]:
        """Remember a bucket's limit and window; the window is the largest reset seen.

        The first answer of a window says the whole window; later ones say less.
        """
        known = self._limits.get(bucket)
        window = reset_after
        if known is not None and known[0] == limit:
            window = max(window, known[1])
        self._limits[bucket] = (limit, window)
        return limit, window
