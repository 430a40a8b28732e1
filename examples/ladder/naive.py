"""The production story's first version of the ladder, as the baseline.

Written the way it usually is, against a remote PostgreSQL:

- every handler answers only after its work (no deferral), and its work is several
  sequential statements, each its own round trip and its own commit: /setup's last
  step makes six, so it often passes Discord's 3 s and the user sees "This
  interaction failed" although the rows were written;
- no transaction: the player row is written before the country is checked, so a typo
  leaves a player without a profile, and nothing can fix it afterwards ("already set
  up");
- no unique keys, a check-then-insert instead: a double submit (or an impatient
  second /queue join) writes the row twice;
- the form's steps in a plain dict that is never emptied;
- the leaderboard cached for a minute and never invalidated: results reported since do
  not show;
- the action log written inline, one more round trip per command.
"""

from __future__ import annotations

from typing import Any, Final

from cachetools import TTLCache

from steadybot import Bot, Interaction
from steadybot.storage import Row

from .base import LadderBase, user_of
from .forms import Draft
from .render import (
    BOARD_SIZE,
    PROFILE_MODAL,
    board_text,
    modal_fields,
    profile_text,
    race_select,
    region_select,
)
from .schema import NAIVE_MIGRATIONS
from .texts import (
    ACTIVATE_FIRST,
    ACTIVATED,
    ALREADY_QUEUED,
    ALREADY_SET_UP,
    COUNTRY_SET,
    FORM_EXPIRED,
    JOINED,
    LEFT,
    NOT_QUEUED,
    RECORDED,
    SETUP_DONE,
    SETUP_FIRST,
    STEP_RACE,
    STEP_REGION,
    UNKNOWN_COUNTRY,
)

__all__ = ["NAIVE_BOARD_TTL", "NaiveLadder"]

NAIVE_BOARD_TTL: Final = 60.0  # "the leaderboard is expensive, cache it for a minute"


class NaiveLadder(LadderBase):
    """The first version: sequential writes, no transaction, no deferral, no keys."""

    label = "naive ladder"

    def __init__(self, bot: Bot, *, latency: tuple[float, float] | None = None) -> None:
        super().__init__(bot, NAIVE_MIGRATIONS, private_sqlite=True, latency=latency)
        self.drafts: dict[str, Draft] = {}  # never emptied
        self.board: TTLCache[str, str] = TTLCache(
            maxsize=1, ttl=NAIVE_BOARD_TTL, timer=bot.clock.monotonic
        )
        for path, handler in (
            ("setup", self.setup),
            ("activate", self.activate),
            ("setcountry", self.set_country),
            ("queue join", self.join_queue),
            ("queue leave", self.leave_queue),
            ("report", self.report),
            ("profile", self.profile),
        ):
            bot.command(path, defer="never", ephemeral=True)(handler)
        bot.command("leaderboard", defer="never")(self.leaderboard)
        bot.component("setup:race", defer="never", ephemeral=True)(self.pick_race)
        bot.component("setup:region", defer="never", ephemeral=True)(self.pick_region)
        bot.modal(PROFILE_MODAL, defer="never", ephemeral=True)(self.submit_profile)

    # One statement, one round trip, one commit: how the first version talked to the DB.
    async def _rows(self, sql: str, *args: object) -> list[Row]:
        await self.remote.trips(1)
        return await self.database.fetch(sql, *args)

    async def _row(self, sql: str, *args: object) -> Row | None:
        rows = await self._rows(sql, *args)
        return rows[0] if rows else None

    async def _run(self, sql: str, *args: object) -> int:
        await self.remote.trips(1)
        return await self.database.execute(sql, *args)

    async def _log(self, user_id: str, action: str, detail: str = "") -> None:
        await self._run(
            "INSERT INTO action_log (user_id, action, detail, at) VALUES ($1, $2, $3, $4)",
            user_id,
            action,
            detail,
            self.bot.clock.time(),
        )

    async def _player(self, user_id: str) -> Row | None:
        return await self._row("SELECT id, active FROM players WHERE user_id = $1", user_id)

    # --- /setup ------------------------------------------------------------------------

    async def setup(self, interaction: Interaction) -> None:
        user_id = user_of(interaction)
        if await self._player(user_id) is not None:
            await interaction.respond(ALREADY_SET_UP)
            return
        self.drafts[user_id] = Draft()
        await interaction.respond(STEP_RACE, components=race_select(self.static))

    async def pick_race(self, interaction: Interaction) -> None:
        draft = self.drafts.get(user_of(interaction))
        if draft is None:
            await interaction.update(content=FORM_EXPIRED, components=[])
            return
        draft.race = next(iter(interaction.values), "")
        await interaction.update(content=STEP_REGION, components=region_select(self.static))

    async def pick_region(self, interaction: Interaction) -> None:
        draft = self.drafts.get(user_of(interaction))
        if draft is None:
            await interaction.update(content=FORM_EXPIRED, components=[])
            return
        draft.region = next(iter(interaction.values), "")
        await interaction.modal(PROFILE_MODAL, "Your ladder profile", modal_fields())

    async def submit_profile(self, interaction: Interaction) -> None:
        user_id = user_of(interaction)
        draft = self.drafts.get(user_id)
        if draft is None:
            await interaction.respond(FORM_EXPIRED)
            return
        if await self._player(user_id) is not None:  # check, then insert: a race
            await interaction.respond(ALREADY_SET_UP)
            return
        now = self.bot.clock.time()
        await self._run(
            "INSERT INTO players (user_id, active, created_at) VALUES ($1, 0, $2)", user_id, now
        )
        player = await self._row("SELECT max(id) AS id FROM players WHERE user_id = $1", user_id)
        given = interaction.fields.get("country", "")
        country = await self._row(
            "SELECT code, name FROM countries WHERE code = $1", given.strip().upper()
        )
        if player is None or country is None:
            await interaction.respond(f"{UNKNOWN_COUNTRY} {given!r}.")
            return
        name = interaction.fields.get("name", "").strip()
        await self._run(
            "INSERT INTO profiles (player_id, name, race, region, country) "
            "VALUES ($1, $2, $3, $4, $5)",
            player["id"],
            name,
            draft.race,
            draft.region,
            country["code"],
        )
        await self._log(user_id, "setup", f"{draft.race} {draft.region} {country['code']}")
        await interaction.respond(
            f"{SETUP_DONE}: {name}, {self.static.races.get(draft.race or '', '?')}, "
            f"{country['name']} ({country['code']}). Next: /activate"
        )

    # --- the season ------------------------------------------------------------------------

    async def activate(self, interaction: Interaction) -> None:
        user_id = user_of(interaction)
        player = await self._player(user_id)
        if player is None:
            await interaction.respond(SETUP_FIRST)
            return
        await self._run("UPDATE players SET active = 1 WHERE id = $1", player["id"])
        await self._log(user_id, "activate")
        await interaction.respond(ACTIVATED)

    async def set_country(self, interaction: Interaction, country: str | None = None) -> None:
        user_id = user_of(interaction)
        player = await self._player(user_id)
        if player is None:
            await interaction.respond(SETUP_FIRST)
            return
        code = (country or "").strip().upper()  # unchecked: the foreign key says no
        await self._run("UPDATE profiles SET country = $1 WHERE player_id = $2", code, player["id"])
        await self._log(user_id, "setcountry", code)
        await interaction.respond(f"{COUNTRY_SET} {code} ({code}).")

    async def join_queue(self, interaction: Interaction) -> None:
        user_id = user_of(interaction)
        player = await self._player(user_id)
        if player is None or not player["active"]:
            await interaction.respond(SETUP_FIRST if player is None else ACTIVATE_FIRST)
            return
        queued = await self._row(
            "SELECT player_id FROM queue_entries WHERE player_id = $1", player["id"]
        )
        if queued is not None:
            await interaction.respond(ALREADY_QUEUED)
            return
        await self._run(
            "INSERT INTO queue_entries (player_id, joined_at) VALUES ($1, $2)",
            player["id"],
            self.bot.clock.time(),
        )
        await self._log(user_id, "queue join")
        await interaction.respond(f"{JOINED}.")

    async def leave_queue(self, interaction: Interaction) -> None:
        user_id = user_of(interaction)
        player = await self._player(user_id)
        removed = 0
        if player is not None:
            removed = await self._run(
                "DELETE FROM queue_entries WHERE player_id = $1", player["id"]
            )
            await self._log(user_id, "queue leave")
        await interaction.respond(LEFT if removed else NOT_QUEUED)

    async def report(
        self, interaction: Interaction, result: str | None = None, map: str | None = None
    ) -> None:
        user_id = user_of(interaction)
        player = await self._player(user_id)
        if player is None or not player["active"]:
            await interaction.respond(SETUP_FIRST if player is None else ACTIVATE_FIRST)
            return
        profile = await self._row(
            "SELECT rating, wins, losses FROM profiles WHERE player_id = $1", player["id"]
        )
        if profile is None:
            await interaction.respond(SETUP_FIRST)
            return
        won = (result or "").lower() == "win"
        rating = profile["rating"] + (20 if won else -15)
        await self._run(  # read, compute, write back: a lost update when two overlap
            "UPDATE profiles SET rating = $1, wins = $2, losses = $3 WHERE player_id = $4",
            rating,
            profile["wins"] + int(won),
            profile["losses"] + int(not won),
            player["id"],
        )
        await self._run(
            "INSERT INTO results (player_id, map, won, rating_after, at) "
            "VALUES ($1, $2, $3, $4, $5)",
            player["id"],
            (map or "").lower(),
            int(won),
            rating,
            self.bot.clock.time(),
        )
        await self._log(user_id, "report", f"{result} {map}")
        outcome = "win" if won else "loss"
        await interaction.respond(f"{RECORDED} a {outcome}: your rating is now {rating}.")

    # --- reading: one query per fact ----------------------------------------------------

    async def profile(self, interaction: Interaction) -> None:
        user_id = user_of(interaction)
        player = await self._player(user_id)
        profile = (
            None
            if player is None
            else await self._row("SELECT * FROM profiles WHERE player_id = $1", player["id"])
        )
        if player is None or profile is None:
            await interaction.respond(SETUP_FIRST)
            return
        race = await self._row("SELECT name FROM races WHERE code = $1", profile["race"])
        country = await self._row("SELECT name FROM countries WHERE code = $1", profile["country"])
        region = await self._row("SELECT name FROM regions WHERE code = $1", profile["region"])
        queued = await self._row(
            "SELECT joined_at FROM queue_entries WHERE player_id = $1", player["id"]
        )
        better = await self._row(
            "SELECT count(*) AS n FROM profiles WHERE rating > $1", profile["rating"]
        )
        row: dict[str, Any] = {
            **profile,
            "active": player["active"],
            "race": race["name"] if race else "?",
            "country": country["name"] if country else "?",
            "region": region["name"] if region else "?",
            "queued_since": queued["joined_at"] if queued else None,
            "rank": (better["n"] if better else 0) + 1,
        }
        await interaction.respond(profile_text(row))

    async def leaderboard(self, interaction: Interaction, region: str | None = None) -> None:
        board = self.board.get("all")
        if board is None:
            rows = await self._rows(
                "SELECT f.name, r.name AS race, c.name AS country, f.rating FROM profiles f "
                "JOIN races r ON r.code = f.race JOIN countries c ON c.code = f.country "
                f"ORDER BY f.rating DESC LIMIT {BOARD_SIZE}"
            )
            results = await self._row("SELECT count(*) AS n FROM results")
            board = self.board["all"] = board_text(rows, int(results["n"] if results else 0), None)
        await interaction.respond(board)

    def own_figures(self) -> dict[str, Any]:
        return {"forms_held_at_end": len(self.drafts)}
