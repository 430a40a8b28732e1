"""Discord resources shared by the REST client and interaction payloads.

msgspec structs: decoding is fast and typed, unknown fields are ignored (Discord adds
fields all the time), and a field of the wrong type is a :class:`msgspec.ValidationError`
the caller turns into a clear error. Snowflake ids stay strings, as Discord sends them.
"""

from __future__ import annotations

import msgspec

__all__ = [
    "Attachment",
    "Channel",
    "Guild",
    "Member",
    "Message",
    "Role",
    "User",
]


class User(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A Discord user."""

    id: str
    username: str = ""
    global_name: str | None = None
    discriminator: str = "0"
    avatar: str | None = None
    bot: bool = False


class Member(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A guild member; ``user`` is present in interactions and member lists."""

    user: User | None = None
    nick: str | None = None
    roles: list[str] = msgspec.field(default_factory=list)
    joined_at: str | None = None
    permissions: str | None = None


class Role(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A guild role."""

    id: str
    name: str = ""
    permissions: str = "0"
    position: int = 0


class Guild(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A guild, partial: as ``GET /users/@me/guilds`` lists the bot's guilds."""

    id: str
    name: str = ""
    permissions: str | None = None


class Channel(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A channel (partial in interaction payloads)."""

    id: str
    type: int = 0
    name: str | None = None
    guild_id: str | None = None
    parent_id: str | None = None
    permissions: str | None = None
    permission_overwrites: list[dict[str, object]] = msgspec.field(default_factory=list)


class Attachment(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A file attached to a message or passed as a command option."""

    id: str
    filename: str = ""
    size: int = 0
    url: str = ""
    content_type: str | None = None


class Message(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A message, as returned by the REST API or carried by a component interaction."""

    id: str
    channel_id: str = ""
    content: str = ""
    author: User | None = None
    timestamp: str | None = None
    edited_timestamp: str | None = None
    flags: int = 0
    embeds: list[dict[str, object]] = msgspec.field(default_factory=list)
    components: list[dict[str, object]] = msgspec.field(default_factory=list)
    webhook_id: str | None = None
    # --- outbox: which interaction made the message, and a create's nonce -------------
    interaction_metadata: dict[str, object] | None = None
    nonce: str | int | None = None
