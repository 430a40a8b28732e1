"""The crowd drives a served bot through the emulator and reports what users saw."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest
from support import emulator_bot, serving

from steadybot import Bot, Interaction
from steadybot.crowd import (
    Check,
    CrowdTarget,
    CrowdUser,
    RemoteEmulator,
    RemoteEmulatorError,
    run_crowd,
)
from steadybot.emulator import Action, Emulator, Snapshot


class PingScenario:
    name = "ping"

    async def setup(self, target: CrowdTarget) -> None:
        return None

    async def user(self, user: CrowdUser) -> None:
        await user.command("ping")
        await user.think(0.0, 0.05)
        await user.command("slowish")

    def checks(self, snapshot: Snapshot, users: Sequence[CrowdUser]) -> dict[str, Check]:
        answered = sum(len(u.interactions) for u in users)
        return {"two interactions per user": Check(answered == 2 * len(users), str(answered))}


def answer_ping_and_slowish(bot: Bot) -> None:
    """/ping answers at once; /slowish passes defer_after, is deferred, then answers."""

    @bot.command("ping")
    async def ping(interaction: Interaction) -> None:
        await interaction.respond("pong")

    @bot.command("slowish")
    async def slowish(interaction: Interaction) -> None:
        await asyncio.sleep(0.4)
        await interaction.respond("done")


@pytest.fixture
async def emulator_and_bot() -> AsyncIterator[tuple[Emulator, Bot]]:
    async with Emulator(members=20) as emulator:
        bot = emulator_bot(emulator, defer_after=0.2)
        async with serving(emulator, bot):
            yield emulator, bot


async def test_crowd_report_counts_what_the_emulator_saw(
    emulator_and_bot: tuple[Emulator, Bot],
) -> None:
    emulator, bot = emulator_and_bot
    answer_ping_and_slowish(bot)

    report = await run_crowd(emulator, PingScenario(), users=8, seconds=0.3, seed=3)
    assert report.interactions == 16
    assert report.acknowledged_in_time == 16
    assert (report.failed, report.double_acknowledged) == (0, 0)
    assert report.followups.sent == 8
    assert report.followups.delivered == 8
    assert report.ack_ms.p50 > 0
    assert report.ack_ms.max >= report.ack_ms.p99 >= report.ack_ms.p50
    assert report.checks["two interactions per user"].ok
    assert report.ok
    data = report.to_json()
    assert set(data) >= {
        "interactions",
        "acknowledged_in_time",
        "failed",
        "double_acknowledged",
        "ack_ms",
        "followups",
        "rate_limited",
        "faults_injected",
        "checks",
    }
    assert data["checks"]["two interactions per user"] == {"ok": True, "detail": "16"}


async def test_a_bot_that_answers_too_late_shows_up_as_failed(
    emulator_and_bot: tuple[Emulator, Bot],
) -> None:
    emulator, bot = emulator_and_bot

    @bot.command("ping", defer="never")
    async def late(interaction: Interaction) -> None:
        await asyncio.sleep(3.2)
        await interaction.respond("too late")

    @bot.command("slowish")
    async def slowish(interaction: Interaction) -> None:
        await interaction.respond("fine")

    report = await run_crowd(emulator, PingScenario(), users=2, seconds=0.0, seed=1)
    assert report.failed == 2
    assert not report.ok


async def test_the_same_crowd_runs_against_a_standalone_emulator_over_http(
    emulator_and_bot: tuple[Emulator, Bot],
) -> None:
    emulator, bot = emulator_and_bot
    answer_ping_and_slowish(bot)

    async with RemoteEmulator(emulator.url) as remote:
        assert remote.user_ids == emulator.user_ids
        report = await run_crowd(remote, PingScenario(), users=4, seconds=0.2, seed=5)
    assert report.interactions == 8
    assert (report.failed, report.double_acknowledged) == (0, 0)
    assert report.followups.sent == report.followups.delivered == 4
    assert report.ok
    with pytest.raises(RemoteEmulatorError, match="HTTP 400"):
        async with RemoteEmulator(emulator.url) as remote:
            await remote.act(Action(kind="click", user_id=emulator.user_ids[0], custom_id="x"))
