"""The endpoint benchmark without sockets: both ASGI apps driven directly, in-process.

wrk figures move with whatever else the machine runs; this driver measures what the two
apps themselves cost. Both get the same pre-signed request, each in its own task (as
uvicorn runs a request), on a uvloop loop after their lifespan startup. Batches of the
two apps alternate and each batch is timed with ``time.process_time()`` (CPU time of
this process, so another program on the machine disturbs it less than wall time); the
median batch per app is reported as CPU µs per request, with the ratio bare/steadybot,
which is what the throughput ratio steadybot/bare tends to when the server is CPU-bound.

Usage: ``.venv/bin/python benchmarks/endpoint/inprocess.py [--batch 2000] [--rounds 15]``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any, Final

import uvloop

ROOT: Final = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.endpoint.apps import bare, interaction_body, sign, steadybot_app  # noqa: E402
from benchmarks.endpoint.apps import bot as steadybot_bot  # noqa: E402

Message = MutableMapping[str, Any]
PATH: Final = "/interactions"


def _request() -> tuple[dict[str, Any], bytes]:
    body = interaction_body()
    timestamp = str(int(time.time()))
    headers = [
        (b"host", b"127.0.0.1"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-signature-ed25519", sign(body, timestamp).encode()),
        (b"x-signature-timestamp", timestamp.encode()),
    ]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": PATH,
        "raw_path": PATH.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    return scope, body


async def _lifespan(app: Any) -> None:
    events = iter([{"type": "lifespan.startup"}])
    started = asyncio.get_running_loop().create_future()

    async def receive() -> Message:
        try:
            return next(events)
        except StopIteration:
            await asyncio.Event().wait()  # never shut down during the run
            raise AssertionError("unreachable") from None

    async def send(message: Message) -> None:
        if message["type"] == "lifespan.startup.complete" and not started.done():
            started.set_result(None)

    asyncio.get_running_loop().create_task(app({"type": "lifespan"}, receive, send))
    await started


async def _batch(app: Any, scope: dict[str, Any], body: bytes, count: int) -> float:
    """CPU seconds for ``count`` requests, one task each, checking every reply."""
    loop = asyncio.get_running_loop()
    request = {"type": "http.request", "body": body, "more_body": False}
    statuses: list[int] = []

    async def receive() -> Message:
        return request

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    started = time.process_time()
    for _ in range(count):
        await loop.create_task(app(scope, receive, send))
    elapsed = time.process_time() - started
    if statuses != [200] * count:
        raise SystemExit(f"unexpected statuses: {sorted(set(statuses))}")
    return elapsed


async def main(batch: int, rounds: int) -> None:
    scope, body = _request()
    apps = {"bare": bare, "steadybot": steadybot_app}
    await _lifespan(steadybot_app)  # gc.freeze() and the bot's start, as under uvicorn
    for app in apps.values():  # warm-up
        await _batch(app, scope, body, batch)
    per_request: dict[str, list[float]] = {name: [] for name in apps}
    order = list(apps)
    for _ in range(rounds):
        for name in order:
            per_request[name].append(await _batch(apps[name], scope, body, batch) / batch)
        order.reverse()  # neither app always runs second
    medians = {name: statistics.median(values) * 1e6 for name, values in per_request.items()}
    for name, values in per_request.items():
        spread = f"{min(values) * 1e6:.1f}-{max(values) * 1e6:.1f}"
        print(f"{name:10s} {medians[name]:6.1f} µs/request (batches {spread})")
    print(f"ratio bare/steadybot {medians['bare'] / medians['steadybot']:.3f}")
    handled = steadybot_bot.statistics().answered_directly
    print(f"(steadybot answered {handled} directly)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=15)
    arguments = parser.parse_args()
    uvloop.run(main(arguments.batch, arguments.rounds))
