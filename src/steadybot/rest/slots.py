"""Send slots: how many requests a key may send in a rolling period, kept in one process.

Why our own: Discord's buckets are fixed windows that start at the first request the
server sees, and the client never sees that start exactly. A *sliding log* of send
times on the client side is safe whatever the server's window alignment is: if every
span of ``window + margin`` seconds holds at most ``limit`` sends, every server window of
``window`` seconds receives at most ``limit`` of them, as long as the network delays
differ by less than ``margin``. A burst still goes at the full rate: ``limit`` requests
leave together and the next ``limit`` leave one ``window + margin`` later, so a burst
takes ``(1 + margin / window)`` times the server's own minimum.

The store is behind the :class:`SlotStore` protocol so several processes can share
slots through Redis (:mod:`steadybot.rest.redis_slots`) with the same rule.

Memory stays bounded: a key's log holds at most ``limit`` times, keys live in
least-recently-used order, and each ``take`` drops the idle keys at the front (a key
is idle once its last send has left the period and no block is pending), so a bot
that touches millions of channels keeps only the ones it used within a window.
``max_keys`` caps the count even when nothing is idle.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from steadybot.clock import Clock

__all__ = ["Claim", "LocalSlotStore", "SlotStore"]


@dataclass(frozen=True, slots=True)
class Claim:
    """At most ``limit`` sends on ``key`` in any ``period`` seconds."""

    key: str
    limit: int
    period: float


class SlotStore(Protocol):
    async def take(self, claims: Sequence[Claim], *, record: bool = True) -> float:
        """Record one send on every claim and return 0.0, or return the seconds to wait.

        All or nothing: when any claim is full or blocked, nothing is recorded. With
        ``record=False`` only the wait is computed (a look before queueing).
        """
        ...

    async def block(self, key: str, seconds: float) -> None:
        """No send on ``key`` for ``seconds`` (a 429 told us to wait)."""
        ...

    async def sync(self, claim: Claim, used: int, reset_after: float) -> None:
        """The server says ``used`` sends count until ``reset_after`` seconds from now.

        Adds sends to the log (never removes any) until it holds ``used`` that last at
        least that long: probes, other processes without a shared store, or a bucket used
        before this process started are counted as the server counts them.
        """
        ...

    async def route(self, route_key: str) -> str | None:
        """What another process learned about ``route_key`` (see :meth:`learn_route`)."""
        ...

    async def learn_route(self, route_key: str, learned: str) -> None:
        """Share what was learned about ``route_key``: ``"hash limit window"`` or ``""``."""
        ...

    async def claim_probe(self, key: str, ttl: float) -> bool:
        """Whether this process may probe ``key`` now (False: another one is probing)."""
        ...

    async def end_probe(self, key: str) -> None: ...

    async def close(self) -> None: ...


class _Log:
    __slots__ = ("blocked_until", "period", "sends")

    def __init__(self) -> None:
        self.sends: deque[float] = deque()
        self.blocked_until = 0.0
        self.period = 0.0

    def idle(self, now: float) -> bool:
        return self.blocked_until <= now and (not self.sends or self.sends[-1] + self.period <= now)


class LocalSlotStore:
    """Slots in this process's memory, timed by the injected clock's monotonic time."""

    def __init__(self, clock: Clock, *, max_keys: int = 100_000) -> None:
        self._clock = clock
        self._max_keys = max_keys
        self._logs: OrderedDict[str, _Log] = OrderedDict()  # least recently used first

    def __len__(self) -> int:
        return len(self._logs)

    async def take(self, claims: Sequence[Claim], *, record: bool = True) -> float:
        return self.take_now(claims, record=record)

    def take_now(self, claims: Sequence[Claim], *, record: bool = True) -> float:
        now = self._clock.monotonic()
        self._evict(now)
        wait = 0.0
        logs: list[_Log] = []
        for claim in claims:
            log = self._log(claim.key)
            log.period = claim.period
            logs.append(log)
            sends = log.sends
            horizon = now - claim.period
            while sends and sends[0] <= horizon:
                sends.popleft()
            if log.blocked_until > now:
                wait = max(wait, log.blocked_until - now)
            if len(sends) >= claim.limit:
                # The slot frees when the send that put the log at its limit leaves it.
                wait = max(wait, sends[len(sends) - claim.limit] + claim.period - now)
        if wait > 0.0 or not record:
            return wait
        for log in logs:
            log.sends.append(now)
        return 0.0

    async def block(self, key: str, seconds: float) -> None:
        log = self._log(key)
        log.blocked_until = max(log.blocked_until, self._clock.monotonic() + seconds)

    async def sync(self, claim: Claim, used: int, reset_after: float) -> None:
        now = self._clock.monotonic()
        log = self._log(claim.key)
        log.period = max(log.period, claim.period)
        sends = log.sends
        while sends and sends[0] <= now - log.period:
            sends.popleft()
        # A send stamped at ``at`` lasts until the server's reset.
        at = now + reset_after - log.period
        lasting = sum(1 for sent in sends if sent >= at)
        for _ in range(min(used, claim.limit) - lasting):
            bisect.insort(sends, at)

    # In one process the bucket manager's own memory is the route registry and its
    # probe queue the probe lock; these exist for stores shared between processes.
    async def route(self, route_key: str) -> str | None:
        return None

    async def learn_route(self, route_key: str, learned: str) -> None:
        return None

    async def claim_probe(self, key: str, ttl: float) -> bool:
        return True

    async def end_probe(self, key: str) -> None:
        return None

    async def close(self) -> None:
        self._logs.clear()

    def _log(self, key: str) -> _Log:
        log = self._logs.get(key)
        if log is None:
            log = self._logs[key] = _Log()
        else:
            self._logs.move_to_end(key)
        return log

    def _evict(self, now: float) -> None:
        logs = self._logs
        while logs:
            key, log = next(iter(logs.items()))
            if not (log.idle(now) or len(logs) > self._max_keys):
                return
            del logs[key]
