"""``steadybot demo``: the applications story, under a crowd, through the emulator.

One command runs the local Discord emulator (``flaky`` fault profile by default),
serves ``examples/applications.py`` with uvicorn on 127.0.0.1 (configured through
``STEADYBOT_*`` variables exactly as a user configures a real bot), lets a crowd of
simulated members click "Apply", and prints what Discord would have shown them. With
``--baseline`` it then runs the same story against the naive handler in the same
module, on a fresh emulator with the same seed, and prints both side by side. The exit
status is non-zero when the steadybot run has a failed interaction or a failed check.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from rich.console import Console

from steadybot.bot import Bot
from steadybot.crowd import CrowdReport, Scenario, run_crowd
from steadybot.crowd.render import report_table
from steadybot.emulator import BucketLimit, Emulator, RateLimitSettings
from steadybot.serving import serve_in_process

__all__ = ["DemoOptions", "demo_rate_limits", "load_story", "main", "run_demo"]

STORY_MODULE = "examples.applications"
# Discord allows only a handful of channel creations per 10 s per guild; a few hundred
# applicants in 20 s need a bigger allowance, so the demo's emulator grants one and
# says so. Every other limit keeps the emulator's defaults.
DEMO_CHANNEL_CREATE = BucketLimit(limit=50, window=1.0)


def demo_rate_limits() -> RateLimitSettings:
    """The emulator's default limits, with the demo's channel-creation allowance."""
    return RateLimitSettings(
        buckets={**RateLimitSettings().buckets, "channel-create": DEMO_CHANNEL_CREATE}
    )


@dataclass(frozen=True)
class DemoOptions:
    users: int = 300
    seconds: float = 20.0
    faults: str = "flaky"
    seed: int = 1
    baseline: bool = False
    json_path: Path | None = None


def load_story(emulator: Emulator) -> ModuleType:
    """Import (or re-import) the story with settings pointing at ``emulator``."""
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
    module = sys.modules.get(STORY_MODULE)
    return importlib.reload(module) if module else importlib.import_module(STORY_MODULE)


async def _run_story(options: DemoOptions, *, naive: bool, out: Console) -> CrowdReport:
    emulator = Emulator(
        seed=options.seed,
        members=max(300, options.users),
        faults=options.faults,
        rate_limits=demo_rate_limits(),
    )
    async with emulator:
        module = load_story(emulator)
        bot: Bot = module.naive_bot if naive else module.bot
        scenario: Scenario = module.scenario
        served = await serve_in_process(bot.asgi())
        emulator.set_interactions_endpoint(served.url)
        label = "naive handler (baseline)" if naive else "steadybot"
        out.print(
            f"[bold]{label}[/]: {options.users} users over {options.seconds:g} s, "
            f"faults={options.faults}, emulator {emulator.url}"
        )
        try:
            report = await run_crowd(
                emulator,
                scenario,
                users=options.users,
                seconds=options.seconds,
                seed=options.seed,
                console=out,
                bot_idle=lambda: bot.in_flight == 0,
            )
        finally:
            await served.stop()
        return report


async def run_demo(options: DemoOptions, console: Console | None = None) -> dict[str, CrowdReport]:
    """Run the story (and the baseline); return the reports by label."""
    out = console or Console()
    reports = {"steadybot": await _run_story(options, naive=False, out=out)}
    if options.baseline:
        # The naive handler fails loudly by design; its failures are in the report.
        logging.getLogger("steadybot").setLevel(logging.CRITICAL)
        try:
            reports["baseline"] = await _run_story(options, naive=True, out=out)
        finally:
            logging.getLogger("steadybot").setLevel(logging.NOTSET)
    _print(out, reports)
    if options.json_path is not None:
        document: dict[str, object] = {
            "scenarios": {reports["steadybot"].scenario: reports["steadybot"].to_json()},
            "baseline": (
                {reports["baseline"].scenario: reports["baseline"].to_json()}
                if "baseline" in reports
                else {}
            ),
        }
        options.json_path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
        out.print(f"report written to {options.json_path}")
    return reports


def _print(out: Console, reports: dict[str, CrowdReport]) -> None:
    out.print(report_table(reports))
    verdict = reports["steadybot"].ok
    out.print("[green]demo ok[/]" if verdict else "[red]demo FAILED[/]")


def main(options: DemoOptions) -> int:
    """Entry point for the CLI: run the demo, return the exit code."""
    # Retries and fallbacks under the flaky profile are expected and counted in the
    # report; only errors belong on the terminal next to it.
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    reports = asyncio.run(run_demo(options))
    return 0 if reports["steadybot"].ok else 1
