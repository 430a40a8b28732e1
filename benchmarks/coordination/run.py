"""Keyed-lock cost on the real Redis (127.0.0.1) and in-process, and a burst of locks.

Usage: ``.venv/bin/python benchmarks/coordination/run.py [REDIS_URL]``. Prints one line
per measurement and leaves no key behind but the namespace's fence counter (deleted
too). Talks to the given Redis only; bounded in count.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid

from redis.asyncio import Redis

from steadybot.clock import SystemClock
from steadybot.config import Settings
from steadybot.coordination import KeyedLock, LockTimeout, coordination_from_settings

CYCLES = 2000


async def main(url: str) -> None:
    namespace = f"steadybot-bench:{uuid.uuid4().hex}"
    clock = SystemClock()
    one = coordination_from_settings(Settings(redis_url=url, redis_prefix=namespace), clock)
    two = coordination_from_settings(Settings(redis_url=url, redis_prefix=namespace), clock)
    try:
        started = time.perf_counter()
        for n in range(CYCLES):
            async with one.locks(f"k:{n % 50}"):
                pass
        took = time.perf_counter() - started
        print(f"redis lock acquire+release, one at a time: {took / CYCLES * 1e6:.0f} µs")

        async with one.locks("held"):
            started = time.perf_counter()
            for _ in range(CYCLES):
                try:
                    async with two.locks("held", timeout=0):
                        pass
                except LockTimeout:
                    pass
            took = time.perf_counter() - started
        print(f"redis busy answer (key held by the other process): {took / CYCLES * 1e6:.0f} µs")

        async def cycle(n: int) -> None:
            async with one.locks(f"burst:{n}"):
                pass

        started = time.perf_counter()
        await asyncio.gather(*(cycle(n) for n in range(CYCLES)))
        took = time.perf_counter() - started
        print(
            f"redis burst of {CYCLES} concurrent acquisitions (pool of "
            f"{Settings().coordination_redis_connections}): {took:.2f} s, {CYCLES / took:.0f}/s"
        )

        local: KeyedLock[str] = KeyedLock(clock)
        started = time.perf_counter()
        for n in range(CYCLES * 10):
            async with local(f"k:{n % 50}"):
                pass
        took = time.perf_counter() - started
        print(f"in-process lock acquire+release: {took / (CYCLES * 10) * 1e6:.1f} µs")
    finally:
        await one.close()
        await two.close()
        client = Redis.from_url(url)
        keys = [key async for key in client.scan_iter(f"{namespace}:*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "redis://127.0.0.1:6379/0"))
