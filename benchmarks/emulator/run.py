"""Run the emulator benchmark: what the emulator serves and delivers on one CPU core.

Two measurements, each with the emulator alone on CPU 0 (rate limits off, no faults,
the default asyncio loop as ``steadybot demo`` runs it):

1. **REST**: the emulator runs in its own process (:mod:`serve`) and wrk, pinned to the
   other CPUs, loads two routes in turn: ``GET /channels/{id}/messages/{id}`` (one message
   created first) and ``POST /channels/{id}/messages``. POST grows the message store by
   one message per request; the run is bounded by ``--rest-duration`` and the count is
   reported.
2. **Interactions**: :mod:`deliver` runs an in-process emulator that delivers signed
   ``/ping`` interactions from ``--concurrency`` concurrent ``send_command`` calls to a
   trivial endpoint (:mod:`pong`, uvicorn on another CPU, answers type 4 unread), so the
   emulator is what is measured.

Both are set against what ``steadybot demo`` asks of the emulator, giving a headroom
factor. wrk parsing, the wrk install check, uvicorn serving and the machine description
come from ``benchmarks/endpoint/run.py``.

Usage: ``.venv/bin/python benchmarks/emulator/run.py [--rest-duration 10]
[--deliver-duration 10] [--concurrency 64]``. Exits 1 when a REST request got a non-2xx
answer or a delivery was not acknowledged, 2 when the benchmark cannot run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import select
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Final

ROOT: Final = Path(__file__).resolve().parents[2]
HERE: Final = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.endpoint.run import (  # noqa: E402
    STARTUP_TIMEOUT,
    BenchmarkError,
    WrkResult,
    _lua_string,
    _server_env,
    ensure_wrk,
    free_port,
    machine,
    parse_wrk,
    serve,
)

# What `steadybot demo` asks of the emulator: ~380 interactions and ~1000 REST calls in
# ~20 s (one run here: 376 interactions in 25 s), i.e. about 20 interactions/s and
# 50-100 REST calls/s at peak. The headroom factors use the high ends.
DEMO_INTERACTIONS_PER_SECOND: Final = 20.0
DEMO_REST_PER_SECOND_PEAK: Final = 100.0
PONG_APP: Final = "benchmarks.emulator.pong:app"
JSON = dict[str, Any]


@dataclass(frozen=True)
class RestResult:
    """One wrk run against one emulator route."""

    route: str
    requests: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int
    server_cpu_busy: float  # share of one core the emulator process used during the run


# --- CPU pinning and accounting -----------------------------------------------------------


def pinning(no_pin: bool) -> tuple[set[int] | None, set[int] | None]:
    """The emulator's CPU and the CPUs of everything else (wrk, the endpoint)."""
    usable = sorted(os.sched_getaffinity(0))
    if no_pin or len(usable) < 2:
        return None, None
    return {usable[0]}, set(usable[1:])


def _pinned(cpus: set[int] | None) -> Callable[[], None] | None:
    """A ``preexec_fn`` pinning the child to ``cpus`` from its first instruction."""
    if not cpus:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds process ``pid`` has used (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- the emulator as a server (REST) ------------------------------------------------------


@dataclass
class EmulatorProcess:
    process: subprocess.Popen[str]
    info: JSON

    def request(self, method: str, path: str, body: JSON | None = None) -> tuple[int, JSON]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.info["api_base"] + path,
            data=data,
            method=method,
            headers={
                "Authorization": f"Bot {self.info['bot_token']}",
                "Content-Type": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, json.loads(response.read())
        except OSError as exc:
            raise BenchmarkError(f"{method} {path} failed: {exc}") from exc


@contextmanager
def emulator_server(cpus: set[int] | None) -> Iterator[EmulatorProcess]:
    """:mod:`serve` in a subprocess on ``cpus``; on exit its statistics go into ``info``."""
    command = [sys.executable, str(HERE / "serve.py"), "--port", str(free_port())]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=_server_env(),
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=_pinned(cpus),
    )
    assert process.stdout is not None
    try:
        ready, _, _ = select.select([process.stdout], [], [], STARTUP_TIMEOUT)
        line = process.stdout.readline() if ready else ""
        if not line:
            raise BenchmarkError(f"the emulator did not start within {STARTUP_TIMEOUT}s")
        server = EmulatorProcess(process, json.loads(line))
        yield server
    finally:
        process.terminate()
        try:
            tail, _ = process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            tail, _ = process.communicate()
    if tail.strip():
        server.info["statistics"] = json.loads(tail.strip().splitlines()[-1])


def write_lua(directory: Path, name: str, method: str, token: str, body: str | None) -> Path:
    """A wrk script sending ``method`` with the bot token (and a JSON ``body``)."""
    lines = [
        f'wrk.method = "{method}"',
        f'wrk.headers["Authorization"] = {_lua_string("Bot " + token)}',
    ]
    if body is not None:
        lines += [
            f"wrk.body = {_lua_string(body)}",
            'wrk.headers["Content-Type"] = "application/json"',
        ]
    path = directory / f"{name}.lua"
    path.write_text("\n".join(lines) + "\n")
    return path


def run_wrk(
    wrk: str, url: str, script: Path, seconds: int, args: argparse.Namespace, cpus: set[int] | None
) -> str:
    command = [
        wrk,
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{seconds}s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    out = subprocess.run(
        command, capture_output=True, text=True, check=False, preexec_fn=_pinned(cpus)
    )
    if out.returncode != 0:
        raise BenchmarkError(f"wrk failed ({out.returncode}): {out.stderr or out.stdout}")
    return out.stdout


def measure_rest(
    wrk: str, args: argparse.Namespace, emulator_cpus: set[int] | None, other: set[int] | None
) -> tuple[list[RestResult], JSON]:
    with emulator_server(emulator_cpus) as server, tempfile.TemporaryDirectory() as tmp:
        info = server.info
        channel = info["channel_ids"][0]
        messages = f"/channels/{channel}/messages"
        status, created = server.request("POST", messages, {"content": "benchmark"})
        if status != 200 or "id" not in created:
            raise BenchmarkError(f"creating a message answered {status} {created}")
        status, read = server.request("GET", f"{messages}/{created['id']}")
        if status != 200 or read.get("content") != "benchmark":
            raise BenchmarkError(f"reading the message back answered {status} {read}")
        print(f"  emulator pid {info['pid']} at {info['api_base']}, message {created['id']}")
        token, workdir = info["bot_token"], Path(tmp)
        routes = {
            "GET /channels/{channel_id}/messages/{message_id}": (
                f"{messages}/{created['id']}",
                write_lua(workdir, "get", "GET", token, None),
            ),
            "POST /channels/{channel_id}/messages": (
                messages,
                write_lua(workdir, "post", "POST", token, json.dumps({"content": "benchmark"})),
            ),
        }
        get_path, get_script = next(iter(routes.values()))
        print(f"  warm-up GET ({args.warmup}s)", flush=True)
        run_wrk(wrk, info["api_base"] + get_path, get_script, args.warmup, args, other)
        results = []
        for route, (path, script) in routes.items():
            print(f"  {route} ({args.rest_duration}s) ...", end="", flush=True)
            cpu_before, started = cpu_seconds(info["pid"]), time.perf_counter()
            output = run_wrk(wrk, info["api_base"] + path, script, args.rest_duration, args, other)
            busy = (cpu_seconds(info["pid"]) - cpu_before) / (time.perf_counter() - started)
            result = rest_result(route, parse_wrk(output, route, 1), output, busy)
            results.append(result)
            print(
                f" {result.requests_per_second:7.0f} req/s  p50 {result.p50_ms:6.2f} ms"
                f"  p99 {result.p99_ms:6.2f} ms  non-2xx {result.non_2xx}"
                f"  emulator CPU {result.server_cpu_busy:.0%}",
                flush=True,
            )
    return results, server.info.get("statistics", {})


def rest_result(route: str, parsed: WrkResult, output: str, busy: float) -> RestResult:
    total = re.search(r"(\d+) requests in", output)
    return RestResult(
        route=route,
        requests=int(total[1]) if total else 0,
        requests_per_second=parsed.requests_per_second,
        p50_ms=parsed.p50_ms,
        p99_ms=parsed.p99_ms,
        non_2xx=parsed.non_2xx,
        socket_errors=parsed.socket_errors,
        server_cpu_busy=round(busy, 3),
    )


# --- the emulator delivering interactions -------------------------------------------------


def _endpoint_cpu(url: str) -> float:
    with urllib.request.urlopen(url, timeout=5) as response:
        seconds: float = json.loads(response.read())["cpu_seconds"]
        return seconds


def measure_delivery(
    args: argparse.Namespace, emulator_cpus: set[int] | None, other: set[int] | None
) -> JSON:
    with (
        serve(PONG_APP, free_port(), other) as endpoint,
        tempfile.TemporaryDirectory() as tmp,
    ):
        figures = Path(tmp) / "delivery.json"
        command = [
            sys.executable,
            str(HERE / "deliver.py"),
            "--endpoint",
            endpoint,
            "--duration",
            str(args.deliver_duration),
            "--warmup",
            str(args.warmup),
            "--concurrency",
            str(args.concurrency),
            "--json",
            str(figures),
        ]
        print(f"  endpoint {endpoint}; {args.concurrency} concurrent deliveries", flush=True)
        cpu_before = _endpoint_cpu(endpoint)
        out = subprocess.run(
            command, cwd=ROOT, env=_server_env(), check=False, preexec_fn=_pinned(emulator_cpus)
        )
        endpoint_cpu = _endpoint_cpu(endpoint) - cpu_before
        if out.returncode != 0 or not figures.exists():
            raise BenchmarkError(f"the delivery driver failed ({out.returncode})")
        result: JSON = json.loads(figures.read_text())
    # The endpoint's CPU per interaction over the driver's whole run (warm-up included):
    # how far the endpoint was from being the limit.
    delivered = result["emulator_statistics"]["delivered"]
    per_interaction = endpoint_cpu / delivered if delivered else 0.0
    result["endpoint_cpu_ms_per_interaction"] = round(per_interaction * 1000, 4)
    result["endpoint_capacity_per_second"] = round(1 / per_interaction) if per_interaction else None
    print(
        f"  delivered {result['interactions_per_second']:7.0f} interactions/s"
        f"  ack p50 {result['ack_p50_ms']:6.2f} ms  p99 {result['ack_p99_ms']:6.2f} ms"
        f"  failed {result['failed']}  emulator CPU {result['cpu_busy']:.0%}"
        f"  endpoint {per_interaction * 1000:.3f} CPU ms/interaction",
        flush=True,
    )
    return result


# --- the run ------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rest-duration", type=int, default=10, help="seconds per REST route")
    parser.add_argument("--deliver-duration", type=int, default=10, help="seconds delivering")
    parser.add_argument("--warmup", type=int, default=2, help="uncounted seconds before each")
    parser.add_argument("--concurrency", type=int, default=64, help="concurrent deliveries")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs")
    parser.add_argument("--output", type=Path, default=HERE / "results.json")
    return parser.parse_args(argv)


def print_summary(rest: list[RestResult], delivery: JSON, headroom: JSON) -> None:
    print()
    print(f"{'on one core':<52} {'per second':>10} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for r in rest:
        print(
            f"{'REST ' + r.route:<52} {r.requests_per_second:>10.0f} {r.p50_ms:>8.2f}"
            f" {r.p99_ms:>8.2f} {r.non_2xx + r.socket_errors:>7}"
        )
    print(
        f"{'interactions delivered and acknowledged':<52}"
        f" {delivery['interactions_per_second']:>10.0f} {delivery['ack_p50_ms']:>8.2f}"
        f" {delivery['ack_p99_ms']:>8.2f} {delivery['failed']:>7}"
    )
    print(
        f"\nheadroom over the demo: REST x{headroom['rest']:.0f}"
        f" (slowest route vs {DEMO_REST_PER_SECOND_PEAK:.0f}/s),"
        f" interactions x{headroom['interactions']:.0f}"
        f" (vs {DEMO_INTERACTIONS_PER_SECOND:.0f}/s)"
    )


def run(args: argparse.Namespace) -> int:
    wrk = ensure_wrk()
    emulator_cpus, other = pinning(args.no_pin)
    print(
        f"emulator benchmark: REST 2 routes x {args.rest_duration}s"
        f" (wrk -t{args.threads} -c{args.connections}),"
        f" delivery {args.deliver_duration}s x {args.concurrency} concurrent,"
        f" pinning {'off' if emulator_cpus is None else f'emulator {emulator_cpus} rest {other}'}",
        flush=True,
    )
    if emulator_cpus is None:
        print("warning: not pinned; figures are not 'one core'", file=sys.stderr)
    print("REST: emulator serving, wrk loading", flush=True)
    rest, rest_statistics = measure_rest(wrk, args, emulator_cpus, other)
    print("interactions: emulator delivering to a trivial endpoint", flush=True)
    delivery = measure_delivery(args, emulator_cpus, other)
    headroom = {
        "rest": round(min(r.requests_per_second for r in rest) / DEMO_REST_PER_SECOND_PEAK, 1),
        "interactions": round(
            delivery["interactions_per_second"] / DEMO_INTERACTIONS_PER_SECOND, 1
        ),
    }
    print_summary(rest, delivery, headroom)
    report = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "settings": {
            "rest_duration_s": args.rest_duration,
            "deliver_duration_s": args.deliver_duration,
            "warmup_s": args.warmup,
            "concurrency": args.concurrency,
            "wrk_threads": args.threads,
            "wrk_connections": args.connections,
            "emulator_cpus": sorted(emulator_cpus) if emulator_cpus else None,
            "other_cpus": sorted(other) if other else None,
            "emulator": "rate limits off, faults none, default asyncio loop",
        },
        "machine": {**machine(wrk), "aiohttp": metadata.version("aiohttp")},
        "rest": [asdict(r) for r in rest],
        "rest_emulator_statistics": rest_statistics,
        "interactions": delivery,
        "demo_needs": {
            "interactions_per_second": DEMO_INTERACTIONS_PER_SECOND,
            "rest_calls_per_second_peak": DEMO_REST_PER_SECOND_PEAK,
        },
        "headroom": headroom,
    }
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"results written to {args.output}")
    errors = sum(r.non_2xx for r in rest) + int(delivery["failed"])
    if errors:
        print(f"FAILED: {errors} non-2xx answers or failed deliveries", file=sys.stderr)
        return 1
    if any(r.socket_errors for r in rest):
        print("warning: wrk reported socket errors; see results.json", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return run(parse_args(argv))
    except BenchmarkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
