"""The emulator's seeded world: application, guild, channels, roles, members, messages.

Everything is derived from one seed, so a run can be repeated exactly: ids, names, the
application's Ed25519 key pair and the bot token. Messages are kept as Discord-shaped
JSON dicts, because that is what the REST routes return.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from nacl.signing import SigningKey

from steadybot.clock import Clock

__all__ = ["DISCORD_EPOCH_MS", "Snowflakes", "World", "WorldSettings"]

DISCORD_EPOCH_MS = 1_420_070_400_000
JSON = dict[str, Any]

CHANNEL_TEXT = 0
CHANNEL_DM = 1
CHANNEL_CATEGORY = 4


class Snowflakes:
    """Discord ids: milliseconds since the Discord epoch << 22, then a sequence."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._sequence = 0

    def next(self) -> str:
        self._sequence = (self._sequence + 1) & 0x3FFFFF
        millis = int(self._clock.time() * 1000) - DISCORD_EPOCH_MS
        return str((millis << 22) | self._sequence)


@dataclass(frozen=True)
class WorldSettings:
    """How big the seeded world is."""

    members: int = 300
    text_channels: int = 3
    seed: int = 0


@dataclass
class World:
    """The state the emulator's REST routes read and write."""

    settings: WorldSettings
    clock: Clock
    ids: Snowflakes
    signing_key: SigningKey
    application_id: str
    bot_token: str
    bot_user: JSON
    guild: JSON
    roles: dict[str, JSON] = field(default_factory=dict)
    channels: dict[str, JSON] = field(default_factory=dict)
    members: dict[str, JSON] = field(default_factory=dict)
    messages: dict[str, dict[str, JSON]] = field(default_factory=dict)  # channel → id → msg
    dm_channels: dict[str, str] = field(default_factory=dict)  # user id → channel id
    ephemeral: dict[str, list[JSON]] = field(default_factory=dict)  # user id → messages
    interactions_endpoint_url: str = ""

    @classmethod
    def seeded(cls, settings: WorldSettings, clock: Clock) -> World:
        rng = random.Random(settings.seed)
        ids = Snowflakes(clock)
        application_id = ids.next()
        signing_key = SigningKey(rng.randbytes(32))
        secret = "".join(
            rng.choices("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", k=38)
        )
        bot_token = f"emulator.{application_id}.{secret}"
        bot_user = {"id": application_id, "username": "steadybot-emulated", "bot": True}
        guild_id = ids.next()
        guild: JSON = {"id": guild_id, "name": "Emulated Guild", "owner_id": ""}
        world = cls(
            settings=settings,
            clock=clock,
            ids=ids,
            signing_key=signing_key,
            application_id=application_id,
            bot_token=bot_token,
            bot_user=bot_user,
            guild=guild,
        )
        world._seed_guild()
        return world

    def _seed_guild(self) -> None:
        guild_id = self.guild["id"]
        everyone = {"id": guild_id, "name": "@everyone", "permissions": "1071698660929"}
        staff = {"id": self.ids.next(), "name": "staff", "permissions": "8"}
        for role in (everyone, staff):
            self.roles[role["id"]] = {**role, "position": len(self.roles)}
        category = self._add_channel("Text Channels", CHANNEL_CATEGORY, parent_id=None)
        for index in range(self.settings.text_channels):
            name = ("general", "support", "trading")[index] if index < 3 else f"room-{index}"
            self._add_channel(name, CHANNEL_TEXT, parent_id=category["id"])
        for index in range(self.settings.members):
            user_id = self.ids.next()
            roles = [staff["id"]] if index < max(1, self.settings.members // 50) else []
            self.members[user_id] = {
                "user": {"id": user_id, "username": f"member{index:04d}", "global_name": None},
                "roles": roles,
                "nick": None,
                "joined_at": self.timestamp(),
                "permissions": "8" if roles else everyone["permissions"],
            }
        self.guild["owner_id"] = next(iter(self.members), "")

    def _add_channel(self, name: str, kind: int, *, parent_id: str | None) -> JSON:
        channel: JSON = {
            "id": self.ids.next(),
            "type": kind,
            "name": name,
            "guild_id": self.guild["id"],
            "parent_id": parent_id,
            "position": len(self.channels),
            "permission_overwrites": [],
        }
        self.channels[channel["id"]] = channel
        if kind != CHANNEL_CATEGORY:
            self.messages[channel["id"]] = {}
        return channel

    # --- look-ups -----------------------------------------------------------------

    @property
    def public_key_hex(self) -> str:
        return bytes(self.signing_key.verify_key).hex()

    @property
    def text_channel_ids(self) -> list[str]:
        return [cid for cid, c in self.channels.items() if c["type"] == CHANNEL_TEXT]

    @property
    def staff_role_id(self) -> str:
        return next(rid for rid, role in self.roles.items() if role["name"] == "staff")

    def user(self, user_id: str) -> JSON:
        return dict(self.members[user_id]["user"])

    def timestamp(self) -> str:
        return datetime.fromtimestamp(self.clock.time(), UTC).isoformat()

    def dm_channel(self, user_id: str) -> JSON:
        channel_id = self.dm_channels.get(user_id)
        if channel_id is None:
            channel_id = self.ids.next()
            self.dm_channels[user_id] = channel_id
            self.channels[channel_id] = {
                "id": channel_id,
                "type": CHANNEL_DM,
                "recipients": [self.user(user_id)],
            }
            self.messages[channel_id] = {}
        return self.channels[channel_id]

    def find_message(self, message_id: str) -> JSON | None:
        for messages in self.messages.values():
            if message_id in messages:
                return messages[message_id]
        return None

    # --- writes -------------------------------------------------------------------

    def create_message(
        self, channel_id: str, body: JSON, *, author: JSON, extra: JSON | None = None
    ) -> JSON:
        """Store a message made from a validated create body and return it."""
        message: JSON = {
            "id": self.ids.next(),
            "channel_id": channel_id,
            "type": 0,
            "content": body.get("content") or "",
            "embeds": body.get("embeds") or [],
            "components": body.get("components") or [],
            "attachments": [],
            "mentions": [],
            "pinned": False,
            "tts": False,
            "flags": int(body.get("flags") or 0),
            "author": author,
            "timestamp": self.timestamp(),
            "edited_timestamp": None,
        }
        if extra:
            message.update(extra)
        if channel_id in self.messages:
            self.messages[channel_id][message["id"]] = message
        return message

    def edit_message(self, message: JSON, body: JSON) -> JSON:
        """Apply an edit body in place; only the fields present change."""
        for key in ("content", "embeds", "components"):
            if key in body:
                message[key] = (
                    body[key] if body[key] is not None else ("" if key == "content" else [])
                )
        if "flags" in body and body["flags"] is not None:
            # Only SUPPRESS_EMBEDS may change on edit; keep EPHEMERAL as it was.
            message["flags"] = (message["flags"] & 64) | (int(body["flags"]) & 4)
        message["flags"] &= ~128  # an edit ends the "thinking…" (LOADING) state
        message["edited_timestamp"] = self.timestamp()
        return message
