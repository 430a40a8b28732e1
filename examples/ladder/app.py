"""The ladder on steadybot: every write a short transaction, every slow answer deferred.

- ``/setup`` is a three-step form (race select, region select, name/country modal)
  whose steps wait in :class:`~.forms.SetupForms` (bounded, TTL) and end in ONE
  transaction writing the player and the profile. The player is unique per Discord
  user, so a second submit (a double click, or a retry) is a
  :class:`~steadybot.storage.DuplicateKey` and answers "already set up"; nothing is
  written twice and nothing half.
- Handlers run with ``defer="auto"``: an answer that the database makes slow is
  deferred at ``defer_after`` instead of failing at Discord's 3 s.
- ``/queue join`` is one ``INSERT ... SELECT`` (a player is queued at most once by the
  key); ``/profile`` is one joined query; ``/leaderboard`` is cached in a
  :class:`~steadybot.cache.BoundedCache` and invalidated by every ``/report`` before
  the reporter is answered. A board read that raced the write is not stored (the
  cache's loads lose to invalidations), so nobody told "recorded" sees a board without
  their result.
- Static data is in memory from the start (:mod:`.schema`): validating a country or a
  map costs no round trip.
- The action log is written behind by :class:`~steadybot.storage.BatchedWriter`: one
  ``executemany`` per batch (on size, on time, and at shutdown), never a round trip
  inside a handler.
"""

from __future__ import annotations

from typing import Any, Final

from steadybot import Bot, Interaction, UserFacingError
from steadybot.cache import BoundedCache
from steadybot.storage import BatchedWriter, Connection, DuplicateKey

from .base import LadderBase, user_of
from .forms import SetupForms
from .render import (
    BOARD_SIZE,
    PROFILE_MODAL,
    board_text,
    modal_fields,
    profile_text,
    race_select,
    region_select,
    retry_button,
)
from .schema import MIGRATIONS
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
    STEP_COUNTRY_RETRY,
    STEP_RACE,
    STEP_REGION,
    UNKNOWN_COUNTRY,
)

__all__ = ["LEADERBOARD_TTL", "LOSS_POINTS", "WIN_POINTS", "Ladder"]

WIN_POINTS: Final = 20
LOSS_POINTS: Final = 15
LEADERBOARD_TTL: Final = 30.0  # seconds a rendered board is served while nobody reports
MAX_BOARDS: Final = 16  # one per region and one for the whole ladder
LOG_INSERT: Final = "INSERT INTO action_log (user_id, action, detail, at) VALUES ($1, $2, $3, $4)"
PLAYER_EXISTS: Final = "SELECT id FROM players WHERE user_id = $1"
PROFILE: Final = """
SELECT f.name, f.rating, f.wins, f.losses, p.active,
       r.name AS race, g.name AS region, c.name AS country,
       q.joined_at AS queued_since,
       (SELECT count(*) FROM profiles o WHERE o.rating > f.rating) + 1 AS rank
FROM players p
JOIN profiles f ON f.player_id = p.id
JOIN races r ON r.code = f.race
JOIN regions g ON g.code = f.region
JOIN countries c ON c.code = f.country
LEFT JOIN queue_entries q ON q.player_id = p.id
WHERE p.user_id = $1
"""
TOP: Final = f"""
SELECT f.name, r.name AS race, c.name AS country, f.rating
FROM profiles f
JOIN players p ON p.id = f.player_id
JOIN races r ON r.code = f.race
JOIN countries c ON c.code = f.country
WHERE p.active = 1 AND ($1 = '' OR f.region = $1)
ORDER BY f.rating DESC, f.player_id
LIMIT {BOARD_SIZE}
"""
# One statement: queued only if set up and active; the key refuses a second entry.
JOIN_QUEUE: Final = """
INSERT INTO queue_entries (player_id, joined_at)
SELECT id, CAST($2 AS DOUBLE PRECISION) FROM players WHERE user_id = $1 AND active = 1
"""


class Ladder(LadderBase):
    """The ranked-ladder bot on steadybot's storage layer."""

    label = "ladder"

    def __init__(
        self, bot: Bot, *, schema: str | None = None, latency: tuple[float, float] | None = None
    ) -> None:
        super().__init__(bot, MIGRATIONS, schema=schema, latency=latency)
        self.forms = SetupForms(bot.clock)
        self.boards: BoundedCache[str] = BoundedCache(
            "ladder-leaderboard", clock=bot.clock, max_size=MAX_BOARDS, ttl=LEADERBOARD_TTL
        )
        self._log: BatchedWriter | None = None
        self._register()

    def _register(self) -> None:
        bot = self.bot
        bot.command("setup", ephemeral=True)(self.setup)
        # Memory only, and a modal must be the first answer: never deferred.
        bot.component("setup:race", defer="never", ephemeral=True)(self.pick_race)
        bot.component("setup:region", defer="never", ephemeral=True)(self.pick_region)
        bot.component("setup:retry", defer="never", ephemeral=True)(self.reopen_form)
        bot.modal(PROFILE_MODAL, ephemeral=True)(self.submit_profile)
        bot.command("activate", ephemeral=True)(self.activate)
        bot.command("setcountry", ephemeral=True)(self.set_country)
        bot.command("queue join", ephemeral=True)(self.join_queue)
        bot.command("queue leave", ephemeral=True)(self.leave_queue)
        bot.command("report", ephemeral=True)(self.report)
        bot.command("profile", ephemeral=True)(self.profile)
        bot.command("leaderboard")(self.leaderboard)

    # --- lifecycle ---------------------------------------------------------------------

    async def opened(self) -> None:
        self._log = BatchedWriter.from_settings(
            self.database, LOG_INSERT, self.bot.settings, clock=self.bot.clock
        )
        await self._log.start()
        await self.boards.start()

    async def closing(self) -> None:
        await self.boards.close()
        if self._log is not None:
            await self._log.close()  # the last rows are written here

    async def before_checks(self) -> None:
        if self._log is not None:
            await self._log.flush()

    def _record(self, user_id: str, action: str, detail: str = "") -> None:
        if self._log is not None:
            self._log.add((user_id, action, detail, self.bot.clock.time()))

    # --- /setup: three steps, one transaction --------------------------------------------

    async def setup(self, interaction: Interaction) -> None:
        user_id = user_of(interaction)
        await self.remote.trips(1)
        if await self.database.fetchval(PLAYER_EXISTS, user_id) is not None:
            await interaction.respond(ALREADY_SET_UP)
            return
        self.forms.begin(user_id)
        await interaction.respond(STEP_RACE, components=race_select(self.static))

    async def pick_race(self, interaction: Interaction) -> None:
        draft = self.forms.get(user_of(interaction))
        if draft is None:
            await interaction.update(content=FORM_EXPIRED, components=[])
            return
        race = next(iter(interaction.values), "")
        if race not in self.static.races:
            raise UserFacingError("Pick a race from the list.")
        draft.race = race
        await interaction.update(content=STEP_REGION, components=region_select(self.static))

    async def pick_region(self, interaction: Interaction) -> None:
        draft = self.forms.get(user_of(interaction))
        if draft is None:
            await interaction.update(content=FORM_EXPIRED, components=[])
            return
        region = next(iter(interaction.values), "")
        if region not in self.static.regions:
            raise UserFacingError("Pick a region from the list.")
        draft.region = region
        await interaction.modal(PROFILE_MODAL, "Your ladder profile", modal_fields())

    async def reopen_form(self, interaction: Interaction) -> None:
        if self.forms.get(user_of(interaction)) is None:
            await interaction.update(content=FORM_EXPIRED, components=[])
            return
        await interaction.modal(PROFILE_MODAL, "Your ladder profile", modal_fields())

    async def submit_profile(self, interaction: Interaction) -> None:
        user_id = user_of(interaction)
        name = " ".join(interaction.fields.get("name", "").split())
        if not 2 <= len(name) <= 32:
            raise UserFacingError("Your player name needs 2 to 32 characters.")
        draft = self.forms.get(user_id)
        if draft is None or draft.race is None or draft.region is None:
            # A repeat of a submit that went through already, or an expired form.
            await self.remote.trips(1)
            done = await self.database.fetchval(PLAYER_EXISTS, user_id) is not None
            await interaction.respond(ALREADY_SET_UP if done else FORM_EXPIRED)
            return
        given = interaction.fields.get("country", "")
        country = self.static.country(given)
        if country is None:
            await interaction.respond(
                f"{UNKNOWN_COUNTRY} {given!r}: use a two-letter code such as DE, US or KR. "
                + STEP_COUNTRY_RETRY,
                components=retry_button(),
            )
            return
        race, region = draft.race, draft.region
        await self.remote.trips(3)  # two inserts and the commit
        try:
            async with self.database.transaction() as connection:
                player_id = await connection.fetchval(
                    "INSERT INTO players (user_id, active, created_at) VALUES ($1, 0, $2) "
                    "RETURNING id",
                    user_id,
                    self.bot.clock.time(),
                )
                await connection.execute(
                    "INSERT INTO profiles (player_id, name, race, region, country) "
                    "VALUES ($1, $2, $3, $4, $5)",
                    player_id,
                    name,
                    race,
                    region,
                    country,
                )
        except DuplicateKey:
            self.forms.finish(user_id)
            await interaction.respond(ALREADY_SET_UP)
            return
        self.forms.finish(user_id)
        self._record(user_id, "setup", f"{race} {region} {country}")
        static = self.static
        await interaction.respond(
            f"{SETUP_DONE}: {name}, {static.races[race]}, "
            f"{static.country_name(country)} ({country}). Next: /activate"
        )

    # --- the season ------------------------------------------------------------------------

    async def activate(self, interaction: Interaction) -> None:
        user_id = user_of(interaction)
        await self.remote.trips(1)
        row = await self.database.fetchrow(
            "UPDATE players SET active = 1 WHERE user_id = $1 RETURNING id", user_id
        )
        if row is None:
            raise UserFacingError(SETUP_FIRST)
        self._record(user_id, "activate")
        await interaction.respond(ACTIVATED)

    async def set_country(self, interaction: Interaction, country: str | None = None) -> None:
        user_id = user_of(interaction)
        code = self.static.country(country or "")
        if code is None:  # checked in memory: a typo costs no round trip
            raise UserFacingError(
                f"{UNKNOWN_COUNTRY} {country!r}: use a two-letter code such as DE, US or KR."
            )
        await self.remote.trips(1)
        changed = await self.database.execute(
            "UPDATE profiles SET country = $1 "
            "WHERE player_id = (SELECT id FROM players WHERE user_id = $2)",
            code,
            user_id,
        )
        if not changed:
            raise UserFacingError(SETUP_FIRST)
        self._record(user_id, "setcountry", code)
        await interaction.respond(f"{COUNTRY_SET} {self.static.country_name(code)} ({code}).")

    async def join_queue(self, interaction: Interaction) -> None:
        user_id = user_of(interaction)
        await self.remote.trips(3)  # insert, count, commit
        try:
            async with self.database.transaction() as connection:
                if not await connection.execute(JOIN_QUEUE, user_id, self.bot.clock.time()):
                    raise UserFacingError(await _why_not_playing(connection, user_id))
                waiting = await connection.fetchval("SELECT count(*) FROM queue_entries")
        except DuplicateKey:
            await interaction.respond(ALREADY_QUEUED)
            return
        self._record(user_id, "queue join")
        await interaction.respond(f"{JOINED} ({waiting} waiting).")

    async def leave_queue(self, interaction: Interaction) -> None:
        user_id = user_of(interaction)
        await self.remote.trips(1)
        removed = await self.database.execute(
            "DELETE FROM queue_entries "
            "WHERE player_id IN (SELECT id FROM players WHERE user_id = $1)",
            user_id,
        )
        if removed:
            self._record(user_id, "queue leave")
        await interaction.respond(LEFT if removed else NOT_QUEUED)

    async def report(
        self, interaction: Interaction, result: str | None = None, map: str | None = None
    ) -> None:
        user_id = user_of(interaction)
        outcome = (result or "").strip().lower()
        if outcome not in ("win", "loss"):
            raise UserFacingError("Report your match as `win` or `loss`.")
        map_code = (map or "").strip().lower()
        if map_code not in self.static.maps:
            raise UserFacingError(f"Unknown map {map!r}: one of {', '.join(self.static.maps)}.")
        won = outcome == "win"
        await self.remote.trips(3)  # update, insert, commit
        async with self.database.transaction() as connection:
            row = await connection.fetchrow(
                "UPDATE profiles SET rating = rating + $1, wins = wins + $2, "
                "losses = losses + $3 WHERE player_id = "
                "(SELECT id FROM players WHERE user_id = $4 AND active = 1) "
                "RETURNING player_id, rating",
                WIN_POINTS if won else -LOSS_POINTS,
                int(won),
                int(not won),
                user_id,
            )
            if row is None:
                raise UserFacingError(await _why_not_playing(connection, user_id))
            await connection.execute(
                "INSERT INTO results (player_id, map, won, rating_after, at) "
                "VALUES ($1, $2, $3, $4, $5)",
                row["player_id"],
                map_code,
                int(won),
                row["rating"],
                self.bot.clock.time(),
            )
        self.boards.invalidate_prefix("")  # every board, before answering the reporter
        self._record(user_id, "report", f"{outcome} {map_code}")
        await interaction.respond(
            f"{RECORDED} a {outcome} on {self.static.maps[map_code]}: "
            f"your rating is now {row['rating']}."
        )

    # --- reading -----------------------------------------------------------------------

    async def profile(self, interaction: Interaction) -> None:
        user_id = user_of(interaction)
        await self.remote.trips(1)
        row = await self.database.fetchrow(PROFILE, user_id)
        if row is None:
            raise UserFacingError(SETUP_FIRST)
        await interaction.respond(profile_text(row))

    async def leaderboard(self, interaction: Interaction, region: str | None = None) -> None:
        key = (region or "").strip().lower()
        if key and key not in self.static.regions:
            raise UserFacingError(
                f"Unknown region {region!r}: one of {', '.join(self.static.regions)}."
            )

        async def render() -> str:
            await self.remote.trips(3)  # top, count, commit
            async with self.database.transaction() as connection:
                rows = await connection.fetch(TOP, key)
                results = await connection.fetchval("SELECT count(*) FROM results")
            return board_text(rows, int(results), self.static.regions.get(key))

        await interaction.respond(await self.boards.get_or_load(key or "all", render))

    def own_figures(self) -> dict[str, Any]:
        forms = self.forms.statistics()
        boards = self.boards.statistics()
        figures: dict[str, Any] = {
            "forms_held_peak": forms.peak,
            "forms_held_at_end": forms.held,
            "leaderboard_hits": boards.hits,
            "leaderboard_misses": boards.misses,
            "leaderboard_boards_dropped": boards.invalidations,
        }
        if self._log is not None:
            log = self._log.statistics()
            figures.update(
                action_log_rows=log.written,
                action_log_batches=log.flushes,
                action_log_dropped=log.dropped,
            )
        return figures


async def _why_not_playing(connection: Connection, user_id: str) -> str:
    """Why ``user_id`` cannot queue or report: not set up, or not active."""
    active = await connection.fetchval("SELECT active FROM players WHERE user_id = $1", user_id)
    return SETUP_FIRST if active is None else ACTIVATE_FIRST
