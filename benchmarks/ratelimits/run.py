"""Run the rate-limit benchmark: steadybot's REST client against the emulator's buckets.

Two measurements, each against a fresh emulator process (:mod:`serve`) with Discord's
rate limits on:

1. **Burst**: 1000 message operations at once over 10 channels (per channel 20
   creates, 20 edits, 60 deletes), first through steadybot's ``RestClient`` (bucket
   manager on), then, in the same run and against a fresh emulator with the same seed,
   through discord.py's ``HTTPClient`` pointed at the emulator via ``Route.BASE``. For
   each: elapsed time, 429s by scope (counted by the emulator), and errors. The
   theoretical minimum is the lower bound the emulator's limits imply: a bucket of
   ``limit`` per ``window`` needs ``(ceil(n / limit) - 1) * window`` seconds for ``n``
   requests, and so does the global limit for all of them; the largest of these bounds.
2. **Cleanup**: 1000 messages (750 young and 100 15-day-old ones in a guild channel,
   150 in a DM) deleted with :class:`~steadybot.rest.MessageCleaner`, against the
   production story's loop: one delete at a time with a fixed 50 ms sleep between
   them (steadybot's client with no rate limiter: it retries 429s after
   ``retry_after``, as discord.py would).

Figures go to ``results.json`` next to this file and to stdout.

Usage: ``.venv/bin/python benchmarks/ratelimits/run.py [--skip-loop]`` (or ``make bench``).
``--skip-loop`` leaves out the fixed-sleep loop (about 3.5 minutes). Exits 1 when an
acceptance point fails (a non-shared 429 for steadybot, burst over 1.1 x the minimum
or slower than discord.py, a message left behind, cleanup not faster than the loop).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import math
import os
import platform
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import asynccontextmanager
from importlib import metadata
from pathlib import Path
from typing import Any, Final

ROOT: Final = Path(__file__).resolve().parents[2]
HERE: Final = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import discord  # noqa: E402

from steadybot.clock import SystemClock  # noqa: E402
from steadybot.emulator.ratelimits import RateLimitSettings  # noqa: E402
from steadybot.errors import SteadybotError  # noqa: E402
from steadybot.resilience.retry import RetryPolicy  # noqa: E402
from steadybot.rest import (  # noqa: E402
    BucketManager,
    MessageCleaner,
    NoRateLimiter,
    RateLimiter,
    RestClient,
)

JSON = dict[str, Any]
EDITS, DELETES, CREATES = 20, 60, 20
TARGET_FACTOR: Final = 1.1
LOOP_SLEEP: Final = 0.05


@asynccontextmanager
async def emulator(scenario: str) -> AsyncIterator[JSON]:
    """A fresh emulator process; yields its info, then adds ``final`` when it stops."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(HERE / "serve.py"),
        "--scenario",
        scenario,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    line = await process.stdout.readline()
    if not line:
        process.kill()
        raise SystemExit(f"the emulator for {scenario!r} did not start")
    info: JSON = json.loads(line)
    try:
        yield info
    finally:
        process.send_signal(signal.SIGTERM)
        out, _ = await asyncio.wait_for(process.communicate(), timeout=30)
        info["final"] = json.loads(out.decode().strip().splitlines()[-1])


def theoretical_minimum(operations: dict[str, int], channels: int) -> JSON:
    """The lower bound the emulator's default limits put on the burst, in seconds."""
    limits = RateLimitSettings()
    bounds: dict[str, float] = {}
    routes = {
        "create": "POST /channels/{channel_id}/messages",
        "edit": "PATCH /channels/{channel_id}/messages/{message_id}",
        "delete": "DELETE /channels/{channel_id}/messages/{message_id}",
    }
    for operation, count in operations.items():
        bucket = limits.buckets[limits.routes[routes[operation]]]
        bounds[operation] = (math.ceil(count / bucket.limit) - 1) * bucket.window
    total = sum(operations.values()) * channels
    bounds["global"] = (math.ceil(total / limits.global_per_second) - 1) * 1.0
    return {"seconds": max(bounds.values()), "bounds": bounds}


async def timed(calls: Sequence[Awaitable[Any]]) -> tuple[float, list[str]]:
    started = time.perf_counter()
    results = await asyncio.gather(*calls, return_exceptions=True)
    elapsed = time.perf_counter() - started
    errors = [f"{type(r).__name__}: {r}" for r in results if isinstance(r, BaseException)]
    return elapsed, errors


def client(
    info: JSON, clock: SystemClock, limiter: RateLimiter, retry: RetryPolicy | None = None
) -> RestClient:
    """steadybot's REST client for the emulator in ``info``."""
    return RestClient(
        api_base=info["api_base"],
        token=info["bot_token"],
        clock=clock,
        rate_limiter=limiter,
        retry=retry,
    )


def burst_plan(info: JSON) -> list[tuple[str, str, str | None]]:
    """(operation, channel, message) for every one of the 1000 operations."""
    plan: list[tuple[str, str, str | None]] = []
    for channel, ids in info["messages"].items():
        plan += [("create", channel, None)] * CREATES
        plan += [("edit", channel, message) for message in ids[:EDITS]]
        plan += [("delete", channel, message) for message in ids[EDITS : EDITS + DELETES]]
    return plan


async def burst_steadybot(info: JSON) -> JSON:
    clock = SystemClock()
    rest = client(info, clock, BucketManager(clock=clock))
    try:
        calls: list[Awaitable[Any]] = []
        for operation, channel, message in burst_plan(info):
            if operation == "create":
                calls.append(rest.create_message(channel, {"content": "burst"}))
            elif operation == "edit" and message is not None:
                calls.append(rest.edit_message(channel, message, {"content": "edited"}))
            elif message is not None:
                calls.append(rest.delete_message(channel, message))
        elapsed, errors = await timed(calls)
        stats = rest.statistics()
    finally:
        await rest.close()
    return {
        "elapsed": elapsed,
        "errors": errors,
        "requests": stats.requests,
        "client_429s": dict(stats.rate_limited_by_scope),
    }


async def burst_discord_py(info: JSON) -> JSON:
    discord.http.Route.BASE = info["api_base"]
    http = discord.http.HTTPClient(asyncio.get_running_loop())
    try:
        await http.static_login(info["bot_token"])
        calls: list[Awaitable[Any]] = []
        for operation, channel, message in burst_plan(info):
            if operation == "create":
                params = discord.http.handle_message_parameters(content="burst")
                calls.append(http.send_message(int(channel), params=params))
            elif operation == "edit" and message is not None:
                params = discord.http.handle_message_parameters(content="edited")
                calls.append(http.edit_message(int(channel), int(message), params=params))
            elif message is not None:
                calls.append(http.delete_message(int(channel), int(message)))
        elapsed, errors = await timed(calls)
    finally:
        await http.close()
    return {"elapsed": elapsed, "errors": errors}


async def cleanup_helper(info: JSON) -> JSON:
    clock = SystemClock()
    rest = client(info, clock, BucketManager(clock=clock))
    cleaner = MessageCleaner(rest, clock=clock)
    try:
        started = time.perf_counter()
        reports = await asyncio.gather(
            *(cleaner.delete(channel, ids) for channel, ids in info["messages"].items())
        )
        elapsed = time.perf_counter() - started
        stats = rest.statistics()
    finally:
        await rest.close()
    return {
        "elapsed": elapsed,
        "deleted": sum(len(r.deleted) for r in reports),
        "failed": sum(len(r.failed) for r in reports),
        "bulk_requests": sum(r.bulk_requests for r in reports),
        "single_requests": sum(r.single_requests for r in reports),
        "requests": stats.requests,
        "client_429s": dict(stats.rate_limited_by_scope),
        "client_400s": stats.by_status.get(400, 0),
    }


async def cleanup_loop(info: JSON) -> JSON:
    """The production story: delete one by one, a fixed 50 ms sleep between deletes."""
    clock = SystemClock()
    rest = client(info, clock, NoRateLimiter(), retry=RetryPolicy(max_attempts=10))
    deleted, failed = 0, 0
    started = time.perf_counter()
    try:
        for channel, ids in info["messages"].items():
            for message in ids:
                try:
                    await rest.delete_message(channel, message)
                    deleted += 1
                except SteadybotError:
                    failed += 1
                await asyncio.sleep(LOOP_SLEEP)
        stats = rest.statistics()
    finally:
        await rest.close()
    return {
        "elapsed": time.perf_counter() - started,
        "deleted": deleted,
        "failed": failed,
        "requests": stats.requests,
        "client_429s": dict(stats.rate_limited_by_scope),
    }


def emulator_view(info: JSON) -> JSON:
    final = info["final"]
    return {"rejected": final["statistics"]["rate_limited"], "left": sum(final["left"].values())}


def progress(text: str) -> None:
    print(f"[{dt.datetime.now():%H:%M:%S}] {text}", file=sys.stderr, flush=True)


async def run(args: argparse.Namespace) -> JSON:
    operations = {"create": CREATES, "edit": EDITS, "delete": DELETES}
    minimum = theoretical_minimum(operations, channels=10)
    report: JSON = {"theoretical_minimum": minimum}

    progress("burst: steadybot (about 20 s)")
    async with emulator("burst") as info:
        steady = await burst_steadybot(info)
    steady["emulator"] = emulator_view(info)
    progress(f"burst: steadybot {steady['elapsed']:.2f} s; now discord.py")
    async with emulator("burst") as info:
        peer = await burst_discord_py(info)
    peer["emulator"] = emulator_view(info)
    progress(f"burst: discord.py {peer['elapsed']:.2f} s")
    report["burst"] = {
        "operations": 1000,
        "channels": 10,
        "per_channel": operations,
        "steadybot": steady,
        "discord_py": peer,
        "steadybot_vs_minimum": steady["elapsed"] / minimum["seconds"],
        "steadybot_vs_discord_py": steady["elapsed"] / peer["elapsed"],
    }

    progress("cleanup: MessageCleaner (about 30 s)")
    async with emulator("cleanup") as info:
        helper = await cleanup_helper(info)
    helper["emulator"] = emulator_view(info)
    progress(f"cleanup: helper {helper['elapsed']:.2f} s")
    cleanup: JSON = {"messages": 1000, "helper": helper}
    if not args.skip_loop:
        progress("cleanup: the fixed-sleep loop (about 3.5 minutes)")
        async with emulator("cleanup") as info:
            loop = await cleanup_loop(info)
        loop["emulator"] = emulator_view(info)
        progress(f"cleanup: loop {loop['elapsed']:.2f} s")
        cleanup["fixed_sleep_loop"] = loop
        cleanup["speedup"] = loop["elapsed"] / helper["elapsed"]
    report["cleanup"] = cleanup
    return report


def verdicts(report: JSON) -> dict[str, bool]:
    burst, cleanup = report["burst"], report["cleanup"]
    steady = burst["steadybot"]
    rejected = steady["emulator"]["rejected"]
    checks = {
        "burst: 0 non-shared 429s": rejected["user"] + rejected["global"] == 0
        and not steady["errors"],
        "burst: <= 1.1 x the theoretical minimum": burst["steadybot_vs_minimum"] <= TARGET_FACTOR,
        "burst: no slower than discord.py": burst["steadybot_vs_discord_py"] <= 1.0,
        "cleanup: every message deleted, 0 429s, 14-day rule kept": (
            cleanup["helper"]["emulator"]["left"] == 0
            and sum(cleanup["helper"]["emulator"]["rejected"].values()) == 0
            and cleanup["helper"]["client_400s"] == 0
        ),
    }
    if "speedup" in cleanup:
        checks["cleanup: faster than the fixed-sleep loop"] = cleanup["speedup"] > 1.0
    return checks


def print_report(report: JSON, checks: dict[str, bool]) -> None:
    burst, cleanup = report["burst"], report["cleanup"]
    minimum = report["theoretical_minimum"]
    print(f"Burst of 1000 operations over 10 channels (minimum {minimum['seconds']:.1f} s):")
    for name in ("steadybot", "discord_py"):
        result = burst[name]
        print(
            f"  {name:<10} {result['elapsed']:7.2f} s   429s seen by the emulator "
            f"{result['emulator']['rejected']}   errors {len(result['errors'])}"
        )
    print(
        f"  steadybot / minimum {burst['steadybot_vs_minimum']:.3f}   "
        f"steadybot / discord.py {burst['steadybot_vs_discord_py']:.3f}"
    )
    print("Cleanup of 1000 messages (guild channel young + old, and a DM):")
    for name in ("helper", "fixed_sleep_loop"):
        if name in cleanup:
            result = cleanup[name]
            print(
                f"  {name:<16} {result['elapsed']:7.2f} s   deleted {result['deleted']}   "
                f"requests {result['requests']}   429s {result['emulator']['rejected']}   "
                f"left {result['emulator']['left']}"
            )
    if "speedup" in cleanup:
        print(f"  helper is {cleanup['speedup']:.1f} x faster")
    for name, ok in checks.items():
        print(f"  [{'ok' if ok else 'FAILED'}] {name}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--skip-loop", action="store_true", help="leave out the slow loop")
    args = parser.parse_args(argv)
    # The fixed-sleep loop logs a warning per 429 it retries; they are counted instead.
    logging.getLogger("steadybot").setLevel(logging.ERROR)
    report = asyncio.run(run(args))
    checks = verdicts(report)
    report["checks"] = checks
    report["machine"] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": len(os.sched_getaffinity(0)),
        "discord.py": metadata.version("discord.py"),
        "steadybot": metadata.version("steadybot"),
    }
    report["command"] = "python benchmarks/ratelimits/run.py" + (
        " --skip-loop" if args.skip_loop else ""
    )
    report["date"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    (HERE / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    print_report(report, checks)
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
