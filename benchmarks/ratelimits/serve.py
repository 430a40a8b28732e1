"""Run an emulator seeded for the rate-limit benchmark, until SIGTERM or SIGINT.

Discord's rate limits are on (the emulator's defaults: message create and edit 5 per
5 s per channel, delete 5 per 1 s, bulk delete 1 per 1 s, global 50 per second), no
faults. ``--scenario burst`` makes 10 text channels with 80 bot messages each (20 to
edit, 60 to delete); ``--scenario cleanup`` fills one guild channel with young and
old (15 days) messages and one DM. Once listening it prints one JSON line: the
emulator's info plus the seeded ``messages`` per channel; on SIGTERM a second line:
the emulator's statistics and the messages left per seeded channel.

Usage: ``.venv/bin/python benchmarks/ratelimits/serve.py --scenario burst|cleanup``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
from collections.abc import Sequence

import msgspec

from steadybot.emulator import Emulator

DAY = 24 * 3600.0
BURST_CHANNELS = 10
BURST_SEEDED = 80  # per channel: 20 edited, 60 deleted


async def seed(
    emulator: Emulator, scenario: str, young: int, old: int, dm: int
) -> dict[str, list[str]]:
    world = emulator.world
    seeded: dict[str, list[str]] = {}
    if scenario == "burst":
        channels = list(emulator.channel_ids)
        while len(channels) < BURST_CHANNELS:
            channels.append(world.add_channel(f"burst-{len(channels)}", 0, parent_id=None)["id"])
        for channel in channels[:BURST_CHANNELS]:
            seeded[channel] = [
                (await emulator.post_message(channel, {"content": f"seed {n}"}))["id"]
                for n in range(BURST_SEEDED)
            ]
        return seeded
    channel = emulator.channel_ids[0]
    ages = [0.0] * young + [15 * DAY] * old
    seeded[channel] = [
        (await emulator.post_message(channel, {"content": "x"}, age=age))["id"] for age in ages
    ]
    dm_channel = emulator.open_dm(emulator.user_ids[0])
    seeded[dm_channel] = [
        (await emulator.post_message(dm_channel, {"content": "x"}))["id"] for _ in range(dm)
    ]
    return seeded


async def serve(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with Emulator(seed=args.seed, members=20, port=args.port, faults="none") as emulator:
        seeded = await seed(emulator, args.scenario, args.young, args.old, args.dm)
        print(json.dumps({**emulator.info(), "pid": os.getpid(), "messages": seeded}), flush=True)
        await stop.wait()
        left = {channel: len(emulator.messages(channel)) for channel in seeded}
        statistics = msgspec.to_builtins(emulator.statistics())
        print(json.dumps({"statistics": statistics, "left": left}), flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--scenario", choices=("burst", "cleanup"), required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--young", type=int, default=750, help="cleanup: young guild messages")
    parser.add_argument("--old", type=int, default=100, help="cleanup: 15-day-old ones")
    parser.add_argument("--dm", type=int, default=150, help="cleanup: messages in the DM")
    asyncio.run(serve(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
