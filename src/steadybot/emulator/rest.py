"""The emulator's REST API under ``/api/v10``: what the runtime and common clients call.

Each handler reads or writes the :class:`~steadybot.emulator.world.World` and the
:class:`~steadybot.emulator.interactions.InteractionLedger`; errors are raised as
:class:`EmulatedError` and turned into Discord's JSON by one middleware, which also
answers unknown routes, wrong methods and bodies that are not JSON the way Discord
does, and never lets a stack trace reach the client.

This module holds the plumbing and the channel-message, interaction and webhook routes;
the other route groups each have a module: ``application.py`` (current user, DMs, the
application, gateway discovery), ``guilds.py`` and ``commands.py``. Request and response
bodies follow Discord's OpenAPI description, which
``tests/integration/test_emulator_spec.py`` checks route by route.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from steadybot.clock import Clock
from steadybot.constants import ErrorCode
from steadybot.emulator._http import Handler, json_response, no_content, read_json
from steadybot.emulator.application import ApplicationRoutes
from steadybot.emulator.commands import CommandRoutes
from steadybot.emulator.errors import CANNOT_EXECUTE_ON_DM, EmulatedError, invalid_form, unknown
from steadybot.emulator.faults import Fault, FaultInjector, FaultRule
from steadybot.emulator.guilds import GuildRoutes
from steadybot.emulator.interactions import EmulatedInteraction, InteractionLedger
from steadybot.emulator.ratelimits import Decision, RateLimiter
from steadybot.emulator.validation import check_bulk_delete, check_message
from steadybot.emulator.world import CHANNEL_DM, World
from steadybot.snowflake import snowflake_time

__all__ = ["API_PREFIX", "EmulatorApi"]

log = logging.getLogger("steadybot.emulator")
API_PREFIX = "/api/v10"
MAX_REQUEST_BYTES = 8 * 1024 * 1024
MESSAGE_LIST_DEFAULT = 50
MESSAGE_LIST_MAX = 100
BULK_DELETE_MAX_AGE = 14 * 86_400  # seconds: older messages must be deleted one by one
JSON = dict[str, Any]
FAULT_RETRY_AFTER = 0.5  # seconds a fault-injected 429 asks the client to wait
_MAJOR_PARAMETERS = ("channel_id", "guild_id", "application_id", "interaction_id")
_json = json_response


class EmulatorApi:
    """Routes and middleware of the emulated REST API."""

    def __init__(
        self,
        world: World,
        ledger: InteractionLedger,
        *,
        clock: Clock,
        limits: RateLimiter,
        faults: FaultInjector,
        info: Callable[[], JSON],
        validate_endpoint: Callable[[str], Awaitable[str | None]],
        delivery_settled: Callable[[EmulatedInteraction], Awaitable[None]],
    ) -> None:
        self._world = world
        self._ledger = ledger
        self._clock = clock
        self.limits = limits
        self.faults = faults
        self._info = info
        self._validate_endpoint = validate_endpoint
        self._delivery_settled = delivery_settled
        self.counters: Counter[str] = Counter()
        # "GET /guilds/{guild_id}/members/{user_id}" → requests: a story can check, say,
        # that no member was fetched one by one after the bot warmed its cache.
        self.requests_by_route: Counter[str] = Counter()

    def application(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=MAX_REQUEST_BYTES)
        p = API_PREFIX
        bot, open_ = self._bot_auth, self._no_auth
        app.router.add_get("/_emulator/info", self._get_info)
        app.router.add_get("/_emulator/faults", self._get_faults)
        app.router.add_put("/_emulator/faults", self._put_faults)
        identity = ApplicationRoutes(self._world, validate_endpoint=self._validate_endpoint)
        for method, path, handler in identity.open_routes():
            app.router.add_route(method, p + path, open_(handler))
        for method, path, handler in (
            *identity.routes(),
            *GuildRoutes(self._world).routes(),
            *CommandRoutes(self._world).routes(),
        ):
            app.router.add_route(method, p + path, bot(handler))
        app.router.add_get(f"{p}/channels/{{channel_id}}", bot(self._get_channel))
        messages = f"{p}/channels/{{channel_id}}/messages"
        app.router.add_get(messages, bot(self._list_messages))
        app.router.add_post(messages, bot(self._create_message))
        # Before messages/{message_id}, so "bulk-delete" is never read as a message id.
        app.router.add_post(messages + "/bulk-delete", bot(self._bulk_delete))
        app.router.add_get(messages + "/{message_id}", bot(self._get_message))
        app.router.add_patch(messages + "/{message_id}", bot(self._edit_message))
        app.router.add_delete(messages + "/{message_id}", bot(self._delete_message))
        callback = f"{p}/interactions/{{interaction_id}}/{{token}}/callback"
        app.router.add_post(callback, open_(self._callback))
        webhook = f"{p}/webhooks/{{application_id}}/{{token}}"
        app.router.add_post(webhook, open_(self._followup))
        app.router.add_get(webhook + "/messages/{message_id}", open_(self._get_webhook_message))
        app.router.add_patch(webhook + "/messages/{message_id}", open_(self._edit_webhook_message))
        app.router.add_delete(
            webhook + "/messages/{message_id}", open_(self._delete_webhook_message)
        )
        return app

    # --- plumbing -------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.counters["rest_requests"] += 1
        decision: Decision | None = None
        route = self._route_of(request)
        try:
            if route is not None:
                template, major = route
                self.requests_by_route[f"{request.method} {template}"] += 1
                authorization = request.headers.get("Authorization")
                decision = self.limits.check(request.method, template, major, authorization)
                if decision.rejected:
                    return self._finish(self._rejection(decision), decision)
                fault = self.faults.decide(request.method, template)
                if fault is not None:
                    if fault.latency > 0:
                        await self._clock.sleep(fault.latency)
                    if fault.status is not None:
                        return self._finish(self._fault_response(fault), None)
            response = await handler(request)
        except EmulatedError as exc:
            response = _json(exc.body(), exc.status)
        except web.HTTPRequestEntityTooLarge:
            response = _json({"code": 40005, "message": "Request entity too large"}, 413)
        except web.HTTPNotFound:
            response = _json({"code": 0, "message": "404: Not Found"}, 404)
        except web.HTTPMethodNotAllowed:
            response = _json({"code": 0, "message": "405: Method Not Allowed"}, 405)
        except ConnectionResetError:  # the client went away mid-request (killed, closed)
            self.counters["client_gone"] += 1
            response = _json({"code": 0, "message": "client gone"}, 499)
        except Exception:  # a bug in the emulator must not look like a crash to the bot
            # The route template, never the path: webhook paths carry tokens.
            shown = route[0] if route is not None else "an unknown route"
            log.exception("emulator: %s %s failed", request.method, shown)
            response = _json({"code": 0, "message": "500: Internal Server Error"}, 500)
        return self._finish(response, decision)

    def _finish(
        self, response: web.StreamResponse, decision: Decision | None
    ) -> web.StreamResponse:
        if decision is not None:
            response.headers.update(decision.headers)
        if response.status >= 400:
            self.counters["rest_errors"] += 1
            self.counters[f"status_{response.status}"] += 1
        scope = response.headers.get("X-RateLimit-Scope", "")
        if decision is not None and decision.scope == "cloudflare":
            scope = "cloudflare"
        self.limits.record_status(response.status, scope)
        return response

    @staticmethod
    def _route_of(request: web.Request) -> tuple[str, str] | None:
        """The route template (without the API prefix) and the top-level resource."""
        resource = request.match_info.route.resource
        if resource is None or not resource.canonical.startswith(API_PREFIX):
            return None
        template = resource.canonical.removeprefix(API_PREFIX)
        params = request.match_info
        major = next((f"{n}={params[n]}" for n in _MAJOR_PARAMETERS if n in params), "")
        if "token" in params and "application_id" in params:
            major += "+" + params["token"][-16:]
        return template, major

    @staticmethod
    def _rejection(decision: Decision) -> web.Response:
        if isinstance(decision.body, bytes):  # the Cloudflare block: not Discord's JSON
            return web.Response(body=decision.body, status=429, content_type="text/plain")
        return _json(decision.body, 429)

    @staticmethod
    def _fault_response(fault: Fault) -> web.Response:
        status = fault.status or 500
        if status == 429:
            body = {
                "message": "You are being rate limited.",
                "retry_after": FAULT_RETRY_AFTER,
                "global": False,
                "code": 0,
            }
            response = _json(body, 429)
            response.headers.update(
                {"Retry-After": "1", "X-RateLimit-Scope": "shared", "Via": "1.1 google"}
            )
            return response
        message = fault.rule.message or f"{status}: injected fault"
        return _json({"code": fault.rule.code, "message": message}, status)

    def _bot_auth(self, handler: Handler) -> Handler:
        expected = f"Bot {self._world.bot_token}"

        async def checked(request: web.Request) -> web.StreamResponse:
            if request.headers.get("Authorization") != expected:
                raise EmulatedError(401, 0, "401: Unauthorized")
            return await handler(request)

        return checked

    @staticmethod
    def _no_auth(handler: Handler) -> Handler:
        return handler

    @staticmethod
    async def _body(request: web.Request) -> Any:
        return await read_json(request)

    def _channel(self, channel_id: str) -> JSON:
        channel = self._world.channels.get(channel_id)
        if channel is None or channel_id not in self._world.messages:
            raise unknown(ErrorCode.UNKNOWN_CHANNEL)
        return channel

    def _message(self, channel_id: str, message_id: str) -> JSON:
        self._channel(channel_id)
        message = self._world.messages[channel_id].get(message_id)
        if message is None:
            raise unknown(ErrorCode.UNKNOWN_MESSAGE)
        return message

    # --- the emulator's own control API ---------------------------------------------

    async def _get_info(self, request: web.Request) -> web.Response:
        return _json(self._info())

    def faults_json(self) -> JSON:
        return {
            "profile": self.faults.profile,
            "rules": [_rule_json(r) for r in self.faults.rules],
            "injected": self.faults.injected,
        }

    async def _get_faults(self, request: web.Request) -> web.Response:
        return _json(self.faults_json())

    async def _put_faults(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        try:
            if isinstance(body, dict) and isinstance(body.get("profile"), str):
                self.faults.set_profile(body["profile"])
            elif isinstance(body, dict) and isinstance(body.get("rules"), list):
                self.faults.set_rules([FaultRule.from_json(rule) for rule in body["rules"]])
            else:
                raise ValueError('expected {"profile": NAME} or {"rules": [...]}')
        except (TypeError, ValueError) as exc:
            raise EmulatedError(400, ErrorCode.INVALID_FORM_BODY, str(exc)) from None
        return _json(self.faults_json())

    # --- channels and messages ------------------------------------------------------

    async def _get_channel(self, request: web.Request) -> web.Response:
        return _json(self._channel(request.match_info["channel_id"]))

    async def _list_messages(self, request: web.Request) -> web.Response:
        channel_id = request.match_info["channel_id"]
        self._channel(channel_id)
        try:
            limit = int(request.query.get("limit", MESSAGE_LIST_DEFAULT))
        except ValueError:
            raise invalid_form({"limit": ("NUMBER_TYPE_COERCE", "Value is not int.")}) from None
        if not 1 <= limit <= MESSAGE_LIST_MAX:
            raise invalid_form({"limit": ("NUMBER_TYPE_MAX", "Must be between 1 and 100.")})
        newest_first = sorted(
            self._world.messages[channel_id].values(), key=lambda m: int(m["id"]), reverse=True
        )
        before, after = request.query.get("before"), request.query.get("after")
        if before is not None and before.isdigit():
            newest_first = [m for m in newest_first if int(m["id"]) < int(before)]
        if after is not None and after.isdigit():
            newest_first = [m for m in newest_first if int(m["id"]) > int(after)][-limit:]
        return _json(newest_first[:limit])

    async def _create_message(self, request: web.Request) -> web.Response:
        channel_id = request.match_info["channel_id"]
        self._channel(channel_id)
        body = check_message(await self._body(request))
        author = self._world.bot_user
        nonce = body.get("nonce")
        if nonce is not None and body.get("enforce_nonce") is True:
            # Discord: the nonce is checked for uniqueness over the past few minutes; a
            # repeat by the same author returns the first message, creating nothing.
            earlier = self._world.message_by_nonce(channel_id, author["id"], nonce)
            if earlier is not None:
                self._ledger.counters["nonce_duplicates"] += 1
                return _json({**earlier, "nonce": nonce})
        message = self._world.create_message(channel_id, body, author=author)
        if nonce is not None:
            self._world.remember_nonce(channel_id, author["id"], nonce, message["id"])
        self._ledger.counters["messages_created"] += 1
        return _json({**message, "nonce": nonce} if nonce is not None else message)

    async def _get_message(self, request: web.Request) -> web.Response:
        return _json(
            self._message(request.match_info["channel_id"], request.match_info["message_id"])
        )

    async def _edit_message(self, request: web.Request) -> web.Response:
        message = self._message(request.match_info["channel_id"], request.match_info["message_id"])
        body = check_message(await self._body(request), create=False)
        if message["author"]["id"] != self._world.bot_user["id"]:
            raise EmulatedError(403, 50005, "Cannot edit a message authored by another user")
        self._ledger.counters["messages_edited"] += 1
        return _json(self._world.edit_message(message, body))

    async def _delete_message(self, request: web.Request) -> web.Response:
        channel_id = request.match_info["channel_id"]
        message = self._message(channel_id, request.match_info["message_id"])
        self._world.remove_message(message)
        self._ledger.counters["messages_deleted"] += 1
        return web.Response(status=204)

    async def _bulk_delete(self, request: web.Request) -> web.Response:
        """Guild channels only; 2-100 unique ids, none over 14 days old; unknown ids ignored."""
        channel_id = request.match_info["channel_id"]
        if self._channel(channel_id)["type"] == CHANNEL_DM:
            raise EmulatedError(400, CANNOT_EXECUTE_ON_DM, "Cannot execute action on a DM channel")
        message_ids = check_bulk_delete(await self._body(request))
        oldest = self._world.clock.time() - BULK_DELETE_MAX_AGE
        if any(snowflake_time(message_id) < oldest for message_id in message_ids):
            raise EmulatedError(
                400,
                ErrorCode.MESSAGE_TOO_OLD_TO_BULK_DELETE,
                "You can only bulk delete messages that are under 14 days old.",
            )
        store = self._world.messages[channel_id]
        deleted = [store.pop(message_id) for message_id in message_ids if message_id in store]
        for message in deleted:
            self._world.selections.pop(message["id"], None)
        self._ledger.counters["messages_deleted"] += len(deleted)
        return no_content()

    # --- interactions and webhooks ----------------------------------------------------

    async def _callback(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        interaction = self._ledger.acknowledge(
            request.match_info["interaction_id"], request.match_info["token"], body, via="callback"
        )
        if request.query.get("with_response") == "true":
            return _json(self._callback_response(interaction))
        return web.Response(status=204)

    def _callback_response(self, interaction: EmulatedInteraction) -> JSON:
        """``?with_response=true``: the interaction, and the message the response made."""
        summary: JSON = {
            "id": interaction.id,
            "type": interaction.type,
            "channel_id": interaction.channel_id,
            "guild_id": self._world.guild["id"],
        }
        body: JSON = {"interaction": summary}
        if interaction.original_message_id is not None:
            message = self._ledger.webhook_message(interaction, "@original")
            summary["response_message_id"] = interaction.original_message_id
            summary["response_message_loading"] = bool(message["flags"] & 128)
            summary["response_message_ephemeral"] = interaction.ephemeral
            body["resource"] = {"type": interaction.ack_type, "message": message}
        return body

    async def _token(self, request: web.Request) -> EmulatedInteraction:
        application_id, token = request.match_info["application_id"], request.match_info["token"]
        try:
            return self._ledger.by_token(application_id, token)
        except EmulatedError as exc:
            if exc.code != ErrorCode.UNKNOWN_WEBHOOK:
                raise
            # The initial response may still be on its way back in the HTTP reply:
            # Discord applies it before the token works; so do we.
            pending = self._ledger.pending_by_token(token)
            if pending is None:
                raise
            await self._delivery_settled(pending)
            return self._ledger.by_token(application_id, token)

    async def _followup(self, request: web.Request) -> web.Response:
        interaction = await self._token(request)
        return _json(self._ledger.followup(interaction, await self._body(request)))

    async def _get_webhook_message(self, request: web.Request) -> web.Response:
        interaction = await self._token(request)
        return _json(self._ledger.webhook_message(interaction, request.match_info["message_id"]))

    async def _edit_webhook_message(self, request: web.Request) -> web.Response:
        interaction = await self._token(request)
        message = self._ledger.webhook_message(interaction, request.match_info["message_id"])
        body = check_message(await self._body(request), create=False)
        self._ledger.counters["messages_edited"] += 1
        return _json(self._world.edit_message(message, body))

    async def _delete_webhook_message(self, request: web.Request) -> web.Response:
        interaction = await self._token(request)
        message = self._ledger.webhook_message(interaction, request.match_info["message_id"])
        self._world.remove_message(message)
        self._ledger.counters["messages_deleted"] += 1
        return web.Response(status=204)


def _rule_json(rule: FaultRule) -> JSON:
    return {name: getattr(rule, name) for name in rule.__dataclass_fields__}
