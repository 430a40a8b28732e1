"""The crafting board on steadybot: what each button does, and the jobs behind it.

- Static data at start: the profession roles (created when missing), then the member
  cache is warmed (``bot.warm_members()``), all before the first interaction.
- Permission checks read the member cache, pinned for the operation
  (``bot.members.pinned``): no API call, and no eviction mid-way.
- ``/profession join`` grants the role through ``bot.members.add_role``, which updates
  the cache (and invalidates it in other processes): the new crafter can claim at once.
- Claim, confirm, complete and release are ``exclusive="user"`` (a double click runs
  once; the second click gets the busy line) and ``serialize`` per request (two crafters
  racing for one request take turns; so does the expiry job, at background priority).
  Every change is a compare-and-set in the store, which is what makes one claim per
  request true; the guards only save the losers the work.
- Each change edits the request card and sends its requester an ephemeral notice, both
  through the requester's own interaction token (kept for its 15 minutes in a bounded
  cache; a DM after that), so no channel message bucket is spent on them.
- Public confirmations ("… claimed …") are follow-ups; a tracked job deletes them
  ``confirmation_ttl`` seconds later with :class:`~steadybot.rest.cleanup.MessageCleaner`
  (bulk deletes, paced by the buckets).
- Fast mode: listed users skip the "are you sure?" step when claiming.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from examples.crafting.cards import PROFESSIONS, card, confirm_prompt, confirmation, notice, short
from examples.crafting.store import (
    CraftRequest,
    IllegalChange,
    RequestState,
    RequestStore,
    VersionConflict,
)
from steadybot import Bot, Interaction
from steadybot.cache import BoundedCache
from steadybot.errors import RateLimited, ServerError, SteadybotError, TransportError
from steadybot.members import MemberNotFound
from steadybot.models import Member
from steadybot.rest.cleanup import MessageCleaner

__all__ = ["BUSY", "DENIED", "Board", "CraftingSettings", "profession_roles"]

log = logging.getLogger("examples.crafting")

BUSY = "⏳ Still on your last click for this request."
DENIED = "🚫 Only members of the {profession}s' guild can take this request."
FASTER = "🐢 Someone was faster: the request is {state} now."
BOARD_QUERY_SECONDS = 0.05  # stands for the database query behind /craft board
REQUESTER_TOKEN_TTL = 14 * 60.0  # an interaction token works for 15 minutes
PRELOAD_ATTEMPTS = 3
PRELOAD_PAUSE = 1.0  # seconds between preload attempts


class CraftingSettings(BaseSettings):
    """The board's own settings (``CRAFTING_*`` environment variables)."""

    model_config = SettingsConfigDict(env_prefix="CRAFTING_", extra="ignore", frozen=True)

    fast_mode_users: frozenset[str] = Field(
        frozenset(), description="Users whose claims skip the 'are you sure?' step."
    )
    claim_ttl: float = Field(
        6.0, gt=0, description="Seconds a claim lasts without completion before it expires."
    )
    confirmation_ttl: float = Field(
        2.0, ge=0, description="Seconds a public confirmation stays before the cleanup."
    )
    board_cache_ttl: float = Field(30.0, gt=0, description="Seconds a board listing is cached.")
    confirm_ttl: float = Field(60.0, gt=0, description="Seconds a claim's Confirm button works.")


async def profession_roles(bot: Bot) -> dict[str, str]:
    """One role per profession (profession → role id), created when missing. A failed
    create is tried again after listing the roles anew: a create whose answer was lost
    may have worked, and a second create would make a duplicate role."""
    rest = bot.rest
    for attempt in range(PRELOAD_ATTEMPTS):
        try:
            role_ids: dict[str, str] = {}
            for guild in await rest.list_my_guilds():
                existing = {role.name: role.id for role in await rest.list_guild_roles(guild.id)}
                for profession in PROFESSIONS:
                    role_id = existing.get(profession)
                    if role_id is None:
                        body = {"name": profession, "mentionable": True}
                        role_id = (await rest.create_role(guild.id, body)).id
                    role_ids[profession] = role_id
            return role_ids
        except (ServerError, RateLimited, TransportError) as exc:
            if attempt + 1 == PRELOAD_ATTEMPTS:
                raise
            log.warning("preloading the profession roles failed (%s); again", exc)
            await bot.clock.sleep(PRELOAD_PAUSE)
    raise AssertionError("unreachable")


def by_request(interaction: Interaction) -> str:
    """The serialization key of every change to one request (and of its expiry job)."""
    return f"request:{interaction.args['request_id']}"


class Board:
    """The steadybot board: state, jobs and handlers, registered on ``bot``."""

    def __init__(self, bot: Bot, settings: CraftingSettings) -> None:
        self.bot = bot
        self.settings = settings
        self.store = RequestStore()
        self.fast_mode_users: set[str] = set(settings.fast_mode_users)
        self.role_ids: dict[str, str] = {}  # profession → role id
        self._confirmations: list[tuple[str, str, float]] = []  # channel, message, posted
        self.counts = {"claims": 0, "conflicts": 0, "expired": 0, "denied": 0}
        self.cleanup = {"deleted": 0, "bulk_requests": 0, "single_requests": 0, "failed": 0}
        bot.on_start(self.preload_roles)
        bot.warm_members()
        self._register()

    # --- caches (made on first use, on the bot's clock) ----------------------------------

    @property
    def listings(self) -> BoundedCache[list[CraftRequest]]:
        """Open requests per profession, for /craft board; dropped by tag on a change."""
        return self.bot.cache("crafting-board", max_size=64, ttl=self.settings.board_cache_ttl)

    @property
    def requesters(self) -> BoundedCache[Interaction]:
        """Each request's own /craft request interaction: its token edits the card."""
        return self.bot.cache("crafting-requesters", max_size=10_000, ttl=REQUESTER_TOKEN_TTL)

    @property
    def pending(self) -> BoundedCache[int]:
        """Claims waiting for their Confirm click: the version the user was shown."""
        return self.bot.cache("crafting-confirm", max_size=10_000, ttl=self.settings.confirm_ttl)

    # --- static data ------------------------------------------------------------------

    async def preload_roles(self) -> None:
        """The profession roles, looked up (and created when missing) at start."""
        self.role_ids = await profession_roles(self.bot)

    def may_craft(self, member: Member, profession: str) -> bool:
        return self.role_ids.get(profession) in member.roles

    # --- handlers ---------------------------------------------------------------------

    def _register(self) -> None:
        bot = self.bot
        guarded: dict[str, Any] = {
            "ephemeral": True,
            "exclusive": "user",
            "serialize": by_request,
            "busy": BUSY,
        }
        bot.command("profession join", ephemeral=True)(self.join)
        bot.command("profession leave", ephemeral=True)(self.leave)
        bot.command("craft request")(self.request)
        bot.command("craft board", ephemeral=True)(self.listing)
        bot.component("craft:claim:{request_id}", **guarded)(self.claim)
        bot.component("craft:confirm:{request_id}", **guarded)(self.confirm)
        bot.component("craft:complete:{request_id}", **guarded)(self.complete)
        bot.component("craft:release:{request_id}", **guarded)(self.release)

    async def join(self, interaction: Interaction, profession: str) -> None:
        guild_id, user_id = _where(interaction)
        role_id = self.role_ids.get(profession)
        if role_id is None:
            await interaction.respond(f"There is no {profession} guild here.")
            return
        await self.bot.members.add_role(guild_id, user_id, role_id, reason="crafting: joined")
        await interaction.respond(f"{PROFESSIONS[profession][0]} You are a {profession} now.")

    async def leave(self, interaction: Interaction, profession: str) -> None:
        guild_id, user_id = _where(interaction)
        role_id = self.role_ids.get(profession)
        if role_id is not None:
            await self.bot.members.remove_role(guild_id, user_id, role_id, reason="crafting: left")
        await interaction.respond(f"You are no longer a {profession}.")

    async def request(self, interaction: Interaction, profession: str, item: str) -> None:
        guild_id, user_id = _where(interaction)
        if profession not in PROFESSIONS:
            await interaction.respond(f"Unknown profession {profession!r}.", ephemeral=True)
            return
        requester = await self.bot.members.get(guild_id, user_id)
        request = self.store.add(
            CraftRequest(
                id=interaction.id,
                guild_id=guild_id,
                channel_id=interaction.channel_id or "",
                requester_id=user_id,
                profession=profession,
                item=item[:100],
            )
        )
        self.requesters.set(request.id, interaction)
        self.listings.invalidate_tag(f"profession:{profession}")
        body = card(request, _name(requester))
        await interaction.respond(body["content"], components=body["components"])

    async def listing(self, interaction: Interaction, profession: str) -> None:
        requests = await self.listings.get_or_load(
            f"profession:{profession}",
            lambda: self._open(profession),
            tags=(f"profession:{profession}",),
        )
        lines = [f"{short(r)} {r.item} for <@{r.requester_id}>" for r in requests[:20]]
        await interaction.respond("\n".join(lines) or f"No open {profession} requests.")

    async def _open(self, profession: str) -> list[CraftRequest]:
        await self.bot.clock.sleep(BOARD_QUERY_SECONDS)
        return self.store.open_requests(profession)

    async def claim(self, interaction: Interaction, request_id: str) -> None:
        request = await self._crafter_check(interaction, request_id)
        if request is None:
            return
        user_id = interaction.user_id or ""
        if user_id in self.fast_mode_users:  # fast mode: no "are you sure?"
            await self._claim(interaction, request, request.version)
            return
        self.pending.set(f"{user_id}:{request.id}", request.version)
        await interaction.respond(
            f"Take {request.item} ({short(request)})?",
            components=confirm_prompt(request.id),
        )

    async def confirm(self, interaction: Interaction, request_id: str) -> None:
        key = f"{interaction.user_id}:{request_id}"
        version = self.pending.get(key)
        if version is None:
            await interaction.respond("This confirmation has expired; click Claim again.")
            return
        self.pending.invalidate(key)
        request = await self._crafter_check(interaction, request_id)
        if request is not None:
            await self._claim(interaction, request, version)

    async def _crafter_check(
        self, interaction: Interaction, request_id: str
    ) -> CraftRequest | None:
        """The request if it is open and the user may take it; else answers why not."""
        request = self.store.get(request_id)
        if request is None:
            await interaction.respond("This request no longer exists.")
            return None
        guild_id, user_id = _where(interaction)
        try:
            # Pinned: the member cannot be evicted while the check and the claim run.
            async with self.bot.members.pinned(guild_id, user_id) as crafter:
                allowed = self.may_craft(crafter, request.profession)
        except MemberNotFound:
            allowed = False
        if not allowed:
            self.counts["denied"] += 1
            await interaction.respond(DENIED.format(profession=request.profession))
            return None
        if request.state is not RequestState.OPEN:
            await interaction.respond(FASTER.format(state=request.state.value))
            return None
        return request

    async def _claim(self, interaction: Interaction, request: CraftRequest, version: int) -> None:
        user_id = interaction.user_id or ""
        changed = await self.change(
            interaction, request, version, RequestState.CLAIMED, crafter_id=user_id
        )
        if changed is None:
            return
        self.counts["claims"] += 1
        self.bot.background(
            f"request:{changed.id}",
            lambda: self.expire(changed.id, changed.version),
            delay=self.settings.claim_ttl,
        )

    async def complete(self, interaction: Interaction, request_id: str) -> None:
        request = await self._own_claim(interaction, request_id)
        if request is not None:
            await self.change(
                interaction,
                request,
                request.version,
                RequestState.COMPLETED,
                crafter_id=request.crafter_id,
            )

    async def release(self, interaction: Interaction, request_id: str) -> None:
        request = await self._own_claim(interaction, request_id)
        if request is not None:
            await self.change(interaction, request, request.version, RequestState.OPEN)

    async def _own_claim(self, interaction: Interaction, request_id: str) -> CraftRequest | None:
        request = self.store.get(request_id)
        if request is None or request.crafter_id != interaction.user_id:
            await interaction.respond("🚫 This is not your claim (it may have expired).")
            return None
        return request

    # --- one change: store, card, notice, confirmation ----------------------------------

    async def change(
        self,
        interaction: Interaction | None,
        request: CraftRequest,
        version: int,
        state: RequestState,
        *,
        crafter_id: str | None = None,
        why: str = "",
    ) -> CraftRequest | None:
        """Compare-and-set in the store, then tell everyone; None if it lost the race."""
        actor = (interaction.user_id or "") if interaction is not None else "expiry"
        try:
            changed = self.store.change(
                request.id,
                expected_version=version,
                state=state,
                by=actor,
                crafter_id=crafter_id,
                at=self.bot.clock.monotonic(),
            )
        except (VersionConflict, IllegalChange):
            self.counts["conflicts"] += 1
            if interaction is not None:
                current = self.store.get(request.id) or request
                await interaction.respond(FASTER.format(state=current.state.value))
            return None
        self.listings.invalidate_tag(f"profession:{request.profession}")
        done = {"claimed": "claimed", "completed": "completed", "open": "released"}[state.value]
        if interaction is not None:
            await interaction.respond(f"✅ You {done} {changed.item} ({short(changed)}).")
        await self._announce(changed, why)
        if interaction is not None:
            posted = await interaction.followup(confirmation(changed, actor, done), ephemeral=False)
            if posted is not None:
                self._confirmed(posted.channel_id or changed.channel_id, posted.id)
        return changed

    async def expire(self, request_id: str, version: int) -> None:
        """The expiry job: release a claim nobody completed (in the request's turn)."""
        request = self.store.get(request_id)
        if request is None or request.version != version:
            return  # completed or released meanwhile
        if await self.change(None, request, version, RequestState.OPEN, why="claim expired"):
            self.counts["expired"] += 1

    async def _announce(self, request: CraftRequest, why: str) -> None:
        """The card shows the change; its requester gets a notice of it."""
        try:
            requester = await self.bot.members.get(request.guild_id, request.requester_id)
            name = _name(requester)
        except MemberNotFound:
            name = "a former member"
        origin = self.requesters.get(request.id)
        text = notice(request, why)
        try:
            if origin is not None:
                body = card(request, name)
                await origin.edit_original(body["content"], components=body["components"])
                await origin.followup(text, ephemeral=True)
            else:  # the token has died: the card stays as it was, the notice goes by DM
                dm = await self.bot.rest.create_dm(request.requester_id)
                await self.bot.rest.create_message(dm.id, {"content": text})
        except SteadybotError:
            log.exception("could not show request %s's change to its requester", request.id)

    # --- cleanup of confirmations --------------------------------------------------------

    def _confirmed(self, channel_id: str, message_id: str) -> None:
        first = not self._confirmations
        self._confirmations.append((channel_id, message_id, self.bot.clock.monotonic()))
        if first:  # one tracked job at a time; it runs until none is left
            self.bot.spawn(self._clean_confirmations())

    async def _clean_confirmations(self) -> None:
        clock, ttl = self.bot.clock, self.settings.confirmation_ttl
        cleaner = MessageCleaner(self.bot.rest, clock=clock, reason="crafting confirmations")
        while self._confirmations:
            oldest = self._confirmations[0][2]
            await clock.sleep(max(0.0, oldest + ttl - clock.monotonic()))
            now = clock.monotonic()
            due = [c for c in self._confirmations if c[2] + ttl <= now]
            self._confirmations = [c for c in self._confirmations if c[2] + ttl > now]
            for channel_id in dict.fromkeys(c[0] for c in due):
                ids = [message_id for channel, message_id, _ in due if channel == channel_id]
                report = await cleaner.delete(channel_id, ids, dm=False)
                self.cleanup["deleted"] += len(report.deleted) + len(report.gone)
                self.cleanup["failed"] += len(report.failed)
                self.cleanup["bulk_requests"] += report.bulk_requests
                self.cleanup["single_requests"] += report.single_requests


def _where(interaction: Interaction) -> tuple[str, str]:
    guild_id, user_id = interaction.guild_id, interaction.user_id
    if guild_id is None or user_id is None:
        raise SteadybotError("the crafting board lives in a guild")
    return guild_id, user_id


def _name(member: Member) -> str:
    user = member.user
    return member.nick or (user.global_name or user.username if user is not None else "someone")
