"""The bot's optional parts: made on first use, on the bot's clock, wired in once.

A bot that never asks for a cache opens no invalidation bus; one that has no
``exclusive=`` handler and never touches ``bot.locks`` opens no coordination backend.
So each optional part is made the first time it is asked for, and at that moment it is
wired into the bot once and for all:

========================  ==================================================================
part                      wiring
========================  ==================================================================
select resets             metrics; closed with the bot (after the handlers' grace)
coordination (guards)     metrics; closed with the bot (its Redis client with it)
caches                    metrics; started before interactions (at once if asked for after
                          the start), closed after the handlers
member cache              metrics; closed with the bot (its refresh task)
outbox and relay          metrics, health; the relay starts and closes with the bot
breakers                  metrics, health (an open breaker degrades the verdict)
========================  ==================================================================

Every part takes the bot's clock (and often its REST client) when it is made and keeps
it: its timers, TTLs and leases run on that clock. That is why
:meth:`steadybot.Bot.use_clock` refuses to run once any part exists
(:meth:`BotParts.made` names them): swapping the clock under a part would leave it on
the old one, and rebuilding it would hand users a new cache or lock while they hold the
old one, and drop the old one's Redis connection unclosed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from steadybot.cache import BoundedCache
from steadybot.cache_registry import CacheRegistry, TtlSetting
from steadybot.components.reset import ResetSettings, SelectResetManager
from steadybot.coordination.backends import coordination_from_settings
from steadybot.interactions.guards import HandlerGuards
from steadybot.members import MEMBER_CACHE_NAME, MemberCache
from steadybot.observability.health import Status
from steadybot.outbox import Outbox, OutboxRelay, OutboxSettings
from steadybot.resilience.breaker import BreakerState, CircuitBreaker

if TYPE_CHECKING:
    from steadybot.bot import Bot
    from steadybot.storage import Database

__all__ = ["BotParts"]


class BotParts:
    """The optional parts of one bot; see the module docstring."""

    def __init__(self, bot: Bot, *, started: Callable[[], bool]) -> None:
        self._bot = bot
        self._started = started  # the bot's start hooks ran (a late cache starts at once)
        self._resets: SelectResetManager | None = None
        self._guards: HandlerGuards | None = None
        self._caches: CacheRegistry | None = None
        self._members: MemberCache | None = None
        self._outbox: Outbox | None = None
        self._outbox_relay: OutboxRelay | None = None
        self._breakers: dict[str, CircuitBreaker] = {}

    def made(self) -> list[str]:
        """The parts made so far, by what a user called to make them."""
        made = {
            "resets": self._resets,
            "guards/locks/flights": self._guards,
            "caches": self._caches,
            "members": self._members,
            "outbox": self._outbox,
        }
        names = [name for name, part in made.items() if part is not None]
        names += [f"breaker({name!r})" for name in self._breakers]
        return names

    async def close(self) -> None:
        """Close the parts the bot closes itself (the rest close in its hooks)."""
        if self._resets is not None:
            await self._resets.close()
        if self._guards is not None:
            await self._guards.close()

    # --- select resets ----------------------------------------------------------------

    @property
    def resets(self) -> SelectResetManager:
        if self._resets is None:
            bot = self._bot
            self._resets = SelectResetManager(
                bot.rest, clock=bot.clock, settings=ResetSettings.from_settings(bot.settings)
            )
            bot.metrics.register(self._resets.collect)
        return self._resets

    @property
    def reset_manager(self) -> SelectResetManager | None:
        return self._resets

    # --- coordination -----------------------------------------------------------------

    @property
    def guards(self) -> HandlerGuards:
        if self._guards is None:
            bot = self._bot
            coordination = coordination_from_settings(bot.settings, bot.clock)
            self._guards = HandlerGuards(coordination, clock=bot.clock, settings=bot.settings)
            bot.metrics.register(self._guards.collect)
        return self._guards

    # --- outbox -----------------------------------------------------------------------

    def use_outbox(self, database: Database, settings: OutboxSettings | None) -> Outbox:
        if self._outbox is not None:
            raise RuntimeError("this bot already has an outbox")
        bot = self._bot
        outbox_settings = settings or OutboxSettings.from_settings(bot.settings)
        outbox = self._outbox = Outbox(database, clock=bot.clock, settings=outbox_settings)
        relay = self._outbox_relay = OutboxRelay(outbox, bot.rest, clock=bot.clock)
        bot.on_start(relay.start)
        bot.on_close(relay.close)
        bot.metrics.register(relay.collect)
        bot.health.register(relay.health_check)
        return outbox

    @property
    def outbox(self) -> Outbox:
        if self._outbox is None:
            raise RuntimeError("no outbox: call bot.use_outbox(database) first")
        return self._outbox

    @property
    def outbox_relay(self) -> OutboxRelay | None:
        return self._outbox_relay

    # --- caches and the member cache --------------------------------------------------

    @property
    def caches(self) -> CacheRegistry:
        if self._caches is None:
            bot = self._bot
            registry = self._caches = CacheRegistry(bot.settings, lambda: bot.clock)
            bot.on_start(registry.start)
            bot.on_close(registry.close)
            bot.metrics.register(registry.collect)
            if self._started():  # first asked for after the start hooks ran
                bot.spawn(registry.start())
        return self._caches

    def cache(self, name: str, max_size: int | None, ttl: TtlSetting) -> BoundedCache[Any]:
        return self.caches.get(name, max_size=max_size, ttl=ttl)

    @property
    def members(self) -> MemberCache:
        if self._members is None:
            bot = self._bot
            settings = bot.settings
            cache = self.cache(
                MEMBER_CACHE_NAME,
                max_size=settings.member_cache_size,
                ttl=settings.member_cache_ttl,
            )
            members = self._members = MemberCache.from_settings(
                settings, lambda: bot.rest, cache, clock=bot.clock
            )
            bot.on_close(members.close)
            bot.metrics.register(members.collect)
        return self._members

    def warm_members(self, guild_id: str | None) -> None:
        self.caches  # noqa: B018 - made now, so the caches start before the warm-up

        async def warm_member_cache() -> None:
            if guild_id is None:
                await self.members.warm_all()
            else:
                await self.members.warm(guild_id)
            self.members.start()  # the periodic refresh of what was warmed

        self._bot.on_start(warm_member_cache)

    # --- breakers ---------------------------------------------------------------------

    def breaker(self, name: str, limits: dict[str, Any]) -> CircuitBreaker:
        existing = self._breakers.get(name)
        if existing is not None:
            return existing
        bot = self._bot
        breaker = self._breakers[name] = CircuitBreaker(name, bot.clock, **limits)

        def check() -> tuple[Status, str] | None:
            if breaker.state is BreakerState.CLOSED:
                return None
            return ("warning", f"breaker {name} is {breaker.state.value}: feature degraded")

        bot.health.register(check)
        bot.metrics.register(breaker.collect)
        return breaker
