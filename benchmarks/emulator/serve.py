"""Run the emulator for the REST benchmark until SIGTERM or SIGINT.

Rate limits off, no faults, the default asyncio loop (as ``steadybot demo`` and
``steadybot emulate`` run it). Once listening it prints one JSON line on stdout: the
emulator's info (``api_base``, ``bot_token``, ``channel_ids``, ...) and its ``pid``.
On SIGTERM it prints a second JSON line, the emulator's statistics, and exits.

Usage: ``.venv/bin/python benchmarks/emulator/serve.py [--port 0] [--seed 0] [--members 300]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from collections.abc import Sequence

import msgspec

from steadybot.emulator import Emulator, RateLimitSettings


async def serve(port: int, seed: int, members: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with Emulator(
        seed=seed,
        members=members,
        port=port,
        faults="none",
        rate_limits=RateLimitSettings(enabled=False),
    ) as emulator:
        print(json.dumps({**emulator.info(), "pid": os.getpid()}), flush=True)
        await stop.wait()
        print(json.dumps(msgspec.to_builtins(emulator.statistics())), flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--members", type=int, default=300)
    args = parser.parse_args(argv)
    try:
        asyncio.run(serve(args.port, args.seed, args.members))
    except OSError as exc:
        print(f"error: cannot listen on port {args.port}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
