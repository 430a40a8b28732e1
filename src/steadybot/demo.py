"""``steadybot demo``: the stories, each under a crowd, through the emulator.

For each story (``examples/applications.py``: an "Apply" button that opens a private
channel; ``examples/pricing.py``: a price-list select that must show no pick again
after every pick) one command runs the local Discord emulator (``flaky`` fault profile
by default), serves the story's bot with uvicorn on 127.0.0.1 (configured through
``STEADYBOT_*`` variables exactly as a user configures a real bot), lets a crowd of
simulated members play it, and prints what Discord would have shown them. With
``--baseline`` it then runs the same story against the naive version in the same
module, on a fresh emulator with the same seed, and prints both side by side. The exit
status is non-zero when a steadybot run has a failed interaction or a failed check.

``--users`` and ``--seconds`` size the applications crowd; the other stories bring
their own size (the scenario's ``users`` and ``seconds``), scaled by the same factor.
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
from steadybot.crowd.runner import SETTLE_TIMEOUT
from steadybot.emulator import BucketLimit, Emulator, RateLimitSettings
from steadybot.serving import serve_in_process

__all__ = [
    "STORIES",
    "DemoOptions",
    "StoryRun",
    "demo_rate_limits",
    "load_story",
    "main",
    "run_demo",
]

STORIES = {
    "applications": "examples.applications",
    "pricing": "examples.pricing",
    "crafting": "examples.crafting",
    "ladder": "examples.ladder",
}
# How long a baseline run may take to settle after its last user: a naive bot can leave
# "thinking…" answers owed forever; the report shows them, the demo need not wait 60 s.
BASELINE_SETTLE_TIMEOUT = 15.0
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
    stories: tuple[str, ...] = tuple(STORIES)


def load_story(emulator: Emulator, story: str = "applications") -> ModuleType:
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
    name = STORIES[story]
    module = sys.modules.get(name)
    return importlib.reload(module) if module else importlib.import_module(name)


@dataclass
class StoryRun:
    """One story's reports by label ("steadybot", "baseline") and what each bot spent."""

    story: str
    reports: dict[str, CrowdReport]
    figures: dict[str, dict[str, object]]

    @property
    def ok(self) -> bool:
        return self.reports["steadybot"].ok

    @property
    def baseline(self) -> bool:
        return "baseline" in self.reports


def _crowd_size(options: DemoOptions, story: str, scenario: Scenario) -> tuple[int, float]:
    if story == "applications":
        return options.users, options.seconds
    scale = options.users / DemoOptions.users
    users = max(2, round(getattr(scenario, "users", options.users) * scale))
    return users, float(getattr(scenario, "seconds", options.seconds))


async def _run_story(
    options: DemoOptions, story: str, *, naive: bool, out: Console
) -> tuple[CrowdReport, dict[str, object]]:
    emulator = Emulator(
        seed=options.seed,
        members=max(300, options.users),
        faults=options.faults,
        rate_limits=demo_rate_limits(),
    )
    async with emulator:
        module = load_story(emulator, story)
        bot: Bot = module.naive_bot if naive else module.bot
        scenario: Scenario = module.scenario
        users, seconds = _crowd_size(options, story, scenario)
        served = await serve_in_process(bot.asgi())
        emulator.set_interactions_endpoint(served.url)
        label = "naive version (baseline)" if naive else "steadybot"
        out.print(
            f"[bold]{story}, {label}[/]: {users} users over {seconds:g} s, "
            f"faults={options.faults}, emulator {emulator.url}"
        )
        try:
            report = await run_crowd(
                emulator,
                scenario,
                users=users,
                seconds=seconds,
                seed=options.seed,
                console=out,
                bot_idle=lambda: bot.idle,
                settle_timeout=BASELINE_SETTLE_TIMEOUT if naive else SETTLE_TIMEOUT,
            )
        finally:
            await served.stop()
        figures = module.figures(bot) if hasattr(module, "figures") else {}
        return report, figures


async def run_demo(options: DemoOptions, console: Console | None = None) -> list[StoryRun]:
    """Run every story (and its baseline); return the runs."""
    out = console or Console()
    runs: list[StoryRun] = []
    for story in options.stories:
        report, figures = await _run_story(options, story, naive=False, out=out)
        run = StoryRun(story, {"steadybot": report}, {"steadybot": figures})
        if options.baseline:
            # The naive version fails loudly by design; its failures are in the report.
            logging.getLogger("steadybot").setLevel(logging.CRITICAL)
            try:
                report, figures = await _run_story(options, story, naive=True, out=out)
            finally:
                logging.getLogger("steadybot").setLevel(logging.NOTSET)
            run.reports["baseline"] = report
            run.figures["baseline"] = figures
        _print(out, run)
        runs.append(run)
    out.print("[green]demo ok[/]" if all(r.ok for r in runs) else "[red]demo FAILED[/]")
    if options.json_path is not None:
        document: dict[str, object] = {
            "scenarios": {r.story: r.reports["steadybot"].to_json() for r in runs},
            "baseline": {r.story: r.reports["baseline"].to_json() for r in runs if r.baseline},
            "figures": {r.story: r.figures for r in runs},
        }
        options.json_path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
        out.print(f"report written to {options.json_path}")
    return runs


def _print(out: Console, run: StoryRun) -> None:
    out.print(report_table(run.reports))
    for label, figures in run.figures.items():
        if figures:
            shown = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in figures.items())
            out.print(f"  {label}: {shown}")


def main(options: DemoOptions) -> int:
    """Entry point for the CLI: run the demo, return the exit code."""
    # Retries and fallbacks under the flaky profile are expected and counted in the
    # report; only errors belong on the terminal next to it.
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    runs = asyncio.run(run_demo(options))
    return 0 if all(run.ok for run in runs) else 1
