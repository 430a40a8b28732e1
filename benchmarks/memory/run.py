"""Run the memory benchmark: 1,000,000 distinct users through per-user structures.

The production story: per-user maps that grow for ever, until the process dies. Here
every user id goes once through the three per-user paths a bot has — the per-user
**lock** (:class:`~steadybot.coordination.KeyedLock`), the per-user **serial queue**
(:class:`~steadybot.coordination.SerialQueue`) and a **cache** of user objects
(:class:`~steadybot.cache.BoundedCache`, ``max_size`` 10,000, pinned while used,
loaded through single flight, tagged by guild) — by 1000 concurrent workers, so a
thousand users' keys are live at any moment. Resident memory (``VmRSS`` from
``/proc/self/status``) is read

- at the *baseline*: after imports and a warm-up run of 20,000 users, swept;
- at its *peak* during the run (sampled after every 1000 users);
- *after* the run;
- *after a sweep*: the clock (a :class:`~steadybot.clock.ManualClock`) moved past the
  TTL so the cache's own sweeper task drops everything, then ``gc.collect()``; and
  again after ``malloc_trim(0)`` (glibc keeps freed heap memory otherwise). Next to
  RSS, ``sys.getallocatedblocks()`` counts the live Python memory blocks: what RSS
  cannot tell apart, live objects from the allocator's reserve.

The **control** runs the same ids through the naive version (a ``dict`` of
``asyncio.Lock`` per user for the lock and for the queue, and a ``dict`` cache),
which is what grows for ever. Each arm runs in its own child process (both at once),
so each has a clean baseline and neither's leftovers pollute the other's figures.

Acceptance: steadybot's growth (peak - baseline) within 64 MB; after the sweep (and
the trim) within 8 MB of the baseline, and the live Python blocks within 1 % of the
baseline's; at the end of the run no lock or queue key left, the cache at its cap, no
pin and no load under way; after the sweep the cache and its tag index empty.

Usage: ``.venv/bin/python benchmarks/memory/run.py [--users N]`` (or ``make bench``);
two to three minutes (the steadybot arm's; the control runs alongside). Figures
go to ``results.json`` next to this file and to stdout. Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import datetime as dt
import functools
import gc
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, Final

ROOT: Final = Path(__file__).resolve().parents[2]
HERE: Final = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from steadybot.cache import BoundedCache  # noqa: E402
from steadybot.clock import ManualClock  # noqa: E402
from steadybot.coordination import KeyedLock, SerialQueue  # noqa: E402

JSON = dict[str, Any]
USERS: Final = 1_000_000
WARMUP_USERS: Final = 20_000
CONCURRENCY: Final = 1000
CACHE_MAX_SIZE: Final = 10_000
CACHE_TTL: Final = 300.0
SWEEP_INTERVAL: Final = 60.0
GUILDS: Final = 100
GROWTH_LIMIT_MB: Final = 64.0
AFTER_SWEEP_LIMIT_MB: Final = 8.0
BLOCKS_MARGIN: Final = 0.01
PROGRESS_EVERY: Final = 100_000
SAMPLE_EVERY: Final = 10_007  # a prime, so the sample does not follow one worker


class Member:
    """What a bot caches per user: a small object with a few fields."""

    __slots__ = ("guild", "id", "name", "roles")

    def __init__(self, user_id: int) -> None:
        self.id = user_id
        self.name = f"user-{user_id}"
        self.guild = user_id % GUILDS
        self.roles = (user_id % 7, user_id % 11)


async def fetch_member(user_id: int) -> Member:
    await asyncio.sleep(0)  # a real fetch awaits: keep the single-flight path honest
    return Member(user_id)


def blocks() -> int:
    """Memory blocks Python's allocator has handed out and not got back: live objects,
    whatever the allocator keeps from the OS."""
    return sys.getallocatedblocks()


def trim() -> None:
    """Collect garbage, then ask glibc to give free heap memory back to the OS (it keeps
    freed memory for reuse otherwise; RSS would then show what was used, not what is)."""
    gc.collect()
    # Not glibc: nothing to ask, RSS keeps the allocator's reserve.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def progress(text: str) -> None:
    print(f"[{dt.datetime.now():%H:%M:%S}] {text}", file=sys.stderr, flush=True)


async def drive(
    users: range, one_user: Callable[[int], Awaitable[None]], on_round: Callable[[int], None]
) -> None:
    """``CONCURRENCY`` workers, worker ``w`` taking users ``w``, ``w + CONCURRENCY``, …:
    a thousand users in flight at any moment, without a task per user. ``on_round`` is
    called by worker 0 after each of its users with how many users have started."""

    async def worker(offset: int) -> None:
        for index in range(offset, len(users), CONCURRENCY):
            await one_user(users[index])
            if offset == 0:
                on_round(index + CONCURRENCY)

    await asyncio.gather(*(worker(offset) for offset in range(CONCURRENCY)))


# --- steadybot arm ----------------------------------------------------------------------


async def steadybot_arm(users: int) -> JSON:
    clock = ManualClock()
    locks: KeyedLock[int] = KeyedLock(clock)
    queue: SerialQueue[int] = SerialQueue()
    cache: BoundedCache[Member] = BoundedCache(
        "members",
        clock=clock,
        max_size=CACHE_MAX_SIZE,
        ttl=CACHE_TTL,
        sweep_interval=SWEEP_INTERVAL,
    )
    await cache.start()
    live = {"locks": 0, "queues": 0, "pinned": 0}
    touched = 0

    async def operation(uid: int) -> None:
        nonlocal touched
        key = f"user:{uid}"
        load = functools.partial(fetch_member, uid)
        # The member stays pinned for the whole operation: no eviction under it.
        async with cache.pinned(key, load, tags=[f"guild:{uid % GUILDS}"]) as member:
            await asyncio.sleep(0)  # the operation's own await: the other users run meanwhile
            if uid % SAMPLE_EVERY == 0:
                live["locks"] = max(live["locks"], locks.active_keys())
                live["queues"] = max(live["queues"], queue.active_keys())
                live["pinned"] = max(live["pinned"], cache.statistics().pinned)
            touched += member.id == uid

    async def one_user(uid: int) -> None:
        async with locks(uid):
            await queue.run(uid, functools.partial(operation, uid))

    async def sweep_all() -> None:
        await clock.advance(CACHE_TTL + SWEEP_INTERVAL)  # the cache's own sweeper fires
        gc.collect()

    # Warm-up: imports, code paths, allocator arenas; then everything swept.
    await drive(range(-WARMUP_USERS, 0), one_user, lambda done: None)
    await sweep_all()
    trim()
    baseline, baseline_blocks = rss_mb(), blocks()
    progress(f"steadybot: baseline {baseline:.1f} MB; driving {users:,} users")

    peak = baseline
    started = time.perf_counter()

    def on_round(done: int) -> None:
        nonlocal peak
        peak = max(peak, rss_mb())
        if done % PROGRESS_EVERY == 0:
            stats = cache.statistics()
            progress(
                f"steadybot: {done:>9,} users, RSS {rss_mb():6.1f} MB (peak {peak:.1f}), "
                f"cache {stats.size:,}, evictions {stats.evictions:,}"
            )

    live.update(locks=0, queues=0, pinned=0)
    touched = 0
    before = cache.statistics()
    await drive(range(users), one_user, on_round)
    elapsed = time.perf_counter() - started
    after_run = rss_mb()
    at_end = cache.statistics()
    await sweep_all()
    after_sweep = rss_mb()
    trim()
    after_trim, after_blocks = rss_mb(), blocks()
    swept = cache.statistics()
    await cache.close()
    return {
        "users": users,
        "elapsed": elapsed,
        "rss_mb": {
            "baseline": baseline,
            "peak": peak,
            "after_run": after_run,
            "after_sweep": after_sweep,
            "after_sweep_and_trim": after_trim,
        },
        "growth_mb": peak - baseline,
        "after_sweep_over_baseline_mb": after_trim - baseline,
        "allocated_blocks": {"baseline": baseline_blocks, "after_sweep": after_blocks},
        "max_live_keys": live,
        "all_operations_saw_their_member": touched == users,
        "at_end_of_run": {
            "lock_keys": locks.active_keys(),
            "queue_keys": queue.active_keys(),
            "cache": _stats(at_end),
            "evictions_in_run": at_end.evictions - before.evictions,
            "loads_in_run": at_end.loads - before.loads,
        },
        "after_sweep": {"cache": _stats(swept)},
    }


def _stats(stats: Any) -> JSON:
    fields = ("size", "max_size", "pinned", "loading", "tags", "loads", "evictions", "expirations")
    return {name: getattr(stats, name) for name in fields}


# --- control arm: per-user maps that grow for ever ------------------------------------


async def control_arm(users: int) -> JSON:
    locks: dict[int, asyncio.Lock] = {}
    queues: dict[int, asyncio.Lock] = {}
    cache: dict[str, Member] = {}

    async def one_user(uid: int) -> None:
        lock = locks.setdefault(uid, asyncio.Lock())
        async with lock, queues.setdefault(uid, asyncio.Lock()):
            key = f"user:{uid}"
            member = cache.get(key)
            if member is None:
                member = cache[key] = await fetch_member(uid)
            await asyncio.sleep(0)

    await drive(range(-WARMUP_USERS, 0), one_user, lambda done: None)
    locks.clear()
    queues.clear()
    cache.clear()
    trim()
    baseline, baseline_blocks = rss_mb(), blocks()
    progress(f"control: baseline {baseline:.1f} MB; driving {users:,} users")
    peak = baseline
    started = time.perf_counter()

    def on_round(done: int) -> None:
        nonlocal peak
        peak = max(peak, rss_mb())
        if done % PROGRESS_EVERY == 0:
            progress(
                f"control:   {done:>9,} users, RSS {rss_mb():6.1f} MB, map sizes {len(cache):,}"
            )

    await drive(range(users), one_user, on_round)
    elapsed = time.perf_counter() - started
    trim()  # the naive bot has no sweep: collecting and trimming is all it can do
    after, after_blocks = rss_mb(), blocks()
    return {
        "users": users,
        "elapsed": elapsed,
        "rss_mb": {"baseline": baseline, "peak": peak, "after_run_and_trim": after},
        "allocated_blocks": {"baseline": baseline_blocks, "after_run": after_blocks},
        "growth_mb": peak - baseline,
        "after_run_over_baseline_mb": after - baseline,
        "map_sizes": {"locks": len(locks), "queues": len(queues), "cache": len(cache)},
    }


# --- the run ------------------------------------------------------------------------------


def arms(users: int) -> tuple[JSON, JSON]:
    """Run both arms at once, each in a fresh interpreter (RSS is per process, so they
    do not see each other); their progress goes to our stderr."""
    children = {
        arm: subprocess.Popen(
            [sys.executable, __file__, "--arm", arm, "--users", str(users)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for arm in ("steadybot", "control")
    }
    results: dict[str, JSON] = {}
    for arm, process in children.items():
        out, _ = process.communicate()
        if process.returncode:
            raise SystemExit(f"the {arm} arm failed (exit {process.returncode})")
        results[arm] = json.loads(out)
    return results["steadybot"], results["control"]


def verdicts(report: JSON) -> dict[str, bool]:
    steady = report["steadybot"]
    end = steady["at_end_of_run"]
    swept = steady["after_sweep"]["cache"]
    blocks_before = steady["allocated_blocks"]["baseline"]
    blocks_after = steady["allocated_blocks"]["after_sweep"]
    return {
        f"growth within {GROWTH_LIMIT_MB:.0f} MB": steady["growth_mb"] <= GROWTH_LIMIT_MB,
        f"after the sweep within {AFTER_SWEEP_LIMIT_MB:.0f} MB of the baseline": (
            steady["after_sweep_over_baseline_mb"] <= AFTER_SWEEP_LIMIT_MB
        ),
        "after the sweep, live Python blocks within 1 % of the baseline": (
            blocks_after <= blocks_before * (1 + BLOCKS_MARGIN)
        ),
        "no lock or queue key left": end["lock_keys"] == 0 and end["queue_keys"] == 0,
        "cache size <= cap during the run": end["cache"]["size"] <= end["cache"]["max_size"],
        "no pin, no load left": end["cache"]["pinned"] == 0 and end["cache"]["loading"] == 0,
        "cache and tag index empty after the sweep": swept["size"] == 0 and swept["tags"] == 0,
        "every operation saw its own member": steady["all_operations_saw_their_member"],
    }


def print_report(report: JSON, checks: dict[str, bool]) -> None:
    steady, control = report["steadybot"], report["control"]
    s, c = steady["rss_mb"], control["rss_mb"]
    print(f"\n{steady['users']:,} distinct users, {CONCURRENCY} at a time (RSS in MB):")
    print(f"  {'':28} {'steadybot':>10} {'naive dicts':>12}")
    print(f"  {'baseline':28} {s['baseline']:10.1f} {c['baseline']:12.1f}")
    print(f"  {'peak':28} {s['peak']:10.1f} {c['peak']:12.1f}")
    growth = "growth (peak - baseline)"
    print(f"  {growth:28} {steady['growth_mb']:10.1f} {control['growth_mb']:12.1f}")
    print(f"  {'after the run':28} {s['after_run']:10.1f} {'':>12}")
    print(f"  {'after sweep + gc':28} {s['after_sweep']:10.1f} {'(no sweep)':>12}")
    trimmed = "... + malloc_trim"
    print(f"  {trimmed:28} {s['after_sweep_and_trim']:10.1f} {c['after_run_and_trim']:12.1f}")
    sb, cb = steady["allocated_blocks"], control["allocated_blocks"]
    print(f"  {'allocated blocks, baseline':28} {sb['baseline']:10,} {cb['baseline']:12,}")
    print(f"  {'allocated blocks, at the end':28} {sb['after_sweep']:10,} {cb['after_run']:12,}")
    print(f"  {'elapsed, s':28} {steady['elapsed']:10.1f} {control['elapsed']:12.1f}")
    end = steady["at_end_of_run"]
    print(
        f"  steadybot at the end: lock keys {end['lock_keys']}, queue keys {end['queue_keys']}, "
        f"cache {end['cache']['size']:,}/{end['cache']['max_size']:,} "
        f"(evictions {end['evictions_in_run']:,}), tags {end['cache']['tags']}; "
        f"most live at once: {steady['max_live_keys']}"
    )
    print(f"  naive maps at the end: {control['map_sizes']}")
    for name, ok in checks.items():
        print(f"  [{'ok' if ok else 'FAILED'}] {name}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=USERS, help="distinct user ids")
    parser.add_argument("--arm", choices=["steadybot", "control"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.users < CONCURRENCY or args.users % CONCURRENCY:
        parser.error(f"--users must be a positive multiple of {CONCURRENCY}")
    if args.arm is not None:  # a child: one arm, JSON on stdout
        arm = steadybot_arm if args.arm == "steadybot" else control_arm
        print(json.dumps(asyncio.run(arm(args.users))))
        return 0
    steady, control = arms(args.users)
    report: JSON = {"steadybot": steady, "control": control}
    checks = verdicts(report)
    report["checks"] = checks
    report["settings"] = {
        "concurrency": CONCURRENCY,
        "cache_max_size": CACHE_MAX_SIZE,
        "cache_ttl": CACHE_TTL,
        "warmup_users": WARMUP_USERS,
        "guild_tags": GUILDS,
    }
    report["machine"] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": len(os.sched_getaffinity(0)),
        "cachetools": metadata.version("cachetools"),
        "steadybot": metadata.version("steadybot"),
    }
    report["command"] = "python benchmarks/memory/run.py" + (
        f" --users {args.users}" if args.users != USERS else ""
    )
    report["date"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    if args.users == USERS:  # only the full run is the published figure
        (HERE / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    print_report(report, checks)
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
