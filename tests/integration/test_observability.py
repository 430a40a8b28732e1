"""``examples/hello.py`` served: /metrics moves as a crowd runs, /health follows faults."""

from __future__ import annotations

import asyncio
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from steadybot.crowd import Check, CrowdTarget, CrowdUser, run_crowd
from steadybot.emulator import Emulator, FaultRule, Snapshot
from steadybot.serving import serve_in_process

ROOT = Path(__file__).resolve().parents[2]


def load_hello(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    settings = {
        "STEADYBOT_APPLICATION_ID": emulator.application_id,
        "STEADYBOT_PUBLIC_KEY": emulator.public_key,
        "STEADYBOT_TOKEN": emulator.bot_token,
        "STEADYBOT_API_BASE": emulator.api_base,
        # Answers after a defer are what follow-up success counts: defer early.
        "STEADYBOT_DEFER_AFTER": "0.05",
        "STEADYBOT_REST_MAX_ATTEMPTS": "1",
        "STEADYBOT_HEALTH_WINDOW": "1.5",
        "STEADYBOT_HEALTH_SAMPLE_INTERVAL": "0.1",
        "STEADYBOT_HEALTH_MIN_EVENTS": "3",
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    monkeypatch.syspath_prepend(str(ROOT))
    module = sys.modules.get("examples.hello")
    hello = importlib.reload(module) if module else importlib.import_module("examples.hello")
    monkeypatch.setattr(hello, "SLOW_WORK_SECONDS", 0.15)
    return hello


class SlowAndPing:
    """Each member runs /ping and /slow (deferred, then answered by an edit)."""

    name = "slow-and-ping"

    async def setup(self, target: CrowdTarget) -> None:
        return None

    async def user(self, user: CrowdUser) -> None:
        await user.command("ping")
        await user.command("slow")

    def checks(self, snapshot: Snapshot, users: Sequence[CrowdUser]) -> dict[str, Check]:
        return {}


async def scrape(http: aiohttp.ClientSession, url: str) -> dict[str, float]:
    """Every sample of the exposition, by name and labels."""
    async with http.get(f"{url}/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):  # raises if it does not parse
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples


async def health(http: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, object]]:
    async with http.get(f"{url}/health") as response:
        return response.status, await response.json()


@pytest.mark.timeout(60)
async def test_metrics_move_and_health_turns_critical_on_followup_faults_then_recovers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with Emulator(seed=5, members=20) as emulator, aiohttp.ClientSession() as http:
        hello = load_hello(emulator, monkeypatch)
        bot = hello.bot
        served = await serve_in_process(bot.asgi())
        emulator.set_interactions_endpoint(served.url)
        url = served.url.rsplit("/", 1)[0]
        try:
            before = await scrape(http, url)
            await run_crowd(emulator, SlowAndPing(), users=6, seconds=0.3, seed=5)
            after = await scrape(http, url)
            assert after["steadybot_interactions_total{handler=ping,outcome=answered}"] == 6
            assert after["steadybot_interactions_total{handler=slow,outcome=answered}"] == 6
            assert after["steadybot_initial_response_seconds_count{handler=slow}"] == 6
            assert after["steadybot_defers_total{kind=auto}"] == 6
            assert after["steadybot_followups_total{outcome=delivered}"] >= 6
            delivered_before = before.get("steadybot_followups_total{outcome=delivered}", 0)
            assert after["steadybot_followups_total{outcome=delivered}"] > delivered_before
            status, verdict = await health(http, url)
            assert (status, verdict["status"]) == (200, "healthy")

            # Every edit of a deferred answer now fails: follow-up success collapses.
            emulator.faults.set_rules(
                [FaultRule(route="/webhooks/*", method="PATCH", status=500, name="edits down")]
            )
            await run_crowd(
                emulator, SlowAndPing(), users=6, seconds=0.3, seed=6, settle_timeout=1.0
            )
            status, verdict = await health(http, url)
            assert status == 503
            assert verdict["status"] == "critical"
            assert any("follow-up success" in str(r) for r in verdict["reasons"])  # type: ignore[union-attr]
            failed = (await scrape(http, url))["steadybot_followups_total{outcome=failed}"]
            assert failed >= 6

            # Faults gone: once the failures have left the window, healthy again.
            emulator.faults.set_profile("none")
            await asyncio.sleep(1.6)
            await run_crowd(emulator, SlowAndPing(), users=4, seconds=0.2, seed=7)
            status, verdict = await health(http, url)
            assert (status, verdict["status"]) == (200, "healthy"), verdict
        finally:
            await served.stop()
