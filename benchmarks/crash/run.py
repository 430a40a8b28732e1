"""The bigger kill -9 run: ``python -m benchmarks.crash.run [--kills 10] [--interactions 1000]``.

Runs :func:`benchmarks.crash.harness.run_crash` on SQLite and on PostgreSQL (a fresh
schema in ``STEADYBOT_TEST_DATABASE_URL``, default the local ``test`` database), prints
each result and writes ``benchmarks/crash/results.json``. Exit status 1 if any run
found a duplicate, a loss or a ledger discrepancy.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path

from benchmarks.crash.harness import run_crash

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
from storage_fixtures import fresh_database_url

RESULTS = Path(__file__).with_name("results.json")


async def main(args: argparse.Namespace) -> int:
    results = []
    for backend in args.backends:
        with tempfile.TemporaryDirectory() as directory:
            async with fresh_database_url(backend, Path(directory)) as url:
                result = await run_crash(
                    url,
                    backend=backend,
                    interactions=args.interactions,
                    kills=args.kills,
                    concurrency=args.concurrency,
                    seed=args.seed,
                    kill_after=(args.kill_min, args.kill_max),
                    drain_timeout=120.0,
                )
        print(json.dumps(result.to_json()), flush=True)
        results.append(result.to_json())
    RESULTS.write_text(json.dumps({"command": " ".join(sys.argv), "runs": results}, indent=2))
    return 0 if all(run["ok"] for run in results) else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--interactions", type=int, default=1000)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--kill-min", type=float, default=1.5)
    parser.add_argument("--kill-max", type=float, default=4.0)
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"])
    sys.exit(asyncio.run(main(parser.parse_args())))
