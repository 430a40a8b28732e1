"""Guild routes of the emulated REST API: the guild, its roles, channels and members.

There is one guild, the seeded one; any other id gets 404 / 10004, as a guild the bot is
not in does. Channels are created as Discord does it: 201 with the new channel, a
``parent_id`` that must name a category of the guild, and permission overwrites whose ids
must name a role (type 0) or a member (type 1). Members are paged the way Discord pages
them: ascending by user id, after the user id ``after``, ``limit`` 1-1000 and **1 by
default**, so a client that forgets to page sees one member, not a silent truncation at
some larger number.

Roles are created at position 1 (200 with the role); a member's roles are granted and
taken with ``PUT``/``DELETE .../members/{user_id}/roles/{role_id}`` (204, idempotent:
granting a role the member has, or taking one they lack, changes nothing), 404 / 10007
for an unknown member and 404 / 10011 for an unknown role.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from steadybot.constants import ErrorCode
from steadybot.emulator._http import (
    Route,
    json_response,
    no_content,
    query_int,
    query_snowflake,
    read_json,
)
from steadybot.emulator.errors import invalid_form, unknown
from steadybot.emulator.validation import check_channel_create
from steadybot.emulator.world import CHANNEL_CATEGORY, World

__all__ = ["MEMBER_LIST_DEFAULT", "MEMBER_LIST_MAX", "GuildRoutes"]

JSON = dict[str, Any]
MEMBER_LIST_DEFAULT = 1
MEMBER_LIST_MAX = 1000
ROLE_NAME_MAX = 100
COLOR_MAX = 0xFFFFFF
NEW_ROLE_NAME = "new role"  # Discord's name for a role created without one


class GuildRoutes:
    """``/guilds/{guild_id}``: the guild, roles, channels (list, create) and members."""

    def __init__(self, world: World) -> None:
        self._world = world

    def routes(self) -> list[Route]:
        guild = "/guilds/{guild_id}"
        return [
            ("GET", guild, self._get_guild),
            ("GET", guild + "/roles", self._list_roles),
            ("POST", guild + "/roles", self._create_role),
            ("GET", guild + "/channels", self._list_channels),
            ("POST", guild + "/channels", self._create_channel),
            ("GET", guild + "/members", self._list_members),
            ("GET", guild + "/members/{user_id}", self._get_member),
            ("PUT", guild + "/members/{user_id}/roles/{role_id}", self._add_member_role),
            ("DELETE", guild + "/members/{user_id}/roles/{role_id}", self._remove_member_role),
        ]

    def _guild(self, request: web.Request) -> None:
        if request.match_info["guild_id"] != self._world.guild["id"]:
            raise unknown(ErrorCode.UNKNOWN_GUILD)

    async def _get_guild(self, request: web.Request) -> web.Response:
        self._guild(request)
        with_counts = request.query.get("with_counts", "").lower() == "true"
        return json_response(self._world.guild_json(with_counts=with_counts))

    async def _list_roles(self, request: web.Request) -> web.Response:
        self._guild(request)
        return json_response(self._world.role_list())

    async def _list_channels(self, request: web.Request) -> web.Response:
        self._guild(request)
        return json_response(self._world.guild_channels())

    async def _create_channel(self, request: web.Request) -> web.Response:
        self._guild(request)
        world = self._world
        new = check_channel_create(
            await read_json(request),
            categories={c["id"] for c in world.guild_channels() if c["type"] == CHANNEL_CATEGORY},
            roles=world.roles.keys(),
            members=world.members.keys(),
        )
        channel = world.add_channel(
            new.name,
            new.kind,
            parent_id=new.parent_id,
            position=new.position,
            permission_overwrites=new.permission_overwrites,
            topic=new.topic,
            nsfw=new.nsfw,
        )
        return json_response(channel, status=201)

    async def _get_member(self, request: web.Request) -> web.Response:
        self._guild(request)
        user_id = request.match_info["user_id"]
        if user_id not in self._world.members:
            raise unknown(ErrorCode.UNKNOWN_MEMBER)
        return json_response(self._world.member_json(user_id))

    async def _list_members(self, request: web.Request) -> web.Response:
        self._guild(request)
        limit = query_int(
            request, "limit", default=MEMBER_LIST_DEFAULT, low=1, high=MEMBER_LIST_MAX
        )
        after = query_snowflake(request, "after") or 0
        ascending = sorted(int(user_id) for user_id in self._world.members if int(user_id) > after)
        page = [self._world.member_json(str(user_id)) for user_id in ascending[:limit]]
        return json_response(page)

    async def _create_role(self, request: web.Request) -> web.Response:
        self._guild(request)
        body = await read_json(request)
        if not isinstance(body, dict):
            raise invalid_form({"": ("DICT_TYPE_CONVERT", "Only dictionaries may be used.")})
        role = self._world.add_role(**_role_fields(body))
        return json_response(role)

    def _member_and_role(self, request: web.Request) -> tuple[list[str], str]:
        self._guild(request)
        member = self._world.members.get(request.match_info["user_id"])
        if member is None:
            raise unknown(ErrorCode.UNKNOWN_MEMBER)
        role_id = request.match_info["role_id"]
        if role_id not in self._world.roles:
            raise unknown(ErrorCode.UNKNOWN_ROLE)
        roles: list[str] = member["roles"]
        return roles, role_id

    async def _add_member_role(self, request: web.Request) -> web.Response:
        roles, role_id = self._member_and_role(request)
        # @everyone is every member's implicitly; it is never listed.
        if role_id not in roles and role_id != self._world.guild["id"]:
            roles.append(role_id)
        return no_content()

    async def _remove_member_role(self, request: web.Request) -> web.Response:
        roles, role_id = self._member_and_role(request)
        if role_id in roles:
            roles.remove(role_id)
        return no_content()


def _role_fields(body: JSON) -> dict[str, Any]:
    """The create-role body, checked field by field as Discord does (50035 at the field)."""
    name = body.get("name")
    if name is None:
        name = NEW_ROLE_NAME
    elif not isinstance(name, str) or not 1 <= len(name) <= ROLE_NAME_MAX:
        raise invalid_form(
            {"name": ("BASE_TYPE_BAD_LENGTH", f"Must be between 1 and {ROLE_NAME_MAX} in length.")}
        )
    permissions = body.get("permissions")
    if permissions is None:
        permissions = "0"
    elif isinstance(permissions, bool) or not (
        isinstance(permissions, int) or (isinstance(permissions, str) and permissions.isdigit())
    ):
        raise invalid_form({"permissions": ("NUMBER_TYPE_COERCE", "Value is not int.")})
    color = body.get("color")
    if color is None:
        color = 0
    elif isinstance(color, bool) or not isinstance(color, int) or not 0 <= color <= COLOR_MAX:
        raise invalid_form(
            {"color": ("NUMBER_TYPE_MAX", f"int value should be between 0 and {COLOR_MAX}.")}
        )
    flags = {}
    for key in ("hoist", "mentionable"):
        value = body.get(key)
        if value is not None and not isinstance(value, bool):
            raise invalid_form({key: ("BASE_TYPE_BOOLEAN", "Must be either true or false.")})
        flags[key] = bool(value)
    return {"name": name, "permissions": str(permissions), "color": color, **flags}
