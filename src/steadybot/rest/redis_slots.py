"""Send slots shared by every process of one bot token, on Redis.

The same sliding-log rule as :class:`~steadybot.rest.slots.LocalSlotStore`, kept in
Redis sorted sets (one per slot key, scored by send time) and changed only inside Lua
scripts, so a take is atomic across processes: two processes can never both see the
last free slot. Times come from Redis's own ``TIME`` inside the scripts, so processes on
hosts with different clocks still agree; waits are durations, slept on the caller's
clock. Every key carries a TTL just past its period, so nothing outlives its use.

Keys: ``{namespace}:{token digest}:…`` — the token itself never reaches Redis.
Processes with different tokens never share slots. Route discovery is shared too
(``…:route:{route}`` holds ``"hash limit window"``), and a probe of an unknown bucket
holds ``…:probe:{key}`` (``SET NX PX``) so only one process probes it at a time.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis

from steadybot.redis_pool import redis_from_url
from steadybot.rest.slots import Claim

__all__ = ["RedisSlotStore"]

# Seconds are counted from 2023-11-14 so a score keeps microseconds within the 14
# significant digits Lua prints numbers with.
_NOW = """
local t = redis.call('TIME')
local now = (tonumber(t[1]) - 1700000000) + tonumber(t[2]) / 1000000
"""

# KEYS: n log keys, then their n block keys. ARGV: limit, period for each, then "1" to
# record (or "0" to only look), then the member.
_TAKE = (
    _NOW
    + """
local n = #KEYS / 2
local wait = 0
for i = 1, n do
  local limit = tonumber(ARGV[2 * i - 1])
  local period = tonumber(ARGV[2 * i])
  local blocked = tonumber(redis.call('GET', KEYS[n + i]) or '0')
  if blocked > now then wait = math.max(wait, blocked - now) end
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - period)
  local count = redis.call('ZCARD', KEYS[i])
  if count >= limit then
    local entry = redis.call('ZRANGE', KEYS[i], count - limit, count - limit, 'WITHSCORES')
    wait = math.max(wait, tonumber(entry[2]) + period - now)
  end
end
if wait > 0 or ARGV[#ARGV - 1] ~= '1' then return tostring(wait) end
local member = ARGV[#ARGV]
for i = 1, n do
  redis.call('ZADD', KEYS[i], now, member)
  redis.call('PEXPIRE', KEYS[i], math.ceil(tonumber(ARGV[2 * i]) * 1000) + 1000)
end
return '0'
"""
)

# KEYS: block key. ARGV: seconds.
_BLOCK = (
    _NOW
    + """
local seconds = tonumber(ARGV[1])
local until_ = now + seconds
if until_ > tonumber(redis.call('GET', KEYS[1]) or '0') then
  redis.call('SET', KEYS[1], tostring(until_), 'PX', math.ceil(seconds * 1000) + 1000)
end
return 1
"""
)

# KEYS: log key. ARGV: limit, period, used, reset_after, member prefix.
_SYNC = (
    _NOW
    + """
local limit, period = tonumber(ARGV[1]), tonumber(ARGV[2])
local used, reset_after = tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - period)
local at = now + reset_after - period
local lasting = redis.call('ZCOUNT', KEYS[1], at, '+inf')
for j = 1, math.min(used, limit) - lasting do
  redis.call('ZADD', KEYS[1], at, ARGV[5] .. ':' .. j)
end
redis.call('PEXPIRE', KEYS[1], math.ceil(period * 1000) + 1000)
return 1
"""
)


class RedisSlotStore:
    """Slots in Redis, shared by every process that uses the same token and namespace."""

    def __init__(
        self,
        redis: Redis,
        *,
        namespace: str = "steadybot:rl",
        token: str = "",
        route_ttl: float = 3600.0,
    ) -> None:
        self._redis = redis
        digest = hashlib.sha256(token.encode()).hexdigest()[:16]
        self._prefix = f"{namespace}:{digest}"
        self._route_ttl = route_ttl
        self._ids = itertools.count()
        self._me = f"{os.getpid()}-{os.urandom(4).hex()}"
        self._take = redis.register_script(_TAKE)
        self._block = redis.register_script(_BLOCK)
        self._sync = redis.register_script(_SYNC)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        namespace: str = "steadybot:rl",
        token: str = "",
        connections: int = 50,
        wait: float = 10.0,
    ) -> RedisSlotStore:
        """A store on its own client: a blocking pool of ``connections``, where a burst
        of requests waits up to ``wait`` s for a connection instead of failing."""
        client = redis_from_url(url, connections=connections, wait=wait)
        return cls(client, namespace=namespace, token=token)

    def _member(self) -> str:
        return f"{self._me}:{next(self._ids)}"

    async def take(self, claims: Sequence[Claim], *, record: bool = True) -> float:
        keys = [f"{self._prefix}:log:{c.key}" for c in claims]
        keys += [f"{self._prefix}:block:{c.key}" for c in claims]
        args: list[Any] = []
        for claim in claims:
            args += [claim.limit, repr(claim.period)]
        args += ["1" if record else "0", self._member()]
        wait = await self._take(keys=keys, args=args)
        return float(_text(wait))

    async def block(self, key: str, seconds: float) -> None:
        await self._block(keys=[f"{self._prefix}:block:{key}"], args=[repr(seconds)])

    async def sync(self, claim: Claim, used: int, reset_after: float) -> None:
        await self._sync(
            keys=[f"{self._prefix}:log:{claim.key}"],
            args=[claim.limit, repr(claim.period), used, repr(reset_after), self._member()],
        )

    async def route(self, route_key: str) -> str | None:
        value = await self._redis.get(f"{self._prefix}:route:{route_key}")
        return None if value is None else _text(value)

    async def learn_route(self, route_key: str, learned: str) -> None:
        await self._redis.set(
            f"{self._prefix}:route:{route_key}", learned, px=int(self._route_ttl * 1000)
        )

    async def claim_probe(self, key: str, ttl: float) -> bool:
        claimed = await self._redis.set(
            f"{self._prefix}:probe:{key}", self._me, nx=True, px=max(1, int(ttl * 1000))
        )
        return bool(claimed)

    async def end_probe(self, key: str) -> None:
        await self._redis.delete(f"{self._prefix}:probe:{key}")

    async def close(self) -> None:
        await self._redis.aclose()


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode()
    return value if isinstance(value, str) else str(value)
