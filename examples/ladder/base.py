"""What both versions of the ladder share: the database's life and the static data.

On start (``Bot.on_start``) the ladder opens its store (:mod:`.store`), applies its
migrations and loads the static data into memory once; on close (``Bot.on_close``,
after in-flight handlers finished) it lets the version flush what it holds, keeps its
figures, and closes the store.
"""

from __future__ import annotations

from typing import Any

from steadybot import Bot, Interaction, UserFacingError
from steadybot.storage import Database, Migration

from .schema import StaticData, load_static
from .store import RemoteLatency, Store, open_store

__all__ = ["LadderBase", "user_of"]


def user_of(interaction: Interaction) -> str:
    """The invoking user's id (every ladder interaction has one)."""
    user_id = interaction.user_id
    if user_id is None:
        raise UserFacingError("The ladder needs to know who you are.")
    return user_id


class LadderBase:
    """A ladder bot's data: database, static data, simulated network, lifecycle."""

    label = "ladder"

    def __init__(
        self,
        bot: Bot,
        migrations: tuple[Migration, ...],
        *,
        schema: str | None = None,
        private_sqlite: bool = False,
        latency: tuple[float, float] | None = None,
    ) -> None:
        self.bot = bot
        self.migrations = migrations
        self.schema = schema
        self.private_sqlite = private_sqlite
        self.remote = RemoteLatency(bot.clock)
        if latency is not None:
            self.remote.per_trip = latency
        self._store: Store | None = None
        self._static: StaticData | None = None
        self._final: dict[str, object] = {}
        bot.on_start(self.start)
        bot.on_close(self.close)

    @property
    def running(self) -> bool:
        """Started and not closed: its database is open."""
        return self._store is not None

    @property
    def database(self) -> Database:
        if self._store is None:
            raise RuntimeError(f"the {self.label} is not running")
        return self._store.database

    @property
    def static(self) -> StaticData:
        if self._static is None:
            raise RuntimeError(f"the {self.label} is not running")
        return self._static

    async def start(self) -> None:
        """Open the database (migrated) and load the static data, once."""
        self.remote.clock = self.bot.clock  # the bot's clock may have been swapped
        self._store = await open_store(
            self.bot.settings,
            self.migrations,
            clock=self.bot.clock,
            schema=self.schema,
            private_sqlite=self.private_sqlite,
        )
        try:
            self._static = await load_static(self._store.database)
            await self.opened()
        except BaseException:
            await self._store.close()
            self._store = None
            raise

    async def close(self) -> None:
        """Flush, keep the figures, close the database."""
        store = self._store
        if store is None:
            return
        try:
            await self.closing()
        finally:
            self._final = self.figures()
            self._store = None
            await store.close()

    async def opened(self) -> None:
        """The version's own start work (after the static data is loaded)."""

    async def closing(self) -> None:
        """The version's own close work (before the database closes)."""

    async def before_checks(self) -> None:
        """Make everything the bot holds visible in the database (the crowd's checks
        read it next)."""

    def figures(self) -> dict[str, object]:
        """What this run cost; after close, the figures it had when it closed."""
        if self._store is None:
            return dict(self._final)
        stats = self._store.database.statistics()
        return {
            "database": self._store.description,
            "db_round_trips": self.remote.trips_made,
            "slow_round_trips": self.remote.slow_trips,
            "transactions": stats.transactions,
            "rolled_back": stats.rolled_back,
            "conflict_retries": stats.retries,
            **self.own_figures(),
        }

    def own_figures(self) -> dict[str, Any]:
        return {}
