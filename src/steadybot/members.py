"""The member cache: guild members warmed in pages at start, kept fresh, never lost mid-way.

Why a member cache, and why warmed: a permission check needs the member (their roles).
Fetching it per check (``GET /guilds/{id}/members/{user_id}``) costs a round trip
(~200 ms in production) and sits in a bucket Discord keeps small (the emulator's
default: 10 per 10 s per guild), so a busy board queues behind its own look-ups.
Listing members costs one request per 1000 (``GET /guilds/{id}/members?limit=1000
&after=…``, ascending by user id; Discord's default ``limit`` is 1, so a client that
does not page sees one member). Warming a guild at start therefore loads every member
in ``members / 1000`` requests, and checks afterwards read memory.

How it stays right:

- **TTL**: a member lives ``member_cache_ttl`` seconds; a ``get`` after that fetches it
  once (single flight: concurrent ``get``\\ s of one member share one request) and counts
  the fetch. A background **refresh** re-warms the warmed guilds every
  ``member_refresh_interval`` seconds (shorter than the TTL), so members are renewed by
  pages, not one by one.
- **The bot's own writes**: granting or taking a role through :meth:`MemberCache.add_role`
  / :meth:`MemberCache.remove_role` invalidates the member in every process (the cache's
  invalidation bus) and, here, stores the member as the write left it: we know what we
  wrote, so the next check needs no fetch. Writes made while a refresh is paging are
  remembered, so a page read before the write cannot put the old roles back.
- **Pinning**: ``async with members.pinned(guild_id, user_id) as member`` keeps the
  entry from being evicted or expiring until the block ends. An operation that reads
  the member, awaits, and reads it again (the production story: an eviction in the
  middle turned a member into ``None`` and discord.py answered "Supplied parameter is
  not a User nor a Role") sees the same object throughout.

The size bound is the cache's: a guild larger than ``member_cache_size`` is warmed only
as far as it fits (warming further would evict what was just warmed), with a warning
naming the setting.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

import msgspec
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from steadybot.cache import BoundedCache
from steadybot.clock import Clock
from steadybot.config import Settings
from steadybot.errors import DiscordHTTPError, SteadybotError, TransportError
from steadybot.models import Member
from steadybot.rest import RestClient

__all__ = ["MEMBER_CACHE_NAME", "MemberCache", "MemberCacheStatistics", "MemberNotFound"]

log = logging.getLogger("steadybot.members")

MEMBER_CACHE_NAME = "members"
"""The member cache's name: on the invalidation bus and in the metrics."""


class MemberNotFound(SteadybotError):
    """The member is not in the guild (Discord: 404 / 10007 Unknown Member)."""

    def __init__(self, guild_id: str, user_id: str) -> None:
        super().__init__(f"no member {user_id} in guild {guild_id}")
        self.guild_id = guild_id
        self.user_id = user_id


@dataclass(frozen=True, slots=True)
class MemberCacheStatistics:
    """What the member cache did since the bot started."""

    guilds_warmed: int  # guilds warmed at least once
    warmed: int  # members stored by warm-ups and refreshes
    pages: int  # member-list pages requested
    fetched: int  # members fetched one by one (a miss, or an expired entry)
    fetch_failures: int  # one-by-one fetches that failed (unknown member included)
    role_writes: int  # roles granted or taken through the cache
    refreshes: int  # background re-warms of a guild
    size: int  # members held now
    pinned: int  # members pinned now


def member_key(guild_id: str, user_id: str) -> str:
    return f"{guild_id}:{user_id}"


def _guild_tag(guild_id: str) -> str:
    return f"guild:{guild_id}"


class MemberCache:
    """Guild members by (guild id, user id); see the module docstring."""

    def __init__(
        self,
        rest: Callable[[], RestClient],
        cache: BoundedCache[Member],
        *,
        clock: Clock,
        page_size: int = 1000,
        refresh_interval: float = 0.0,
    ) -> None:
        if not 1 <= page_size <= 1000:
            raise ValueError(f"page_size must be 1-1000 (Discord's limit), not {page_size}")
        if refresh_interval < 0:
            raise ValueError("refresh_interval must be >= 0 (0: no refresh)")
        # A callable: the bot rebuilds its REST client when it changes clock.
        self._rest = rest
        self._cache = cache
        self._clock = clock
        self._page_size = page_size
        self._refresh_interval = refresh_interval
        self._warmed_guilds: set[str] = set()
        self._warming = 0  # warm-ups running now
        self._written_while_warming: set[str] = set()
        self._refresher: asyncio.Task[None] | None = None
        self._warmed = self._pages = self._fetched = self._fetch_failures = 0
        self._role_writes = self._refreshes = 0

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        rest: Callable[[], RestClient],
        cache: BoundedCache[Member],
        *,
        clock: Clock,
    ) -> MemberCache:
        return cls(
            rest,
            cache,
            clock=clock,
            page_size=settings.member_warm_page_size,
            refresh_interval=settings.member_refresh_interval,
        )

    @property
    def cache(self) -> BoundedCache[Member]:
        """The bounded cache underneath (its own statistics: hits, misses, evictions)."""
        return self._cache

    # --- warming ------------------------------------------------------------------------

    async def warm(self, guild_id: str) -> int:
        """Load every member of ``guild_id`` page by page; returns how many were stored."""
        started = self._clock.monotonic()
        stored = 0
        after: str | None = None
        page_number = 0
        tags = (_guild_tag(guild_id),)
        self._warming += 1
        try:
            while True:
                page = await self._rest().list_members(guild_id, limit=self._page_size, after=after)
                self._pages += 1
                page_number += 1
                for member in page:
                    if member.user is None:
                        continue  # Discord always sends it in lists; nothing to key by
                    key = member_key(guild_id, member.user.id)
                    if key in self._written_while_warming:
                        continue  # our own write is newer than this page
                    self._cache.set(key, member, tags=tags)
                    stored += 1
                log.info(
                    "warming members of guild %s: %d stored after page %d",
                    guild_id,
                    stored,
                    page_number,
                )
                if len(page) < self._page_size or page[-1].user is None:
                    break
                if stored >= self._cache.max_size:
                    log.warning(
                        "guild %s has more members than the member cache holds (%d): "
                        "warmed that many; raise STEADYBOT_MEMBER_CACHE_SIZE",
                        guild_id,
                        self._cache.max_size,
                    )
                    break
                after = page[-1].user.id
        finally:
            self._warming -= 1
            if not self._warming:
                self._written_while_warming.clear()
        self._warmed += stored
        self._warmed_guilds.add(guild_id)
        log.info(
            "warmed %d members of guild %s in %d page(s), %.2fs",
            stored,
            guild_id,
            page_number,
            self._clock.monotonic() - started,
        )
        return stored

    async def warm_all(self) -> int:
        """Warm every guild the bot is in (``GET /users/@me/guilds``, paged by 200)."""
        total = 0
        after: str | None = None
        while True:
            guilds = await self._rest().list_my_guilds(after=after)
            for guild in guilds:
                total += await self.warm(guild.id)
            if len(guilds) < 200:
                return total
            after = guilds[-1].id

    # --- reading ------------------------------------------------------------------------

    async def get(self, guild_id: str, user_id: str) -> Member:
        """The member: from the cache, else fetched once (counted); raises
        :class:`MemberNotFound` for someone who is not in the guild."""
        return await self._cache.get_or_load(
            member_key(guild_id, user_id),
            lambda: self._fetch(guild_id, user_id),
            tags=(_guild_tag(guild_id),),
        )

    def peek(self, guild_id: str, user_id: str) -> Member | None:
        """The cached member, or None; never fetches."""
        return self._cache.get(member_key(guild_id, user_id))

    def pinned(self, guild_id: str, user_id: str) -> AbstractAsyncContextManager[Member]:
        """The member, held in the cache (no eviction, no expiry) until the block ends."""
        key = member_key(guild_id, user_id)
        return self._cache.pinned(key, lambda: self._fetch(guild_id, user_id))

    async def _fetch(self, guild_id: str, user_id: str) -> Member:
        self._fetched += 1
        try:
            return await self._rest().get_member(guild_id, user_id)
        except DiscordHTTPError as exc:
            self._fetch_failures += 1
            if exc.status == 404:
                raise MemberNotFound(guild_id, user_id) from None
            raise
        except TransportError:
            self._fetch_failures += 1
            raise

    # --- the bot's own writes -----------------------------------------------------------

    def invalidate(self, guild_id: str, user_id: str) -> None:
        """Drop the member here and in every process sharing the cache's bus."""
        self._cache.invalidate(member_key(guild_id, user_id))

    def invalidate_guild(self, guild_id: str) -> None:
        self._cache.invalidate_prefix(f"{guild_id}:")

    async def add_role(
        self, guild_id: str, user_id: str, role_id: str, *, reason: str | None = None
    ) -> None:
        """Grant ``role_id`` (``PUT .../roles/{role_id}``), then update the cache."""
        await self._rest().add_member_role(guild_id, user_id, role_id, reason=reason)
        self._written(guild_id, user_id, lambda roles: [*roles, role_id])

    async def remove_role(
        self, guild_id: str, user_id: str, role_id: str, *, reason: str | None = None
    ) -> None:
        """Take ``role_id`` (``DELETE .../roles/{role_id}``), then update the cache."""
        await self._rest().remove_member_role(guild_id, user_id, role_id, reason=reason)
        self._written(guild_id, user_id, lambda roles: [r for r in roles if r != role_id])

    def _written(
        self, guild_id: str, user_id: str, change: Callable[[list[str]], list[str]]
    ) -> None:
        self._role_writes += 1
        key = member_key(guild_id, user_id)
        before = self._cache.get(key)
        self.invalidate(guild_id, user_id)  # every other process drops its copy
        if self._warming:
            self._written_while_warming.add(key)
        if before is not None:
            roles = change(list(before.roles))
            after = msgspec.structs.replace(before, roles=list(dict.fromkeys(roles)))
            self._cache.set(key, after, tags=(_guild_tag(guild_id),))

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Start the background refresh (when ``refresh_interval`` > 0)."""
        if self._refresh_interval > 0 and self._refresher is None:
            self._refresher = asyncio.create_task(self._refresh_loop())

    async def close(self) -> None:
        task, self._refresher = self._refresher, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _refresh_loop(self) -> None:
        while True:
            await self._clock.sleep(self._refresh_interval)
            for guild_id in sorted(self._warmed_guilds):
                try:
                    await self.warm(guild_id)
                    self._refreshes += 1
                except (DiscordHTTPError, TransportError) as exc:
                    # Entries live on until their TTL; the next refresh tries again.
                    log.warning("member refresh of guild %s failed: %s", guild_id, exc)

    # --- introspection ------------------------------------------------------------------

    def statistics(self) -> MemberCacheStatistics:
        cache = self._cache.statistics()
        return MemberCacheStatistics(
            guilds_warmed=len(self._warmed_guilds),
            warmed=self._warmed,
            pages=self._pages,
            fetched=self._fetched,
            fetch_failures=self._fetch_failures,
            role_writes=self._role_writes,
            refreshes=self._refreshes,
            size=cache.size,
            pinned=cache.pinned,
        )

    def collect(self) -> Iterator[Metric]:
        """Prometheus metrics (registered into ``bot.metrics`` by the bot)."""
        stats = self.statistics()
        for name, value, text in (
            ("warmed", stats.warmed, "Members stored by warm-ups and refreshes."),
            ("pages", stats.pages, "Member-list pages requested."),
            ("fetched", stats.fetched, "Members fetched one by one (miss or expired)."),
            ("role_writes", stats.role_writes, "Roles granted or taken through the cache."),
        ):
            yield CounterMetricFamily(f"steadybot_members_{name}", text, value=value)
        yield GaugeMetricFamily(
            "steadybot_members_guilds_warmed", "Guilds warmed.", value=stats.guilds_warmed
        )
