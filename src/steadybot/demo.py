"""``steadybot demo``: a real bot, served over a socket, driven through the emulator.

The demo starts the local Discord emulator, serves ``examples/hello.py`` with uvicorn
on 127.0.0.1 (the emulator's keys and API base in its settings, exactly as a user
would configure a real bot), sends signed interactions from several simulated users at
once and checks what Discord would have shown them. It exits non-zero when any
interaction failed or any check did not hold. (The full crowd and the applications
story replace this scenario in the emulator issue.)
"""

from __future__ import annotations

import asyncio
import importlib
import os
import socket
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn
from rich.console import Console
from rich.table import Table

from steadybot.bot import Bot
from steadybot.emulator import EmulatedInteraction, Emulator, InteractionOutcome

__all__ = ["DemoReport", "run_demo"]

_COMPLETION_TIMEOUT = 30.0  # seconds the demo waits for slow answers to land
_POLL_INTERVAL = 0.05


@dataclass
class DemoReport:
    """What the demo saw."""

    interactions: list[tuple[str, EmulatedInteraction]] = field(default_factory=list)
    checks: dict[str, tuple[bool, str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        failed = any(i.outcome is not InteractionOutcome.ACKNOWLEDGED for _, i in self.interactions)
        return not failed and all(ok for ok, _ in self.checks.values())


def _load_hello(emulator: Emulator) -> Bot:
    os.environ.update(
        {
            "STEADYBOT_APPLICATION_ID": emulator.application_id,
            "STEADYBOT_PUBLIC_KEY": emulator.public_key,
            "STEADYBOT_TOKEN": emulator.bot_token,
            "STEADYBOT_API_BASE": emulator.api_base,
        }
    )
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    module = importlib.import_module("examples.hello")
    bot = module.bot
    if not isinstance(bot, Bot):
        raise TypeError("examples.hello.bot is not a steadybot.Bot")
    return bot


async def _serve(bot: Bot) -> tuple[uvicorn.Server, asyncio.Task[None], str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(bot.asgi(), log_level="warning", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            raise RuntimeError("the bot's server did not start")
        await asyncio.sleep(_POLL_INTERVAL)
    return server, task, f"http://127.0.0.1:{port}/interactions"


async def _wait_for(condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + _COMPLETION_TIMEOUT
    while time.monotonic() < deadline:
        if condition():
            return True
        await asyncio.sleep(_POLL_INTERVAL)
    return condition()


async def _user_session(
    emulator: Emulator, user_id: str, report: DemoReport, clicks: int
) -> dict[str, str]:
    """One simulated user: /ping, /slow, /progress, /counter and a few clicks."""
    record = report.interactions.append
    ping, slow, progress, counter = await asyncio.gather(
        emulator.send_command("ping", user_id=user_id),
        emulator.send_command("slow", user_id=user_id),
        emulator.send_command("progress", user_id=user_id),
        emulator.send_command("counter", user_id=user_id),
    )
    for name, interaction in (
        ("ping", ping),
        ("slow", slow),
        ("progress", progress),
        ("counter", counter),
    ):
        record((name, interaction))
    message_id = counter.original_message_id or ""
    for count in range(clicks):
        click = await emulator.click_button(
            f"counter:{count}", message_id=message_id, user_id=user_id
        )
        record(("click", click))
    return {
        "slow": slow.original_message_id or "",
        "progress": progress.original_message_id or "",
        "counter": message_id,
    }


def _content(emulator: Emulator, message_id: str) -> str:
    for channel_id in emulator.channel_ids:
        message = emulator.message(channel_id, message_id)
        if message is not None:
            return str(message.get("content", ""))
    return ""


async def run_demo(users: int = 5, clicks: int = 3, console: Console | None = None) -> DemoReport:
    """Run the demonstration and return what it saw."""
    out = console or Console()
    report = DemoReport()
    async with Emulator() as emulator:
        bot = _load_hello(emulator)
        server, task, endpoint = await _serve(bot)
        emulator.set_interactions_endpoint(endpoint)
        out.print(f"emulator at {emulator.url}; hello bot at {endpoint}; {users} users")
        try:
            ids = emulator.user_ids
            sessions = await asyncio.gather(
                *(_user_session(emulator, ids[i % len(ids)], report, clicks) for i in range(users))
            )
            expectations: dict[str, Callable[[str], bool]] = {
                "slow": lambda text: text.startswith("Done after"),
                "progress": lambda text: text.startswith("✅ All three steps"),
                "counter": lambda text: text == f"Clicked {clicks} time(s).",
            }
            for name, expected in expectations.items():
                ids_for = [session[name] for session in sessions]
                landed = await _wait_for(
                    lambda ids_for=ids_for, expected=expected: all(  # type: ignore[misc]
                        expected(_content(emulator, mid)) for mid in ids_for
                    )
                )
                shown = {_content(emulator, mid) for mid in ids_for}
                report.checks[f"every /{name} shows its final answer"] = (
                    landed,
                    repr(sorted(shown)),
                )
            stats = emulator.statistics()
            report.checks["no double acknowledgement"] = (
                stats.double_acknowledged == 0,
                f"{stats.double_acknowledged} answered 40060",
            )
            report.checks["no interaction failed"] = (stats.failed == 0, f"{stats.failed} failed")
        finally:
            server.should_exit = True
            await task
    _print(out, report, bot)
    return report


def _print(out: Console, report: DemoReport, bot: Bot) -> None:
    table = Table(title="steadybot demo: interactions as Discord saw them")
    for column in (
        "interaction",
        "count",
        "initial response",
        "ack p50 ms",
        "ack max ms",
        "failed",
    ):
        table.add_column(column)
    names = sorted({name for name, _ in report.interactions})
    for name in names:
        items = [i for n, i in report.interactions if n == name]
        latencies = [1000 * i.ack_latency for i in items if i.ack_latency is not None]
        kinds = sorted({str(i.ack_type) for i in items})
        failed = sum(1 for i in items if i.outcome is not InteractionOutcome.ACKNOWLEDGED)
        table.add_row(
            name,
            str(len(items)),
            "type " + "/".join(kinds),
            f"{statistics.median(latencies):.1f}" if latencies else "-",
            f"{max(latencies):.1f}" if latencies else "-",
            str(failed),
        )
    out.print(table)
    checks = Table(title="checks")
    for column in ("check", "ok", "detail"):
        checks.add_column(column)
    for name, (ok, detail) in report.checks.items():
        checks.add_row(name, "[green]ok[/]" if ok else "[red]FAILED[/]", detail[:80])
    out.print(checks)
    runtime = bot.statistics()
    out.print(
        f"runtime: {runtime.answered_directly} answered directly, "
        f"{runtime.deferred_automatically} deferred automatically, "
        f"{runtime.progress_edits} progress edits, {runtime.missed_deadline} missed"
    )
    out.print("[green]demo ok[/]" if report.ok else "[red]demo FAILED[/]")


async def _main(users: int) -> int:
    report = await run_demo(users=users)
    return 0 if report.ok else 1


def main(users: int) -> int:
    """Entry point for the CLI: run the demo, return the exit code."""
    return asyncio.run(_main(users))
