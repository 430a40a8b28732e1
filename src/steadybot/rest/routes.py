"""Discord REST routes as data: method, path template, and what the route needs.

A :class:`Route` knows whether it takes the bot token (webhook and interaction routes
authenticate by the token in the path and must not send it) and which path parameter
is its *major parameter* (Discord's rate limits are per bucket and per top-level
resource: channel, guild, or webhook id + token). Compiled paths carry tokens, so
only the template is ever logged.
"""

from __future__ import annotations

import hashlib
import string
from dataclasses import dataclass
from urllib.parse import quote

__all__ = [
    "CHANNEL_BULK_DELETE",
    "CHANNEL_CREATE_MESSAGE",
    "CHANNEL_DELETE_MESSAGE",
    "CHANNEL_EDIT_MESSAGE",
    "CHANNEL_GET",
    "CHANNEL_GET_MESSAGE",
    "CHANNEL_LIST_MESSAGES",
    "GET_CURRENT_USER",
    "GUILD_ADD_MEMBER_ROLE",
    "GUILD_CREATE_CHANNEL",
    "GUILD_CREATE_ROLE",
    "GUILD_GET_MEMBER",
    "GUILD_LIST_CHANNELS",
    "GUILD_LIST_MEMBERS",
    "GUILD_LIST_ROLES",
    "GUILD_REMOVE_MEMBER_ROLE",
    "INTERACTION_CALLBACK",
    "USER_CREATE_DM",
    "USER_LIST_GUILDS",
    "WEBHOOK_CREATE_MESSAGE",
    "WEBHOOK_DELETE_MESSAGE",
    "WEBHOOK_EDIT_MESSAGE",
    "WEBHOOK_GET_MESSAGE",
    "CompiledRoute",
    "Route",
]

_MAJOR_PARAMETERS = ("channel_id", "guild_id", "webhook_id", "application_id", "interaction_id")


@dataclass(frozen=True, slots=True)
class CompiledRoute:
    """A route with its parameters filled in."""

    route: Route
    path: str
    major: str  # the top-level resource this request counts against, e.g. "channel_id=1"

    @property
    def template(self) -> str:
        return self.route.template


@dataclass(frozen=True, slots=True)
class Route:
    """A REST route: ``Route("GET", "/channels/{channel_id}")``."""

    method: str
    template: str
    auth: bool = True  # send "Authorization: Bot …"
    interaction: bool = False  # interaction/webhook-token route: exempt from the global limit

    @property
    def key(self) -> str:
        """``"METHOD template"``: what the rate limiter learns buckets by."""
        return f"{self.method} {self.template}"

    @property
    def parameters(self) -> tuple[str, ...]:
        return tuple(
            name for _, name, _, _ in string.Formatter().parse(self.template) if name is not None
        )

    def compile(self, **params: str | int) -> CompiledRoute:
        """Fill in the path; every parameter must be given and is URL-quoted."""
        expected = set(self.parameters)
        if set(params) != expected:
            missing = sorted(expected - set(params))
            extra = sorted(set(params) - expected)
            raise ValueError(f"{self}: missing {missing}, unexpected {extra}")
        path = self.template.format(**{k: quote(str(v), safe="@") for k, v in params.items()})
        major_name = next((name for name in _MAJOR_PARAMETERS if name in params), None)
        major = ""
        if major_name is not None:
            major = f"{major_name}={params[major_name]}"
            if major_name in ("webhook_id", "application_id") and "token" in params:
                # Webhook buckets are per id + token; keep the token out of the key.
                digest = hashlib.sha256(str(params["token"]).encode()).hexdigest()[:16]
                major += f"+{digest}"
        return CompiledRoute(route=self, path=path, major=major)

    def __str__(self) -> str:
        return f"{self.method} {self.template}"


INTERACTION_CALLBACK = Route(
    "POST", "/interactions/{interaction_id}/{token}/callback", auth=False, interaction=True
)
WEBHOOK_CREATE_MESSAGE = Route(
    "POST", "/webhooks/{application_id}/{token}", auth=False, interaction=True
)
WEBHOOK_GET_MESSAGE = Route(
    "GET", "/webhooks/{application_id}/{token}/messages/{message_id}", auth=False, interaction=True
)
WEBHOOK_EDIT_MESSAGE = Route(
    "PATCH",
    "/webhooks/{application_id}/{token}/messages/{message_id}",
    auth=False,
    interaction=True,
)
WEBHOOK_DELETE_MESSAGE = Route(
    "DELETE",
    "/webhooks/{application_id}/{token}/messages/{message_id}",
    auth=False,
    interaction=True,
)
CHANNEL_GET = Route("GET", "/channels/{channel_id}")
CHANNEL_BULK_DELETE = Route("POST", "/channels/{channel_id}/messages/bulk-delete")
CHANNEL_LIST_MESSAGES = Route("GET", "/channels/{channel_id}/messages")
CHANNEL_CREATE_MESSAGE = Route("POST", "/channels/{channel_id}/messages")
CHANNEL_GET_MESSAGE = Route("GET", "/channels/{channel_id}/messages/{message_id}")
CHANNEL_EDIT_MESSAGE = Route("PATCH", "/channels/{channel_id}/messages/{message_id}")
CHANNEL_DELETE_MESSAGE = Route("DELETE", "/channels/{channel_id}/messages/{message_id}")
GUILD_LIST_CHANNELS = Route("GET", "/guilds/{guild_id}/channels")
GUILD_LIST_ROLES = Route("GET", "/guilds/{guild_id}/roles")
GUILD_CREATE_CHANNEL = Route("POST", "/guilds/{guild_id}/channels")
USER_CREATE_DM = Route("POST", "/users/@me/channels")
USER_LIST_GUILDS = Route("GET", "/users/@me/guilds")
GUILD_LIST_MEMBERS = Route("GET", "/guilds/{guild_id}/members")
GUILD_GET_MEMBER = Route("GET", "/guilds/{guild_id}/members/{user_id}")
GUILD_ADD_MEMBER_ROLE = Route("PUT", "/guilds/{guild_id}/members/{user_id}/roles/{role_id}")
GUILD_REMOVE_MEMBER_ROLE = Route("DELETE", "/guilds/{guild_id}/members/{user_id}/roles/{role_id}")
GUILD_CREATE_ROLE = Route("POST", "/guilds/{guild_id}/roles")
GET_CURRENT_USER = Route("GET", "/users/@me")
