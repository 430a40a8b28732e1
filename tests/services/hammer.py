"""One bot process hammering one bucket: run twice at once by test_redis_buckets.py.

Usage: ``python hammer.py API_BASE TOKEN CHANNEL COUNT REDIS_URL NAMESPACE`` (REDIS_URL
"" for an in-process store). Prints "ready", then waits for a "go" line on stdin so both
processes start together, then creates COUNT messages concurrently and prints its
statistics as JSON.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from steadybot.clock import SystemClock
from steadybot.rest import BucketManager, RestClient
from steadybot.rest.redis_slots import RedisSlotStore
from steadybot.rest.slots import SlotStore


async def hammer(
    api_base: str, token: str, channel: str, count: int, redis_url: str, namespace: str
) -> dict[str, object]:
    clock = SystemClock()
    store: SlotStore | None = None
    if redis_url:
        store = RedisSlotStore.from_url(redis_url, namespace=namespace, token=token)
    # A shared store adds a Redis round trip between taking a slot and sending: a wider
    # margin for delay jitter than in-process (docs/rest.md).
    limiter = BucketManager(clock=clock, store=store, margin=0.1)
    rest = RestClient(api_base=api_base, token=token, clock=clock, rate_limiter=limiter)
    try:
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        started = clock.monotonic()
        started_wall = time.time()
        calls = (rest.create_message(channel, {"content": str(n)}) for n in range(count))
        results = await asyncio.gather(*calls, return_exceptions=True)
        stats = rest.statistics()
        return {
            "elapsed": clock.monotonic() - started,
            # Wall-clock span, comparable across the two processes.
            "started": started_wall,
            "ended": time.time(),
            "errors": [repr(r) for r in results if isinstance(r, BaseException)],
            "by_status": {str(k): v for k, v in stats.by_status.items()},
            "rate_limited_by_scope": dict(stats.rate_limited_by_scope),
        }
    finally:
        await rest.close()


if __name__ == "__main__":
    api_base, token, channel, count, redis_url, namespace = sys.argv[1:7]
    result = asyncio.run(hammer(api_base, token, channel, int(count), redis_url, namespace))
    print(json.dumps(result), flush=True)
