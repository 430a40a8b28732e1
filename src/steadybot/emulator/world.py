"""The emulator's seeded world: application, guild, channels, roles, members, messages.

Everything is derived from one seed, so a run can be repeated exactly: ids, names, the
application's Ed25519 key pair and the bot token. Objects are kept as Discord-shaped
JSON dicts carrying every field Discord's OpenAPI description marks as required, because
that is what the REST routes return and what a strict client decodes
(``tests/integration/test_emulator_spec.py`` holds them to the spec).
"""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from nacl.signing import SigningKey

from steadybot.clock import Clock
from steadybot.snowflake import DISCORD_EPOCH_MS, snowflake_at, snowflake_time

__all__ = ["DISCORD_EPOCH_MS", "Snowflakes", "World", "WorldSettings", "snowflake_time"]

JSON = dict[str, Any]

CHANNEL_TEXT = 0
CHANNEL_DM = 1
CHANNEL_CATEGORY = 4
EVERYONE_PERMISSIONS = "1071698660929"
ADMINISTRATOR = "8"
NONCE_WINDOW = 300.0  # seconds: Discord checks an enforced nonce "in the past few minutes"
NONCE_MEMORY = 10_000  # remembered nonces before the expired ones are dropped


class Snowflakes:
    """Discord ids: milliseconds since the Discord epoch << 22, then a sequence."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._sequence = 0

    def next(self) -> str:
        return self.at(self._clock.time())

    def at(self, epoch_seconds: float) -> str:
        """An id made at ``epoch_seconds`` (scenario setup: a message from days ago)."""
        self._sequence = (self._sequence + 1) & 0x3FFFFF
        return str(snowflake_at(epoch_seconds, self._sequence))


def _user(user_id: str, username: str, *, bot: bool = False) -> JSON:
    user: JSON = {
        "id": user_id,
        "username": username,
        "global_name": None,
        "avatar": None,
        "discriminator": "0",
        "public_flags": 0,
        "flags": 0,
        "banner": None,
        "accent_color": None,
        "avatar_decoration_data": None,
        "collectibles": None,
        "primary_guild": None,
    }
    if bot:
        user["bot"] = True
    return user


def _role(role_id: str, name: str, permissions: str, position: int, *, hoist: bool) -> JSON:
    return {
        "id": role_id,
        "name": name,
        "permissions": permissions,
        "position": position,
        "color": 0,
        "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
        "hoist": hoist,
        "managed": False,
        "mentionable": False,
        "icon": None,
        "unicode_emoji": None,
        "flags": 0,
    }


def _guild(guild_id: str) -> JSON:
    # Every field Discord's guild object requires, at the values of a plain new server.
    nulls = (
        "icon description home_header splash discovery_splash banner application_id"
        " afk_channel_id system_channel_id widget_channel_id max_presences vanity_url_code"
        " rules_channel_id safety_alerts_channel_id public_updates_channel_id incidents_data"
    )
    guild: JSON = dict.fromkeys(nulls.split())
    guild.update(
        id=guild_id,
        name="Emulated Guild",
        owner_id="",
        features=[],
        region="deprecated",
        afk_timeout=300,
        system_channel_flags=0,
        widget_enabled=False,
        verification_level=0,
        default_message_notifications=0,
        mfa_level=0,
        explicit_content_filter=0,
        max_members=500_000,
        max_stage_video_channel_users=50,
        max_video_channel_users=25,
        premium_tier=0,
        premium_subscription_count=0,
        preferred_locale="en-US",
        premium_progress_bar_enabled=False,
        nsfw=False,
        nsfw_level=0,
    )
    return guild


def _numbered(components: list[Any]) -> list[Any]:
    """Components with Discord's ``id``: kept where the app gave one, else numbered in order."""
    taken: set[int] = set()
    nodes: list[JSON] = []

    def walk(items: list[Any]) -> None:
        for item in items:
            if isinstance(item, dict):
                nodes.append(item)
                if isinstance(item.get("id"), int):
                    taken.add(item["id"])
                walk(item.get("components") or [])
                if isinstance(item.get("accessory"), dict):
                    walk([item["accessory"]])

    copied: list[Any] = copy.deepcopy(components)
    walk(copied)
    next_id = 1
    for node in nodes:
        if not isinstance(node.get("id"), int):
            while next_id in taken:
                next_id += 1
            node["id"] = next_id
            taken.add(next_id)
    return copied


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
    guild: JSON  # without roles, emojis and stickers: see guild_json()
    roles: dict[str, JSON] = field(default_factory=dict)
    channels: dict[str, JSON] = field(default_factory=dict)
    members: dict[str, JSON] = field(default_factory=dict)
    messages: dict[str, dict[str, JSON]] = field(default_factory=dict)  # channel → id → msg
    dm_channels: dict[str, str] = field(default_factory=dict)  # user id → channel id
    ephemeral: dict[str, list[JSON]] = field(default_factory=dict)  # user id → messages
    # A select keeps showing a user's pick in their client until the message is edited
    # (or deleted): message id → users whose pick still shows.
    selections: dict[str, set[str]] = field(default_factory=dict)
    edits: dict[str, int] = field(default_factory=dict)  # message id → times edited
    picks_while_showing: dict[str, int] = field(default_factory=dict)  # message id → picks
    commands: dict[str, JSON] = field(default_factory=dict)  # id → command; guild_id or None
    interactions_endpoint_url: str = ""
    # (channel id, author id, nonce) → (message id, made at): enforce_nonce's memory.
    nonces: dict[tuple[str, str, str], tuple[str, float]] = field(default_factory=dict)

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
        bot_user = _user(application_id, "steadybot-emulated", bot=True)
        world = cls(
            settings=settings,
            clock=clock,
            ids=ids,
            signing_key=signing_key,
            application_id=application_id,
            bot_token=bot_token,
            bot_user=bot_user,
            guild=_guild(ids.next()),
        )
        world._seed_guild()
        return world

    def _seed_guild(self) -> None:
        guild_id = self.guild["id"]
        everyone = _role(guild_id, "@everyone", EVERYONE_PERMISSIONS, 0, hoist=False)
        staff = _role(self.ids.next(), "staff", ADMINISTRATOR, 1, hoist=True)
        for role in (everyone, staff):
            self.roles[role["id"]] = role
        category = self.add_channel("Text Channels", CHANNEL_CATEGORY, parent_id=None)
        for index in range(self.settings.text_channels):
            name = ("general", "support", "trading")[index] if index < 3 else f"room-{index}"
            self.add_channel(name, CHANNEL_TEXT, parent_id=category["id"])
        for index in range(self.settings.members):
            user_id = self.ids.next()
            roles = [staff["id"]] if index < max(1, self.settings.members // 50) else []
            self.members[user_id] = {
                "user": _user(user_id, f"member{index:04d}"),
                "roles": roles,
                "nick": None,
                "avatar": None,
                "banner": None,
                "joined_at": self.timestamp(),
                "premium_since": None,
                "communication_disabled_until": None,
                "flags": 0,
                "pending": False,
                "mute": False,
                "deaf": False,
                # Only in interaction payloads; the REST member object leaves it out.
                "permissions": ADMINISTRATOR if roles else EVERYONE_PERMISSIONS,
            }
        self.guild["owner_id"] = next(iter(self.members), "")

    def add_role(
        self,
        name: str,
        *,
        permissions: str = "0",
        color: int = 0,
        hoist: bool = False,
        mentionable: bool = False,
    ) -> JSON:
        """Create a role as Discord does: at position 1, just above @everyone (the
        roles at 1 and up move one up)."""
        for role in self.roles.values():
            if role["position"] >= 1:
                role["position"] += 1
        role = _role(self.ids.next(), name, permissions, 1, hoist=hoist)
        role.update(color=color, mentionable=mentionable)
        role["colors"]["primary_color"] = color
        self.roles[role["id"]] = role
        return role

    def add_channel(
        self,
        name: str,
        kind: int,
        *,
        parent_id: str | None,
        position: int | None = None,
        permission_overwrites: list[JSON] | None = None,
        topic: str | None = None,
        nsfw: bool = False,
    ) -> JSON:
        """Create a guild channel (text or category); text channels get a message store."""
        channel: JSON = {
            "id": self.ids.next(),
            "type": kind,
            "flags": 0,
            "name": name,
            "guild_id": self.guild["id"],
            "parent_id": parent_id,
            "position": len(self.guild_channels()) if position is None else position,
            "permission_overwrites": permission_overwrites or [],
        }
        if kind != CHANNEL_CATEGORY:
            channel.update(topic=topic, nsfw=nsfw, last_message_id=None, rate_limit_per_user=0)
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

    def guild_json(self, *, with_counts: bool = False) -> JSON:
        """The guild object ``GET /guilds/{id}`` returns, roles included."""
        guild: JSON = {**self.guild, "roles": self.role_list(), "emojis": [], "stickers": []}
        if with_counts:
            guild["approximate_member_count"] = len(self.members)
            guild["approximate_presence_count"] = 0
        return guild

    def role_list(self) -> list[JSON]:
        return sorted(self.roles.values(), key=lambda role: (role["position"], int(role["id"])))

    def guild_channels(self) -> list[JSON]:
        return [c for c in self.channels.values() if c.get("guild_id") == self.guild["id"]]

    def member_json(self, user_id: str) -> JSON:
        """A member as the REST API shows it (no ``permissions``: that is per channel)."""
        return {k: v for k, v in self.members[user_id].items() if k != "permissions"}

    def timestamp(self, at: float | None = None) -> str:
        return datetime.fromtimestamp(self.clock.time() if at is None else at, UTC).isoformat()

    def dm_channel(self, user_id: str) -> JSON:
        channel_id = self.dm_channels.get(user_id)
        if channel_id is None:
            channel_id = self.ids.next()
            self.dm_channels[user_id] = channel_id
            self.channels[channel_id] = {
                "id": channel_id,
                "type": CHANNEL_DM,
                "flags": 0,
                "last_message_id": None,
                "recipients": [self.user(user_id)],
            }
            self.messages[channel_id] = {}
        return self.channels[channel_id]

    def find_message(self, message_id: str) -> JSON | None:
        """A message by id: in any channel, or among the users' ephemeral messages."""
        for messages in self.messages.values():
            if message_id in messages:
                return messages[message_id]
        for ephemeral in self.ephemeral.values():
            for message in ephemeral:
                if message["id"] == message_id:
                    return message
        return None

    def message_by_nonce(self, channel_id: str, author_id: str, nonce: object) -> JSON | None:
        """The message this author sent with ``nonce`` within :data:`NONCE_WINDOW`."""
        key = (channel_id, author_id, str(nonce))
        seen = self.nonces.get(key)
        if seen is None:
            return None
        message_id, made = seen
        if self.clock.time() - made > NONCE_WINDOW:
            del self.nonces[key]
            return None
        return self.messages.get(channel_id, {}).get(message_id)

    def remember_nonce(
        self, channel_id: str, author_id: str, nonce: object, message_id: str
    ) -> None:
        now = self.clock.time()
        if len(self.nonces) > NONCE_MEMORY:  # forget the expired ones now and then
            self.nonces = {k: v for k, v in self.nonces.items() if now - v[1] <= NONCE_WINDOW}
        self.nonces[(channel_id, author_id, str(nonce))] = (message_id, now)

    def remove_message(self, message: JSON) -> None:
        """Delete ``message`` from its channel or from its user's ephemeral messages."""
        self.messages.get(message["channel_id"], {}).pop(message["id"], None)
        self.selections.pop(message["id"], None)
        for ephemeral in self.ephemeral.values():
            if message in ephemeral:
                ephemeral.remove(message)

    def pick(self, message_id: str, user_id: str) -> None:
        """A user picked in a select on ``message_id``: their client shows the pick.

        A pick while their earlier pick still shows is counted: in Discord the same
        option cannot be picked twice in a row then, which is what users report as
        "the menu stopped working".
        """
        picked = self.selections.setdefault(message_id, set())
        if user_id in picked:
            self.picks_while_showing[message_id] = self.picks_while_showing.get(message_id, 0) + 1
        picked.add(user_id)

    # --- writes -------------------------------------------------------------------

    def create_message(
        self,
        channel_id: str,
        body: JSON,
        *,
        author: JSON,
        extra: JSON | None = None,
        at: float | None = None,
    ) -> JSON:
        """Store a message made from a validated create body and return it.

        ``at`` (epoch seconds) backdates it: its id and timestamp say that time.
        """
        made = self.clock.time() if at is None else at
        message: JSON = {
            "id": self.ids.at(made),
            "channel_id": channel_id,
            "type": 0,
            "content": body.get("content") or "",
            "embeds": body.get("embeds") or [],
            "components": _numbered(body.get("components") or []),
            "attachments": [],
            "mentions": [],
            "mention_roles": [],
            "mention_everyone": False,
            "pinned": False,
            "tts": False,
            "flags": int(body.get("flags") or 0),
            "author": author,
            "timestamp": self.timestamp(made),
            "edited_timestamp": None,
        }
        if extra:
            message.update(extra)
        if channel_id in self.messages:
            self.messages[channel_id][message["id"]] = message
        return message

    def edit_message(self, message: JSON, body: JSON) -> JSON:
        """Apply an edit body in place; only the fields present change.

        Any edit re-renders the message, so every user's select shows no pick again.
        """
        self.selections.pop(message["id"], None)
        self.edits[message["id"]] = self.edits.get(message["id"], 0) + 1
        for key in ("content", "embeds", "components"):
            if key in body:
                message[key] = (
                    body[key] if body[key] is not None else ("" if key == "content" else [])
                )
        message["components"] = _numbered(message["components"])
        if "flags" in body and body["flags"] is not None:
            # Only SUPPRESS_EMBEDS may change on edit; keep EPHEMERAL as it was.
            message["flags"] = (message["flags"] & 64) | (int(body["flags"]) & 4)
        message["flags"] &= ~128  # an edit ends the "thinking…" (LOADING) state
        message["edited_timestamp"] = self.timestamp()
        return message
