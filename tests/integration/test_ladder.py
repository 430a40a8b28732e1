"""The ladder story through the emulator, on SQLite: the crowd's checks, and each
promise of the steadybot version (and the naive version's bugs) pinned one by one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from support import assert_checks_pass, emulator_bot, serving

from examples.ladder.app import Ladder
from examples.ladder.base import LadderBase
from examples.ladder.forms import SetupForms
from examples.ladder.naive import NaiveLadder
from examples.ladder.scenario import LadderScenario
from examples.ladder.texts import (
    ACTIVATE_FIRST,
    ALREADY_QUEUED,
    ALREADY_SET_UP,
    JOINED,
    NOT_QUEUED,
    RECORDED,
    SETUP_DONE,
    UNKNOWN_COUNTRY,
)
from steadybot import Bot
from steadybot.clock import ManualClock
from steadybot.crowd import CrowdReport, run_crowd
from steadybot.demo import demo_rate_limits, load_story
from steadybot.emulator import Emulator
from steadybot.emulator.interactions import EmulatedInteraction

FAST = (0.0, 0.02)  # simulated round trips, short: the crowd runs in real time


def quick(scenario: LadderScenario) -> None:
    """People who think and type fast: the same steps in a fraction of the time."""
    scenario.pause = (0.02, 0.15)
    scenario.typing = (0.05, 0.2)


async def crowd(
    emulator: Emulator, bot: Bot, scenario: LadderScenario, users: int, seed: int
) -> CrowdReport:
    async with serving(emulator, bot):
        return await run_crowd(
            emulator, scenario, users=users, seconds=2.0, seed=seed, bot_idle=lambda: bot.idle
        )


def assert_all_ok(report: CrowdReport) -> None:
    assert_checks_pass(report)
    assert report.followups.delivered == report.followups.sent


@pytest.mark.timeout(120)
async def test_ladder_story_keeps_every_check_under_the_flaky_profile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("STEADYBOT_DATABASE_URL", raising=False)  # a temporary SQLite file
    async with Emulator(
        seed=5, members=40, faults="flaky", rate_limits=demo_rate_limits()
    ) as emulator:
        story = load_story(emulator, "ladder")
        quick(story.scenario)
        story.ladder.remote.per_trip = FAST
        report = await crowd(emulator, story.bot, story.scenario, users=12, seed=5)
    assert_all_ok(report)
    assert report.interactions > 12 * 5
    figures = story.figures(story.bot)  # kept when the bot closed
    assert not story.ladder.running
    assert figures["database"] == "sqlite (a temporary file)"
    assert figures["forms_held_at_end"] == 0  # every finished form forgotten
    assert figures["action_log_dropped"] == 0
    assert figures["action_log_rows"] == story.ladder.figures()["action_log_rows"]
    assert int(str(figures["action_log_rows"])) > 12  # written behind, in batches:
    assert int(str(figures["action_log_batches"])) < int(str(figures["action_log_rows"]))


@pytest.mark.timeout(120)
async def test_answers_deferred_by_slow_database_work_all_land() -> None:
    async with Emulator(seed=8, members=20, faults="flaky") as emulator:
        bot = emulator_bot(emulator, defer_after=0.05)
        ladder = Ladder(bot, latency=(0.06, 0.08))
        ladder.remote.slow_share = 0.0
        scenario = LadderScenario([ladder])
        quick(scenario)
        scenario.reports = (1, 1)
        report = await crowd(emulator, bot, scenario, users=4, seed=8)
    assert_all_ok(report)
    assert report.followups.sent > 10  # the database work was deferred, and answered


def answer(emulator: Emulator, interaction: EmulatedInteraction) -> str:
    assert interaction.original_message_id is not None, "no answer"
    message = emulator.world.find_message(interaction.original_message_id)
    assert message is not None
    return str(message.get("content", ""))


async def open_form(emulator: Emulator, user: str) -> str:
    """/setup, race, region: returns the form message (the modal is open)."""
    setup = await emulator.send_command("setup", user_id=user)
    form = setup.original_message_id
    assert form is not None
    await emulator.pick_select("setup:race", ["orc"], message_id=form, user_id=user)
    modal = await emulator.pick_select("setup:region", ["eu"], message_id=form, user_id=user)
    assert modal.ack_type == 9  # the modal
    return form


async def submit(emulator: Emulator, user: str, country: str) -> EmulatedInteraction:
    fields = {"name": "Grubby", "country": country}
    return await emulator.submit_modal("setup:profile", fields, user_id=user)


async def command(emulator: Emulator, user: str, path: str, **options: str) -> str:
    name, _, sub = path.partition(" ")
    sent: list[dict[str, Any]] = [{"type": 3, "name": k, "value": v} for k, v in options.items()]
    if sub:
        sent = [{"type": 1, "name": sub, "options": sent}]
    return answer(emulator, await emulator.send_command(name, user_id=user, options=sent))


@asynccontextmanager
async def one_ladder(naive: bool = False) -> AsyncIterator[tuple[Emulator, LadderBase]]:
    async with Emulator(seed=6, members=5) as emulator:
        bot = emulator_bot(emulator)
        app: LadderBase = NaiveLadder(bot) if naive else Ladder(bot)
        app.remote.per_trip = (0.05, 0.05)  # both submits read before either writes
        app.remote.slow_share = 0.0
        async with serving(emulator, bot):
            yield emulator, app


async def test_a_double_submitted_setup_is_stored_once_and_answered_already_set_up() -> None:
    async with one_ladder() as (emulator, ladder):
        user = emulator.user_ids[1]
        await open_form(emulator, user)
        first, second = await asyncio.gather(
            submit(emulator, user, "DE"), submit(emulator, user, "de")
        )
        told = [answer(emulator, i) for i in (first, second)]
        rows = await ladder.database.fetch(
            "SELECT p.user_id, f.name, f.race, f.region, f.country FROM players p "
            "JOIN profiles f ON f.player_id = p.id"
        )
        again = await command(emulator, user, "setup")
    done = [text for text in told if text.startswith(SETUP_DONE)]
    assert len(done) == 1
    assert "Germany (DE)" in done[0]
    assert told.count(ALREADY_SET_UP) == 1
    assert [dict(r) for r in rows] == [
        {"user_id": user, "name": "Grubby", "race": "orc", "region": "eu", "country": "DE"}
    ]
    assert again == ALREADY_SET_UP


async def test_an_unknown_country_is_refused_clearly_and_the_form_can_be_fixed() -> None:
    async with one_ladder() as (emulator, ladder):
        user = emulator.user_ids[1]
        await open_form(emulator, user)
        refused = await submit(emulator, user, "Germny")
        text = answer(emulator, refused)
        assert text.startswith(f"{UNKNOWN_COUNTRY} 'Germny'")
        assert await ladder.database.fetchval("SELECT count(*) FROM players") == 0
        assert refused.original_message_id is not None
        reopened = await emulator.click_button(
            "setup:retry", message_id=refused.original_message_id, user_id=user
        )
        assert reopened.ack_type == 9  # the form again, its race and region kept
        assert answer(emulator, await submit(emulator, user, "japan")).startswith(SETUP_DONE)
        changed = await command(emulator, user, "setcountry", country="Atlantis")
        country = await ladder.database.fetchval("SELECT country FROM profiles")
    assert changed.startswith(f"{UNKNOWN_COUNTRY} 'Atlantis'")
    assert country == "JP"  # unchanged by the refused change


async def test_queue_holds_a_player_at_most_once_and_says_so() -> None:
    async with one_ladder() as (emulator, ladder):
        user = emulator.user_ids[1]
        await open_form(emulator, user)
        await submit(emulator, user, "KR")
        not_yet = await command(emulator, user, "queue join")
        await command(emulator, user, "activate")
        joins = await asyncio.gather(
            command(emulator, user, "queue join"), command(emulator, user, "queue join")
        )
        queued = await ladder.database.fetchval("SELECT count(*) FROM queue_entries")
        await command(emulator, user, "queue leave")
        left_again = await command(emulator, user, "queue leave")
        remaining = await ladder.database.fetchval("SELECT count(*) FROM queue_entries")
    assert not_yet == ACTIVATE_FIRST
    assert sorted(j.split(" (")[0] for j in joins) == sorted([ALREADY_QUEUED, JOINED])
    assert queued == 1
    assert left_again == NOT_QUEUED
    assert remaining == 0


async def test_profile_is_one_joined_query_and_the_leaderboard_follows_results() -> None:
    async with one_ladder() as (emulator, ladder):
        assert isinstance(ladder, Ladder)
        user = emulator.user_ids[1]
        await open_form(emulator, user)
        await submit(emulator, user, "SE")
        await command(emulator, user, "activate")
        before = await command(emulator, user, "leaderboard")
        cached = await command(emulator, user, "leaderboard")
        trips = ladder.remote.trips_made
        profile = await command(emulator, user, "profile")
        profile_trips = ladder.remote.trips_made - trips
        reported = await command(emulator, user, "report", result="win", map="basin")
        after = await command(emulator, user, "leaderboard")
        boards = ladder.boards.statistics()
    assert before == cached == "🏆 Leaderboard after 0 results\n1. Grubby (Orc, Sweden): 1000"
    assert profile_trips == 1
    assert "**Grubby**: Orc, Sweden (Europe)" in profile
    assert "Rating 1000 (#1)" in profile
    assert reported.startswith(RECORDED)
    assert "rating is now 1020" in reported
    assert after == "🏆 Leaderboard after 1 results\n1. Grubby (Orc, Sweden): 1020"
    assert (boards.hits, boards.misses, boards.invalidations) == (1, 2, 1)


async def test_the_naive_version_writes_a_double_submit_twice() -> None:
    async with one_ladder(naive=True) as (emulator, naive):
        user = emulator.user_ids[1]
        await open_form(emulator, user)
        told = await asyncio.gather(submit(emulator, user, "DE"), submit(emulator, user, "DE"))
        players = await naive.database.fetch(
            "SELECT p.id, f.player_id AS profile FROM players p "
            "LEFT JOIN profiles f ON f.player_id = p.id WHERE p.user_id = $1",
            user,
        )
    # Both checked, both inserted: the production story's duplicate, reproduced; the
    # second then found the first's id, and its profile failed: a half setup too.
    assert len(players) == 2
    assert sorted(p["profile"] is None for p in players) == [False, True]
    assert [answer(emulator, i).startswith(SETUP_DONE) for i in told].count(True) == 1


# --- the bounded parts, on a manual clock ---------------------------------------------


async def test_forms_expire_after_their_ttl_and_stay_bounded() -> None:
    clock = ManualClock()
    forms = SetupForms(clock, ttl=60.0, max_forms=3)
    forms.begin("a").race = "orc"
    await clock.advance(50.0)
    assert forms.get("a") is not None  # a step renews the form
    await clock.advance(50.0)
    draft = forms.get("a")
    assert draft is not None
    assert draft.race == "orc"
    await clock.advance(61.0)
    assert forms.get("a") is None
    for user in "bcdef":
        forms.begin(user)
    stats = forms.statistics()
    assert (stats.held, stats.max_forms, stats.started) == (3, 3, 6)
