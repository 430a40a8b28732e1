"""The ladder's crowd: players set up, join and leave the queue, report, look around;
spectators watch the leaderboard.

Each simulated player waits for an answer before the next step, as a person does (a
deferred answer included), and some behave as people do in production: they
double-submit the setup form, type a country that does not exist, run ``/queue join``
twice at once. The checks then compare what the players were told (the emulator's
messages) with what the database holds:

- every setup persisted exactly once: each confirmed player has one player row with a
  profile, no row exists without a confirmation, none twice;
- the queue holds exactly the players who were last told they are in it, once each;
- each profile's country is the last one its player was told;
- every leaderboard shown includes every result confirmed before it was asked for;
- each profile's wins, losses and rating agree with its results;
- the action log (written behind) has one row per setup and per result.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from steadybot.crowd import Check, CrowdTarget, CrowdUser, take_snapshot
from steadybot.emulator import Snapshot
from steadybot.emulator.views import InteractionView

from .app import LOSS_POINTS, WIN_POINTS
from .base import LadderBase
from .render import PROFILE_MODAL
from .schema import COUNTRIES, MAPS, RACES, REGIONS, START_RATING
from .texts import (
    ACTIVATE_FIRST,
    ALREADY_QUEUED,
    ALREADY_SET_UP,
    BOARD_PATTERN,
    COUNTRY_CODE,
    COUNTRY_SET,
    JOINED,
    LEFT,
    NOT_QUEUED,
    RECORDED,
    SETUP_DONE,
    SETUP_FIRST,
    UNKNOWN_COUNTRY,
)

__all__ = ["LadderScenario"]

JSON = dict[str, Any]
ANSWER_WAIT = 30.0  # real seconds a player waits for a deferred answer
ANSWER_POLL = 0.1
TYPOS = ("Germny", "Atlantis", "XX", "Narnia")


def _option(name: str, value: str) -> JSON:
    return {"type": 3, "name": name, "value": value}


class LadderScenario:
    """Players through /setup, /activate, /queue, /report, /setcountry, /profile,
    /leaderboard; checks judge the database against what they were told."""

    name = "ladder"
    users = 60
    seconds = 15.0
    pause = (0.3, 1.0)  # seconds a player thinks before each step
    typing = (1.0, 2.0)  # seconds a player types into the form
    typo_share = 0.15  # types a country that does not exist into the form
    double_submit_share = 0.25
    double_join_share = 0.2  # runs /queue join twice at once
    leave_share = 0.4
    reports = (1, 3)
    country_change_share = 0.4
    bad_country_share = 0.3  # of the country changes
    spectator_share = 0.3  # only look at the leaderboard, a few times
    spectator_looks = (2, 4)

    def __init__(self, apps: Sequence[LadderBase]) -> None:
        self.apps = list(apps)
        self._start_over()

    def _start_over(self) -> None:
        """Fresh state: one scenario object runs for steadybot, then for the baseline."""
        self.asked: defaultdict[str, list[tuple[str, str]]] = defaultdict(list)
        self.reports_seen: list[str] = []  # /report ids in the order their answers came
        self.boards_asked: list[tuple[str, int]] = []  # /leaderboard id, reports seen then

    async def setup(self, target: CrowdTarget) -> None:
        self._start_over()

    # --- one player ----------------------------------------------------------------------

    async def user(self, user: CrowdUser) -> None:
        rng = user.rng
        if rng.random() < self.spectator_share:
            for _ in range(rng.randint(*self.spectator_looks)):
                region = rng.choice(["", "", *REGIONS])  # mostly the whole ladder
                options = [_option("region", region)] if region else []
                await self._command(user, "leaderboard", options)
            return
        await self._setup(user)
        await self._command(user, "activate")
        for _ in range(rng.randint(1, 2)):
            if rng.random() < self.double_join_share:
                await asyncio.gather(
                    self._command(user, "queue join"), self._command(user, "queue join")
                )
            else:
                await self._command(user, "queue join")
            if rng.random() < self.leave_share:
                await self._command(user, "queue leave")
        for _ in range(rng.randint(*self.reports)):
            result = rng.choice(("win", "loss"))
            options = [_option("result", result), _option("map", rng.choice(list(MAPS)))]
            await self._command(user, "report", options)
        if rng.random() < self.country_change_share:
            bad = rng.random() < self.bad_country_share
            country = rng.choice(TYPOS) if bad else rng.choice(list(COUNTRIES))
            await self._command(user, "setcountry", [_option("country", country)])
        await self._command(user, "profile")
        await self._command(user, "leaderboard")

    async def _setup(self, user: CrowdUser) -> None:
        rng = user.rng
        view = await self._command(user, "setup")
        form = view.original_message_id
        if form is None:
            return
        await user.think(*self.pause)
        try:
            await user.pick("setup:race", [rng.choice(list(RACES))], form)
            await user.think(*self.pause)
            modal = await user.pick("setup:region", [rng.choice(list(REGIONS))], form)
        except ValueError:
            return  # no form on the message: already set up, or the answer never came
        if modal.ack_type != 9:
            return
        name = f"Player{user.id[-5:]}"
        if rng.random() < self.typo_share:
            await user.think(*self.typing)
            refused = await self._submit(user, name, rng.choice(TYPOS))
            if refused.original_message_id is None:
                return
            try:
                modal = await user.click("setup:retry", refused.original_message_id)
            except ValueError:
                return  # no way to fix it offered
            if modal.ack_type != 9:
                return
        await user.think(*self.typing)
        country = rng.choice(list(COUNTRIES))
        if rng.random() < self.double_submit_share:
            gap = rng.uniform(0.05, 0.5)

            async def again() -> InteractionView:
                await asyncio.sleep(gap)
                return await self._submit(user, name, country)

            await asyncio.gather(self._submit(user, name, country), again())
        else:
            await self._submit(user, name, country)

    async def _submit(self, user: CrowdUser, name: str, country: str) -> InteractionView:
        view = await user.submit(PROFILE_MODAL, {"name": name, "country": country})
        self.asked[user.id].append(("setup submit", view.id))
        return await self._answered(user, view)

    async def _command(
        self, user: CrowdUser, path: str, options: list[JSON] | None = None
    ) -> InteractionView:
        await user.think(*self.pause)
        name, _, sub = path.partition(" ")
        sent = list(options or [])
        if sub:
            sent = [{"type": 1, "name": sub, "options": sent}]
        reports_seen = len(self.reports_seen)
        view = await user.command(name, sent)
        self.asked[user.id].append((path, view.id))
        if path == "leaderboard":
            self.boards_asked.append((view.id, reports_seen))
        view = await self._answered(user, view)
        if path == "report":
            self.reports_seen.append(view.id)
        return view

    async def _answered(self, user: CrowdUser, view: InteractionView) -> InteractionView:
        """``view`` once its deferred answer (if any) has landed: people wait for it."""
        deadline = time.monotonic() + ANSWER_WAIT
        while view.owed and time.monotonic() < deadline:
            await asyncio.sleep(ANSWER_POLL)
            latest = await take_snapshot(user.target, [view.id], full=False)
            view = latest.interactions.get(view.id, view)
        return view

    # --- the checks ----------------------------------------------------------------------

    async def checks(self, snapshot: Snapshot, users: Sequence[CrowdUser]) -> dict[str, Check]:
        running = [app for app in self.apps if app.running]
        if len(running) != 1:  # e.g. `steadybot crowd` against a bot in another process
            return {
                "the ladder's database is readable": Check(
                    False,
                    f"{len(running)} ladders run in this process; the checks read the "
                    "database of exactly one (steadybot demo runs it so)",
                )
            }
        app = running[0]
        await app.before_checks()  # the action log's buffered rows, written now
        async with app.database.transaction() as connection:
            players = await connection.fetch(
                "SELECT p.id, p.user_id, f.player_id AS profile, f.country, f.rating, "
                "f.wins, f.losses FROM players p LEFT JOIN profiles f ON f.player_id = p.id"
            )
            queued = await connection.fetch(
                "SELECT p.user_id FROM queue_entries q JOIN players p ON p.id = q.player_id"
            )
            results = await connection.fetch(
                "SELECT player_id, count(*) AS games, sum(won) AS wins FROM results "
                "GROUP BY player_id"
            )
            logged = await connection.fetch(
                "SELECT action, count(*) AS n FROM action_log GROUP BY action"
            )
        told = _answers(snapshot)
        return {
            "every setup persisted exactly once": self._setups(told, players),
            "queue as the players were told": self._queue(told, queued),
            "countries as the players were told": self._countries(told, players),
            "leaderboard shows every earlier result": self._boards(told),
            "ratings agree with results": _ratings(players, results),
            "action log written behind, complete": _log(logged, players, results),
        }

    def _said(self, told: dict[str, str], what: str) -> list[tuple[str, str]]:
        """(user id, answer text) of every ``what`` the players asked, in order."""
        return [
            (user_id, told.get(interaction_id, ""))
            for user_id, asked in self.asked.items()
            for path, interaction_id in asked
            if path == what
        ]

    def _setups(self, told: dict[str, str], players: list[Any]) -> Check:
        submits = self._said(told, "setup submit")
        confirmed = Counter(user_id for user_id, text in submits if SETUP_DONE in text)
        repeated = sum(ALREADY_SET_UP in text for _, text in submits)
        rows = Counter(p["user_id"] for p in players)
        duplicated = [u for u, n in rows.items() if n > 1]
        lost = [u for u in confirmed if not rows[u]]
        unconfirmed = [u for u in rows if not confirmed[u]]
        twice = [u for u, n in confirmed.items() if n > 1]
        partial = [p["user_id"] for p in players if p["profile"] is None]
        return Check(
            not (duplicated or lost or unconfirmed or twice or partial),
            f"{len(confirmed)} confirmed, {len(players)} player rows: {len(duplicated)} "
            f"duplicated, {len(lost)} lost, {len(unconfirmed)} never confirmed, "
            f"{len(partial)} without a profile; {repeated} repeated submits answered "
            "'already set up'",
        )

    def _queue(self, told: dict[str, str], queued: list[Any]) -> Check:
        expected: dict[str, bool | None] = {}
        for user_id, asked in self.asked.items():
            for path, interaction_id in asked:
                if path.startswith("queue"):
                    expected[user_id] = _in_queue(told.get(interaction_id, ""))
        entries = Counter(q["user_id"] for q in queued)
        twice = [u for u, n in entries.items() if n > 1]
        unknown = [u for u, state in expected.items() if state is None]
        wrong = [
            u
            for u, state in expected.items()
            if state is not None and state != bool(entries.get(u))
        ]
        return Check(
            not (twice or unknown or wrong),
            f"{sum(entries.values())} entries for {len(expected)} players who used the queue: "
            f"{len(wrong)} differ from what they were told, {len(twice)} queued twice, "
            f"{len(unknown)} never told",
        )

    def _countries(self, told: dict[str, str], players: list[Any]) -> Check:
        last: dict[str, str] = {}
        refused = 0
        for user_id, asked in self.asked.items():
            for path, interaction_id in asked:
                text = told.get(interaction_id, "")
                if path in ("setup submit", "setcountry") and (
                    SETUP_DONE in text or COUNTRY_SET in text
                ):
                    found = COUNTRY_CODE.search(text)
                    if found:
                        last[user_id] = found.group(1)
                refused += path == "setcountry" and UNKNOWN_COUNTRY in text
        stored = {p["user_id"]: p["country"] for p in players if p["profile"] is not None}
        wrong = [u for u, code in last.items() if stored.get(u) != code]
        return Check(
            not wrong,
            f"{len(last) - len(wrong)}/{len(last)} profiles hold the country their player "
            f"was told last; {refused} unknown countries refused",
        )

    def _boards(self, told: dict[str, str]) -> Check:
        recorded = [RECORDED in told.get(i, "") for i in self.reports_seen]
        stale = unanswered = 0
        for interaction_id, seen in self.boards_asked:
            found = BOARD_PATTERN.search(told.get(interaction_id, ""))
            if found is None:
                unanswered += 1
            elif int(found.group(1)) < sum(recorded[:seen]):
                stale += 1
        return Check(
            not (stale or unanswered),
            f"{len(self.boards_asked)} leaderboards shown, {stale} missing results confirmed "
            f"before they were asked for, {unanswered} unanswered",
        )


def _answers(snapshot: Snapshot) -> dict[str, str]:
    """What each interaction answered: its response message and its follow-ups."""
    contents: dict[str, str] = {}
    for messages in [*snapshot.ephemeral.values(), *snapshot.messages.values()]:
        for message in messages:
            contents[message["id"]] = message.get("content") or ""
    answers: dict[str, str] = {}
    for interaction_id, view in snapshot.interactions.items():
        ids = list(view.followup_ids)
        if view.ack_type in (4, 5) and view.original_message_id is not None:
            ids.insert(0, view.original_message_id)
        answers[interaction_id] = "\n".join(contents.get(i, "") for i in ids)
    return answers


def _in_queue(text: str) -> bool | None:
    """What a /queue answer told the player: in the queue, out, or nothing."""
    if JOINED in text or ALREADY_QUEUED in text:
        return True
    if any(marker in text for marker in (LEFT, NOT_QUEUED, SETUP_FIRST, ACTIVATE_FIRST)):
        return False
    return None


def _ratings(players: list[Any], results: list[Any]) -> Check:
    by_player = {r["player_id"]: r for r in results}
    wrong = 0
    for player in players:
        if player["profile"] is None:
            continue
        games = by_player.get(player["id"])
        wins = int(games["wins"]) if games else 0
        losses = int(games["games"]) - wins if games else 0
        rating = START_RATING + WIN_POINTS * wins - LOSS_POINTS * losses
        if (player["wins"], player["losses"], player["rating"]) != (wins, losses, rating):
            wrong += 1
    played = sum(int(r["games"]) for r in results)
    return Check(not wrong, f"{wrong} profiles disagree with their {played} results")


def _log(logged: list[Any], players: list[Any], results: list[Any]) -> Check:
    counts = {row["action"]: int(row["n"]) for row in logged}
    setups, reports = counts.get("setup", 0), counts.get("report", 0)
    played = sum(int(r["games"]) for r in results)
    return Check(
        setups == len(players) and reports == played,
        f"{sum(counts.values())} rows: {setups} setups for {len(players)} players, "
        f"{reports} reports for {played} results",
    )
