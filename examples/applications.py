"""The applications story: an "Apply" button that opens a private channel per applicant.

Serve it with ``steadybot serve examples.applications:bot``; ``steadybot demo`` runs it
against the emulator with a crowd (the :data:`scenario` below) and, with
``--baseline``, next to :data:`naive_bot`: the same work written the way it usually is
(answer only after the work, no guard against double clicks).

What one click does, in 2-4 s of real work through Discord's API:

1. find or create the applicant's private channel under the "applications" category,
   visible to the applicant and the staff role only;
2. post a welcome message there;
3. store the application;
4. answer the applicant ephemerally with a link to the channel,

reporting progress on the way. A second click while the first is still working gets
"⏳ already processing" instead of a second channel (``exclusive="user"``; with
``STEADYBOT_REDIS_URL`` set, also when the two clicks reach two processes); follow-ups
go through steadybot's retries when Discord (or the emulator's ``flaky`` profile)
fails; if the interaction token has died, the runtime still confirms by a message
through the bot token.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass

from steadybot import Bot, Interaction
from steadybot.config import Settings
from steadybot.crowd import Check, CrowdTarget, CrowdUser
from steadybot.emulator import Snapshot
from steadybot.models import User

VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
READ_HISTORY = 1 << 16
MEMBER_ACCESS = str(VIEW_CHANNEL | SEND_MESSAGES | READ_HISTORY)
CATEGORY_NAME = "applications"
STAFF_ROLE = "staff"
STORE_SECONDS = (2.0, 3.5)  # stands for writing the application to a database
CONFIRMATION = "✅ Application received"
BUSY = "⏳ Your application is already being processed."

bot = Bot()
# The usual first version also calls the API without retries.
naive_bot = Bot(Settings(rest_max_attempts=1))


@dataclass(frozen=True)
class Application:
    user_id: str
    channel_id: str


class ApplicationDesk:
    """The bot's state: stored applications, applicant channels, the category."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot
        self.applications: dict[str, Application] = {}
        self.channels: dict[str, str] = {}  # applicant id → channel id
        self._category_id: str | None = None
        self._staff_role_id: str | None = None
        self._category_lock = asyncio.Lock()
        self._rng = random.Random(7)

    async def category(self, guild_id: str) -> str:
        async with self._category_lock:
            if self._category_id is None:
                existing = await self.bot.rest.list_guild_channels(guild_id)
                found = next((c for c in existing if c.name == CATEGORY_NAME and c.type == 4), None)
                if found is None:
                    found = await self.bot.rest.create_guild_channel(
                        guild_id, {"name": CATEGORY_NAME, "type": 4}
                    )
                self._category_id = found.id
            return self._category_id

    async def staff_role(self, guild_id: str) -> str:
        """The id of the guild's "staff" role ("" when there is none), looked up once."""
        if self._staff_role_id is None:
            roles = await self.bot.rest.list_guild_roles(guild_id)
            self._staff_role_id = next((r.id for r in roles if r.name == STAFF_ROLE), "")
        return self._staff_role_id

    async def channel_for(self, guild_id: str, applicant: User) -> str:
        """The applicant's private channel, created on the first application only."""
        known = self.channels.get(applicant.id)
        if known is not None:
            return known
        staff_role_id = await self.staff_role(guild_id)
        overwrites = [
            {"id": guild_id, "type": 0, "allow": "0", "deny": str(VIEW_CHANNEL)},
            {"id": applicant.id, "type": 1, "allow": MEMBER_ACCESS, "deny": "0"},
        ]
        if staff_role_id:
            overwrites.append({"id": staff_role_id, "type": 0, "allow": MEMBER_ACCESS, "deny": "0"})
        channel = await self.bot.rest.create_guild_channel(
            guild_id,
            {
                "name": f"application-{applicant.id}",
                "type": 0,
                "parent_id": await self.category(guild_id),
                "permission_overwrites": overwrites,
            },
            reason=f"application by {applicant.id}",
        )
        self.channels[applicant.id] = channel.id
        return channel.id

    async def store(self, application: Application) -> None:
        await self.bot.clock.sleep(self._rng.uniform(*STORE_SECONDS))
        self.applications[application.user_id] = application


desk = ApplicationDesk(bot)
naive_desk = ApplicationDesk(naive_bot)


# A double click while this runs for the same user is answered BUSY: never a second channel.
@bot.component("apply", ephemeral=True, exclusive="user", busy=BUSY)
async def apply(interaction: Interaction) -> None:
    applicant, guild_id = interaction.user, interaction.guild_id
    if applicant is None or guild_id is None:
        await interaction.respond("Applications are taken in the server only.", ephemeral=True)
        return
    progress = interaction.progress()
    await progress.update("⏳ Preparing your private channel…")
    channel_id = await desk.channel_for(guild_id, applicant)
    await progress.update("⏳ Posting your welcome message…")
    await bot.rest.create_message(
        channel_id, {"content": f"Welcome <@{applicant.id}>! Staff will be with you shortly."}
    )
    await progress.update("⏳ Saving your application…")
    await desk.store(Application(applicant.id, channel_id))
    await interaction.respond(f"{CONFIRMATION}: <#{channel_id}>", ephemeral=True)


@naive_bot.component("apply", defer="never")
async def naive_apply(interaction: Interaction) -> None:
    """The usual first version: do everything, then answer; no double-click guard."""
    applicant, guild_id = interaction.user, interaction.guild_id
    if applicant is None or guild_id is None:
        return
    naive_desk.channels.pop(applicant.id, None)  # looks the channel up by nothing: creates
    channel_id = await naive_desk.channel_for(guild_id, applicant)
    await naive_bot.rest.create_message(channel_id, {"content": f"Welcome <@{applicant.id}>!"})
    await naive_desk.store(Application(applicant.id, channel_id))
    await interaction.respond(f"{CONFIRMATION}: <#{channel_id}>", ephemeral=True)


class ApplicationsScenario:
    """Members click "Apply" once or twice; checks: one channel each, all confirmed."""

    name = "applications"
    double_click_share = 0.25

    def __init__(self) -> None:
        self.message_id = ""

    async def setup(self, target: CrowdTarget) -> None:
        button = {"type": 2, "style": 1, "label": "Apply", "custom_id": "apply"}
        message = await target.post_message(
            target.channel_ids[0],
            {
                "content": "Want to join the team?",
                "components": [{"type": 1, "components": [button]}],
            },
        )
        self.message_id = str(message["id"])

    async def user(self, user: CrowdUser) -> None:
        await user.think(0.1, 1.0)
        if user.rng.random() < self.double_click_share:
            await user.double_click("apply", self.message_id, gap=user.rng.uniform(0.05, 0.6))
        else:
            await user.click("apply", self.message_id)

    def checks(self, snapshot: Snapshot, users: Sequence[CrowdUser]) -> dict[str, Check]:
        applicants = {u.id for u in users if u.interactions}
        names = [c.get("name") for c in snapshot.channels]
        counts = {a: names.count(f"application-{a}") for a in applicants}
        duplicated = sorted(a for a, n in counts.items() if n > 1)
        missing = sorted(a for a, n in counts.items() if n == 0)
        unconfirmed = sorted(a for a in applicants if not _confirmed(snapshot, a))
        return {
            "one channel per applicant": Check(
                not duplicated and not missing,
                f"{len(applicants)} applicants, {len(duplicated)} with duplicate channels, "
                f"{len(missing)} without a channel",
            ),
            "every applicant confirmed": Check(
                not unconfirmed, f"{len(applicants) - len(unconfirmed)}/{len(applicants)} confirmed"
            ),
        }


def _confirmed(snapshot: Snapshot, user_id: str) -> bool:
    """An ephemeral confirmation, or the runtime's fallback in a DM or the channel."""
    if any(CONFIRMATION in m.get("content", "") for m in snapshot.ephemeral_messages(user_id)):
        return True
    dm = snapshot.dm_channels.get(user_id)
    if dm is not None and any(CONFIRMATION in m["content"] for m in snapshot.channel_messages(dm)):
        return True
    return any(
        CONFIRMATION in m["content"] and f"<@{user_id}>" in m["content"]
        for channel_id, messages in snapshot.messages.items()
        if channel_id not in snapshot.dm_channels.values()
        for m in messages
    )


scenario = ApplicationsScenario()
