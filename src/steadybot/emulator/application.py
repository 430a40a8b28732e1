"""Who the bot is and where to connect: current user, DMs, the application, the gateway.

The routes discord.py and hikari call at login (``GET /users/@me``,
``GET /oauth2/applications/@me``, ``GET /gateway/bot``), the DM channel the runtime
opens to reach a user privately, and ``PATCH /applications/@me``, which checks a new
interactions endpoint URL the way Discord does (a PING must get PONG, a badly signed
request must get 401) before accepting it. ``GET /gateway`` needs no token, as on Discord;
the URL it returns points at this emulator.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from steadybot.constants import ErrorCode
from steadybot.emulator._http import Route, json_response, query_int, query_snowflake, read_json
from steadybot.emulator.errors import invalid_form, unknown
from steadybot.emulator.world import World

__all__ = ["ApplicationRoutes"]

JSON = dict[str, Any]
MY_GUILDS_MAX = 200  # also the default page size of GET /users/@me/guilds
BOT_GUILD_PERMISSIONS = "8"  # the emulated bot is invited as an administrator


class ApplicationRoutes:
    """``users/@me``, ``applications/@me``, ``oauth2/applications/@me`` and the gateway."""

    def __init__(
        self, world: World, *, validate_endpoint: Callable[[str], Awaitable[str | None]]
    ) -> None:
        self._world = world
        self._validate_endpoint = validate_endpoint

    def routes(self) -> list[Route]:
        """The routes that need the bot token."""
        return [
            ("GET", "/users/@me", self._get_me),
            ("POST", "/users/@me/channels", self._create_dm),
            ("GET", "/users/@me/guilds", self._my_guilds),
            ("GET", "/applications/@me", self._get_application),
            ("GET", "/oauth2/applications/@me", self._get_application),
            ("PATCH", "/applications/@me", self._edit_application),
            ("GET", "/gateway/bot", self._get_gateway_bot),
        ]

    def open_routes(self) -> list[Route]:
        """The routes that work without a token."""
        return [("GET", "/gateway", self._get_gateway)]

    async def _get_me(self, request: web.Request) -> web.Response:
        # The current user adds what only its owner may see to the public user object.
        return json_response({**self._world.bot_user, "mfa_enabled": False, "locale": "en-US"})

    async def _create_dm(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        recipient = body.get("recipient_id") if isinstance(body, dict) else None
        if not isinstance(recipient, str):
            raise invalid_form({"recipient_id": ("BASE_TYPE_REQUIRED", "This field is required")})
        if recipient not in self._world.members:
            raise unknown(ErrorCode.UNKNOWN_MEMBER)
        return json_response(self._world.dm_channel(recipient))

    async def _my_guilds(self, request: web.Request) -> web.Response:
        """The guilds the bot is in (the one guild), paged by ``before``/``after``."""
        limit = query_int(request, "limit", default=MY_GUILDS_MAX, low=1, high=MY_GUILDS_MAX)
        before, after = query_snowflake(request, "before"), query_snowflake(request, "after")
        guild = self._world.guild
        partial: JSON = {
            "id": guild["id"],
            "name": guild["name"],
            "icon": guild["icon"],
            "banner": guild["banner"],
            "owner": False,
            "permissions": BOT_GUILD_PERMISSIONS,
            "features": list(guild["features"]),
        }
        if request.query.get("with_counts", "").lower() == "true":
            partial["approximate_member_count"] = len(self._world.members)
            partial["approximate_presence_count"] = 0
        guild_id = int(guild["id"])
        listed = (before is None or guild_id < before) and (after is None or guild_id > after)
        return json_response([partial][:limit] if listed else [])

    def _application_json(self) -> JSON:
        world = self._world
        return {
            "id": world.application_id,
            "name": "steadybot emulated application",
            "icon": None,
            "description": "",
            "type": None,
            "verify_key": world.public_key_hex,
            "bot": world.bot_user,
            "owner": world.bot_user,  # the emulator has no developer account to show
            "team": None,
            "flags": 0,
            "flags_new": "0",
            "bot_public": True,
            "bot_require_code_grant": False,
            "redirect_uris": [],
            "interactions_endpoint_url": world.interactions_endpoint_url or None,
            "role_connections_verification_url": None,
            "approximate_guild_count": 1,
            "approximate_user_install_count": 0,
            "approximate_user_authorization_count": 0,
            "explicit_content_filter": 0,
            "eligible_oauth2_scopes": ["bot", "applications.commands"],
        }

    async def _get_application(self, request: web.Request) -> web.Response:
        return json_response(self._application_json())

    async def _edit_application(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        url = body.get("interactions_endpoint_url") if isinstance(body, dict) else None
        if isinstance(url, str):
            problem = await self._validate_endpoint(url)
            if problem is not None:
                raise invalid_form(
                    {"interactions_endpoint_url": ("APPLICATION_INTERACTIONS_ENDPOINT", problem)}
                )
            self._world.interactions_endpoint_url = url
        return json_response(self._application_json())

    # --- gateway discovery ------------------------------------------------------------

    @staticmethod
    def _gateway_url(request: web.Request) -> str:
        return f"ws://{request.host}/gateway"

    async def _get_gateway(self, request: web.Request) -> web.Response:
        return json_response({"url": self._gateway_url(request)})

    async def _get_gateway_bot(self, request: web.Request) -> web.Response:
        return json_response(
            {
                "url": self._gateway_url(request),
                "shards": 1,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 1000,
                    "reset_after": 0,
                    "max_concurrency": 1,
                },
            }
        )
