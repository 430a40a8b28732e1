"""The crafting board's first version, as it ran in production before steadybot.

- Every permission check fetches the member (``GET /guilds/{id}/members/{user_id}``,
  ~200 ms in production, and a bucket of 10 per 10 s per guild).
- Everyone gets the "are you sure?" step; no guard against double clicks or two
  crafters racing: check, fetch, write, with the write unconditional.
- Per-user maps (pending confirmations, action history) that nobody ever trims.
- Notices by DM, one DM channel lookup per notice.
- Confirmations deleted by fire-and-forget tasks (``asyncio.create_task`` whose result
  nobody keeps), one request per message.
- The answer comes after all of that (no deferral).
"""

from __future__ import annotations

import asyncio
from typing import Any

from examples.crafting.board import DENIED, CraftingSettings, profession_roles
from examples.crafting.cards import card, confirm_prompt, confirmation, notice, short
from examples.crafting.store import CraftRequest, RequestState, RequestStore
from steadybot import Bot, Interaction
from steadybot.models import Member

__all__ = ["NAIVE_FETCH_SECONDS", "NaiveBoard"]

NAIVE_FETCH_SECONDS = 0.2  # the production member fetch's round trip


class NaiveBoard:
    def __init__(self, bot: Bot, settings: CraftingSettings) -> None:
        self.bot = bot
        self.settings = settings
        self.store = RequestStore()
        self.role_ids: dict[str, str] = {}
        self.pending: dict[str, str] = {}  # user → request: never trimmed
        self.history: dict[str, list[str]] = {}  # user → every action: never trimmed
        self.cards: dict[str, Interaction] = {}  # request → interaction: never trimmed
        self.member_fetches = 0
        bot.on_start(self.preload_roles)
        answer: dict[str, Any] = {"defer": "never", "ephemeral": True}
        bot.command("profession join", **answer)(self.join)
        bot.command("craft request", defer="never")(self.request)
        bot.command("craft board", **answer)(self.listing)
        bot.component("craft:claim:{request_id}", **answer)(self.claim)
        bot.component("craft:confirm:{request_id}", **answer)(self.confirm)
        bot.component("craft:complete:{request_id}", **answer)(self.complete)
        bot.component("craft:release:{request_id}", **answer)(self.release)

    async def preload_roles(self) -> None:
        self.role_ids = await profession_roles(self.bot)  # the same start as the board's

    async def member(self, interaction: Interaction) -> Member:
        self.member_fetches += 1
        member = await self.bot.rest.get_member(
            interaction.guild_id or "", interaction.user_id or ""
        )
        await asyncio.sleep(NAIVE_FETCH_SECONDS)
        return member

    def _log(self, interaction: Interaction, what: str) -> None:
        self.history.setdefault(interaction.user_id or "", []).append(what)

    async def join(self, interaction: Interaction, profession: str) -> None:
        await self.bot.rest.add_member_role(
            interaction.guild_id or "", interaction.user_id or "", self.role_ids[profession]
        )
        await interaction.respond(f"You are a {profession} now.")

    async def request(self, interaction: Interaction, profession: str, item: str) -> None:
        member = await self.member(interaction)
        request = self.store.add(
            CraftRequest(
                id=interaction.id,
                guild_id=interaction.guild_id or "",
                channel_id=interaction.channel_id or "",
                requester_id=interaction.user_id or "",
                profession=profession,
                item=item,
            )
        )
        self.cards[request.id] = interaction
        self._log(interaction, "request")
        body = card(request, member.user.username if member.user else "someone")
        await interaction.respond(body["content"], components=body["components"])

    async def listing(self, interaction: Interaction, profession: str) -> None:
        await asyncio.sleep(0.05)  # the same query as the steadybot board, never cached
        requests = self.store.open_requests(profession)
        await interaction.respond("\n".join(f"{short(r)} {r.item}" for r in requests) or "none")

    async def claim(self, interaction: Interaction, request_id: str) -> None:
        request = self.store.get(request_id)
        if request is None or request.state is not RequestState.OPEN:
            await interaction.respond("Already taken.")
            return
        member = await self.member(interaction)
        if self.role_ids[request.profession] not in member.roles:
            await interaction.respond(DENIED.format(profession=request.profession))
            return
        self.pending[interaction.user_id or ""] = request_id
        self._log(interaction, "claim")
        await interaction.respond(f"Take {request.item}?", components=confirm_prompt(request_id))

    async def confirm(self, interaction: Interaction, request_id: str) -> None:
        request = self.store.get(request_id)
        if request is None or request.state is RequestState.COMPLETED:
            await interaction.respond("Too late.")
            return
        member = await self.member(interaction)  # checked again: roles may have changed
        if self.role_ids[request.profession] not in member.roles:
            await interaction.respond(DENIED.format(profession=request.profession))
            return
        user_id = interaction.user_id or ""
        changed = self.store.write(
            request_id, state=RequestState.CLAIMED, by=user_id, crafter_id=user_id
        )
        await self._tell(interaction, changed, "claimed")

    async def complete(self, interaction: Interaction, request_id: str) -> None:
        await self._finish(interaction, request_id, RequestState.COMPLETED, "completed")

    async def release(self, interaction: Interaction, request_id: str) -> None:
        await self._finish(interaction, request_id, RequestState.OPEN, "released")

    async def _finish(
        self, interaction: Interaction, request_id: str, state: RequestState, what: str
    ) -> None:
        request = self.store.get(request_id)
        if request is None or request.crafter_id != interaction.user_id:
            await interaction.respond("Not your claim.")
            return
        crafter = request.crafter_id if state is RequestState.COMPLETED else None
        changed = self.store.write(
            request_id, state=state, by=interaction.user_id or "", crafter_id=crafter
        )
        await self._tell(interaction, changed, what)

    async def _tell(self, interaction: Interaction, request: CraftRequest, what: str) -> None:
        rest = self.bot.rest
        origin = self.cards.get(request.id)
        if origin is not None:
            body = card(request, "the requester")
            await origin.edit_original(body["content"], components=body["components"])
        dm = await rest.create_dm(request.requester_id)
        await rest.create_message(dm.id, {"content": notice(request)})
        await interaction.respond(f"You {what} {request.item}.")
        posted = await interaction.followup(
            confirmation(request, interaction.user_id or "", what), ephemeral=False
        )
        if posted is not None:
            asyncio.create_task(self._delete_later(posted.channel_id, posted.id))  # noqa: RUF006

    async def _delete_later(self, channel_id: str, message_id: str) -> None:
        await asyncio.sleep(self.settings.confirmation_ttl)
        await self.bot.rest.delete_message(channel_id, message_id)
