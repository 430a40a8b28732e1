"""Run the endpoint benchmark: steadybot's front door against the bare ASGI floor.

Both apps of :mod:`benchmarks.endpoint.apps` are served at once, each by its own uvicorn
process with identical settings (uvloop, httptools, no access log, one worker,
127.0.0.1, log level warning). After one verification request and a warm-up each, wrk
loads them in alternating rounds (the order flips every round, so neither app always
runs on a warmer machine). The median of the rounds is reported per app, with the ratio
steadybot/bare against the 0.8 target. Requests are pre-signed: Python signs one body
per wrk run and writes it into a Lua script, so wrk does no cryptography.

With two or more CPUs the servers are pinned to CPU 0 and wrk to the others, so the
load generator does not steal the server's core.

Usage: ``.venv/bin/python benchmarks/endpoint/run.py [--duration 8] [--rounds 5]`` (or
``make bench``). Exits 1 when any request got a non-2xx answer; the ratio is reported,
not enforced.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parents[2]
HERE: Final = Path(__file__).resolve().parent
TARGET_RATIO: Final = 0.8
APPS: Final = {
    "bare": "benchmarks.endpoint.apps:bare",
    "steadybot": "benchmarks.endpoint.apps:steadybot_app",
}
PATH: Final = "/interactions"
EXPECTED_REPLY_TYPE: Final = 4  # CHANNEL_MESSAGE_WITH_SOURCE
STARTUP_TIMEOUT: Final = 20.0

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


class BenchmarkError(Exception):
    """The benchmark cannot run or produced an invalid measurement."""


@dataclass(frozen=True)
class WrkResult:
    """What one wrk run reports."""

    app: str
    round: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int


@dataclass(frozen=True)
class Summary:
    """The median of an app's rounds."""

    app: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int
    rounds_rps: list[float]


# --- wrk ------------------------------------------------------------------------------


def ensure_wrk() -> str:
    """The path of wrk, installing Debian's package when it is missing and we may."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise BenchmarkError("wrk is not installed: run `sudo apt-get install -y wrk`")
    print("wrk not found; installing it with apt-get ...", flush=True)
    install = ["apt-get", "install", "-y", "wrk"]
    if subprocess.run(install, check=False).returncode != 0:
        # A fresh container has no package lists yet.
        subprocess.run(["apt-get", "update"], check=False)
        subprocess.run(install, check=False)
    found = shutil.which("wrk")
    if not found:
        raise BenchmarkError("wrk is missing and `apt-get install -y wrk` failed; install it")
    return found


def wrk_version(wrk: str) -> str:
    out = subprocess.run([wrk, "-v"], capture_output=True, text=True, check=False)
    return (out.stdout or out.stderr).splitlines()[0].strip()


def _lua_string(text: str) -> str:
    level = 0
    while f"]{'=' * level}]" in text:
        level += 1
    return f"[{'=' * level}[{text}]{'=' * level}]"


def write_lua(directory: Path) -> Path:
    """A wrk script POSTing one interaction freshly signed by Python."""
    from benchmarks.endpoint.apps import interaction_body, sign

    body = interaction_body()
    timestamp = str(int(time.time()))
    lines = [
        'wrk.method = "POST"',
        f"wrk.body = {_lua_string(body.decode())}",
        'wrk.headers["Content-Type"] = "application/json"',
        f'wrk.headers["X-Signature-Ed25519"] = "{sign(body, timestamp)}"',
        f'wrk.headers["X-Signature-Timestamp"] = "{timestamp}"',
    ]
    path = directory / "interaction.lua"
    path.write_text("\n".join(lines) + "\n")
    return path


_UNITS: Final = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _milliseconds(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value)
    if not match:
        raise BenchmarkError(f"unreadable wrk latency {value!r}")
    return float(match[1]) * _UNITS[match[2]]


def parse_wrk(output: str, app: str, round_: int) -> WrkResult:
    """Requests/sec, the 50 % and 99 % latencies and the error counts of wrk's report."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.MULTILINE)
    if not (rps and p50 and p99):
        raise BenchmarkError(f"cannot read wrk's report:\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return WrkResult(
        app=app,
        round=round_,
        requests_per_second=float(rps[1]),
        p50_ms=_milliseconds(p50[1]),
        p99_ms=_milliseconds(p99[1]),
        non_2xx=int(non_2xx[1]) if non_2xx else 0,
        socket_errors=sum(int(n) for n in errors.groups()) if errors else 0,
    )


@dataclass(frozen=True)
class Load:
    """How wrk loads a server."""

    wrk: str
    threads: int
    connections: int
    cpus: set[int] | None

    def run(self, url: str, seconds: int, workdir: Path) -> str:
        command = [
            self.wrk,
            f"-t{self.threads}",
            f"-c{self.connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(write_lua(workdir)),
            url,
        ]
        out = subprocess.run(
            command,
            capture_output=True,
            text=True,
            check=False,
            preexec_fn=self._pin if self.cpus else None,
        )
        if out.returncode != 0:
            raise BenchmarkError(f"wrk failed ({out.returncode}): {out.stderr or out.stdout}")
        return out.stdout

    def _pin(self) -> None:
        if self.cpus:
            os.sched_setaffinity(0, self.cpus)


# --- servers ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _server_env() -> dict[str, str]:
    # Settings come from apps.py alone, never from the caller's STEADYBOT_* variables.
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEADYBOT_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


@contextmanager
def serve(target: str, port: int, cpus: set[int] | None) -> Iterator[str]:
    """Serve ``target`` with uvicorn in a subprocess; yields the interactions URL."""
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        target,
        "--host=127.0.0.1",
        f"--port={port}",
        "--loop=uvloop",
        "--http=httptools",
        "--no-access-log",
        "--lifespan=on",
        "--workers=1",
        "--log-level=warning",
    ]
    process = subprocess.Popen(command, cwd=ROOT, env=_server_env())
    try:
        if cpus:
            os.sched_setaffinity(process.pid, cpus)
        _wait_listening(port, process)
        yield f"http://127.0.0.1:{port}{PATH}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchmarkError(f"server on port {port} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise BenchmarkError(f"server on port {port} did not listen within {STARTUP_TIMEOUT}s")


def verify(app: str, url: str) -> None:
    """One signed request must get 200 and a type-4 reply saying pong; else fail loudly."""
    from benchmarks.endpoint.apps import interaction_body, sign

    body = interaction_body()
    timestamp = str(int(time.time()))
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "X-Signature-Ed25519": sign(body, timestamp),
            "X-Signature-Timestamp": timestamp,
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            status, raw = response.status, response.read()
    except OSError as exc:
        raise BenchmarkError(f"{app}: verification request failed: {exc}") from exc
    reply = json.loads(raw)
    data = reply.get("data") if isinstance(reply, dict) else None
    if (
        status != 200
        or reply.get("type") != EXPECTED_REPLY_TYPE
        or not isinstance(data, dict)
        or data.get("content") != "pong"
    ):
        raise BenchmarkError(f"{app}: expected 200 with a type-4 'pong', got {status} {raw!r}")
    print(f"  {app:<9} verified: 200 {raw.decode()}", flush=True)


# --- the run ------------------------------------------------------------------------------


def summarise(app: str, results: Sequence[WrkResult]) -> Summary:
    mine = [r for r in results if r.app == app]

    def median(value: Callable[[WrkResult], float]) -> float:
        return statistics.median(value(r) for r in mine)

    return Summary(
        app=app,
        requests_per_second=median(lambda r: r.requests_per_second),
        p50_ms=median(lambda r: r.p50_ms),
        p99_ms=median(lambda r: r.p99_ms),
        non_2xx=sum(r.non_2xx for r in mine),
        socket_errors=sum(r.socket_errors for r in mine),
        rounds_rps=[r.requests_per_second for r in mine],
    )


def measure(urls: dict[str, str], load: Load, args: argparse.Namespace) -> list[WrkResult]:
    results: list[WrkResult] = []
    with tempfile.TemporaryDirectory(prefix="steadybot-bench-") as tmp:
        workdir = Path(tmp)
        for app, url in urls.items():
            print(f"  warm-up {app} ({args.warmup}s)", flush=True)
            load.run(url, args.warmup, workdir)
        order = list(urls)
        for round_ in range(1, args.rounds + 1):
            for app in order:
                print(f"  round {round_}/{args.rounds} {app:<9} ({args.duration}s) ...", end="")
                sys.stdout.flush()
                result = parse_wrk(load.run(urls[app], args.duration, workdir), app, round_)
                results.append(result)
                print(
                    f" {result.requests_per_second:9.0f} req/s  p50 {result.p50_ms:6.2f} ms"
                    f"  p99 {result.p99_ms:6.2f} ms  non-2xx {result.non_2xx}",
                    flush=True,
                )
            order.reverse()
    return results


def print_table(bare: Summary, steady: Summary, ratio: float) -> None:
    print()
    print(f"{'app':<10} {'req/s (median)':>15} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}")
    for s in (bare, steady):
        print(
            f"{s.app:<10} {s.requests_per_second:>15.0f} {s.p50_ms:>8.2f} {s.p99_ms:>8.2f}"
            f" {s.non_2xx:>8}"
        )
    verdict = "met" if ratio >= TARGET_RATIO else "NOT met"
    print(f"\nratio steadybot/bare: {ratio:.3f}  (target >= {TARGET_RATIO}: {verdict})")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine(wrk: str) -> dict[str, object]:
    packages = ["steadybot", "uvicorn", "uvloop", "httptools", "msgspec", "pynacl"]
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "cpu_model": _cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "wrk": wrk_version(wrk),
        "packages": {name: metadata.version(name) for name in packages},
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=int, default=8, help="seconds per measured run")
    parser.add_argument("--rounds", type=int, default=5, help="measured runs per app")
    parser.add_argument("--warmup", type=int, default=3, help="warm-up seconds per app")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--no-pin", action="store_true", help="do not pin servers and wrk")
    parser.add_argument("--output", type=Path, default=HERE / "results.json")
    return parser.parse_args(argv)


def _pinning(args: argparse.Namespace) -> tuple[set[int] | None, set[int] | None]:
    usable = sorted(os.sched_getaffinity(0))
    if args.no_pin or len(usable) < 2:
        return None, None
    return {usable[0]}, set(usable[1:])


def run(args: argparse.Namespace) -> int:
    wrk = ensure_wrk()
    server_cpus, wrk_cpus = _pinning(args)
    load = Load(wrk=wrk, threads=args.threads, connections=args.connections, cpus=wrk_cpus)
    print(
        f"endpoint benchmark: {args.rounds} rounds x {len(APPS)} apps x {args.duration}s, "
        f"wrk -t{args.threads} -c{args.connections}, "
        f"pinning {'off' if server_cpus is None else f'server {server_cpus} wrk {wrk_cpus}'}",
        flush=True,
    )
    with ExitStack() as stack:
        urls = {
            app: stack.enter_context(serve(t, free_port(), server_cpus)) for app, t in APPS.items()
        }
        for app, url in urls.items():
            verify(app, url)
        results = measure(urls, load, args)
    bare, steady = summarise("bare", results), summarise("steadybot", results)
    ratio = steady.requests_per_second / bare.requests_per_second
    print_table(bare, steady, ratio)
    report = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "settings": {
            "duration_s": args.duration,
            "rounds": args.rounds,
            "warmup_s": args.warmup,
            "wrk_threads": args.threads,
            "wrk_connections": args.connections,
            "server_cpus": sorted(server_cpus) if server_cpus else None,
            "wrk_cpus": sorted(wrk_cpus) if wrk_cpus else None,
            "uvicorn": "loop=uvloop http=httptools access_log=off workers=1 host=127.0.0.1",
        },
        "machine": machine(wrk),
        "bare": asdict(bare),
        "steadybot": asdict(steady),
        "ratio": round(ratio, 4),
        "target_ratio": TARGET_RATIO,
        "target_met": ratio >= TARGET_RATIO,
        "runs": [asdict(r) for r in results],
    }
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"results written to {args.output}")
    failures = bare.non_2xx + steady.non_2xx
    if failures:
        print(f"FAILED: {failures} non-2xx responses; the figures are not valid", file=sys.stderr)
        return 1
    if bare.socket_errors or steady.socket_errors:
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
