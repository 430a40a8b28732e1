"""Drive the emulator's interaction delivery as hard as it goes, in this one process.

An in-process :class:`~steadybot.emulator.Emulator` (rate limits off, no faults, the
default asyncio loop as in ``steadybot demo``) delivers ``/ping`` to ``--endpoint``
from ``--concurrency`` workers, each looping on ``await emulator.send_command(...)``:
build the interaction, sign it (Ed25519), POST it, read the reply and apply it as
Discord would (a type-4 reply creates the response message). After ``--warmup`` seconds
that are not counted, it measures for ``--duration`` seconds. Progress goes to stdout;
the figures, one JSON object, to ``--json FILE`` (or to stdout when it is not given).

Pin this process to one CPU (``run.py`` does) and serve the endpoint on another, so the
figure is what the emulator delivers on one core.

Usage: ``.venv/bin/python benchmarks/emulator/deliver.py --endpoint URL [--duration 10]
[--warmup 2] [--concurrency 64] [--json FILE]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import msgspec

from steadybot.emulator import Emulator, InteractionOutcome, RateLimitSettings

EXPECTED_ACK_TYPE: Final = 4  # CHANNEL_MESSAGE_WITH_SOURCE
PROGRESS_EVERY: Final = 2.0  # seconds


@dataclass
class Tally:
    """What the workers saw in one phase."""

    sent: int = 0
    acknowledged: int = 0
    latencies: list[float] = field(default_factory=list)  # seconds, acknowledged only
    failures: list[str] = field(default_factory=list)


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile of ``values`` (0 when empty)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


async def _worker(emulator: Emulator, number: int, deadline: float, tally: Tally) -> None:
    users, channels = emulator.user_ids, emulator.channel_ids
    turn = number
    while time.perf_counter() < deadline:
        interaction = await emulator.send_command(
            "ping", user_id=users[turn % len(users)], channel_id=channels[turn % len(channels)]
        )
        turn += 1
        tally.sent += 1
        latency = interaction.ack_latency
        if (
            interaction.outcome is InteractionOutcome.ACKNOWLEDGED
            and interaction.ack_type == EXPECTED_ACK_TYPE
            and latency is not None
        ):
            tally.acknowledged += 1
            tally.latencies.append(latency)
        elif len(tally.failures) < 5:
            tally.failures.append(
                f"{interaction.outcome.value} status={interaction.delivery_status}"
                f" ack_type={interaction.ack_type} error={interaction.delivery_error}"
            )


async def _progress(tally: Tally, label: str, started: float, seconds: float) -> None:
    last_sent, last_at = 0, started
    while True:
        await asyncio.sleep(PROGRESS_EVERY)
        now = time.perf_counter()
        rate = (tally.sent - last_sent) / (now - last_at)
        print(
            f"    {label} {min(now - started, seconds):4.0f}/{seconds:.0f} s"
            f"  {rate:7.0f} interactions/s  failed {tally.sent - tally.acknowledged}",
            flush=True,
        )
        last_sent, last_at = tally.sent, now


async def _phase(
    emulator: Emulator, label: str, seconds: float, concurrency: int
) -> tuple[Tally, float, float]:
    """Run the workers for ``seconds``; the tally, wall seconds and CPU seconds used."""
    tally = Tally()
    started, cpu_started = time.perf_counter(), time.process_time()
    progress = asyncio.create_task(_progress(tally, label, started, seconds))
    try:
        await asyncio.gather(
            *(_worker(emulator, n, started + seconds, tally) for n in range(concurrency))
        )
    finally:
        progress.cancel()
    return tally, time.perf_counter() - started, time.process_time() - cpu_started


async def drive(args: argparse.Namespace) -> dict[str, object]:
    async with Emulator(
        seed=args.seed,
        members=args.members,
        faults="none",
        rate_limits=RateLimitSettings(enabled=False),
    ) as emulator:
        emulator.set_interactions_endpoint(args.endpoint)
        first = await emulator.send_command("ping")
        if first.ack_type != EXPECTED_ACK_TYPE:
            raise RuntimeError(
                f"the endpoint did not acknowledge with type 4: {first.outcome.value}"
                f" status={first.delivery_status} error={first.delivery_error}"
            )
        if args.warmup > 0:
            await _phase(emulator, "warm-up   ", args.warmup, args.concurrency)
        tally, wall, cpu = await _phase(emulator, "delivering", args.duration, args.concurrency)
        latencies = tally.latencies
        return {
            "concurrency": args.concurrency,
            "seconds": round(wall, 3),
            "sent": tally.sent,
            "acknowledged": tally.acknowledged,
            "failed": tally.sent - tally.acknowledged,
            "failures": tally.failures,
            "interactions_per_second": round(tally.sent / wall, 1),
            "acknowledged_per_second": round(tally.acknowledged / wall, 1),
            "ack_p50_ms": round(percentile(latencies, 0.50) * 1000, 3),
            "ack_p99_ms": round(percentile(latencies, 0.99) * 1000, 3),
            "ack_max_ms": round(max(latencies, default=0.0) * 1000, 3),
            "cpu_seconds": round(cpu, 3),
            "cpu_busy": round(cpu / wall, 3),
            "emulator_statistics": msgspec.to_builtins(emulator.statistics()),
        }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--endpoint", required=True, help="the interactions endpoint URL")
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=2.0, help="uncounted seconds first")
    parser.add_argument("--concurrency", type=int, default=64, help="concurrent deliveries")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--members", type=int, default=300)
    parser.add_argument("--json", type=Path, help="write the figures here, not to stdout")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        result = asyncio.run(drive(args))
    except (RuntimeError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json is None:
        print(json.dumps(result), flush=True)
    else:
        args.json.write_text(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
