"""The emulator as one object: world, REST API, and delivery of signed interactions.

Use it in-process (``async with Emulator() as discord: ...``) or standalone with
``steadybot emulate``. It plays both sides Discord plays: the REST API the bot calls,
and the users whose clicks become signed HTTP POSTs to the bot's interactions endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
from collections import Counter
from types import TracebackType
from typing import Any

import aiohttp
import msgspec
from aiohttp import web

from steadybot.clock import Clock, SystemClock
from steadybot.constants import LOADING_FLAG
from steadybot.emulator.control import ControlRoutes
from steadybot.emulator.errors import EmulatedError
from steadybot.emulator.faults import FaultInjector
from steadybot.emulator.interactions import (
    EmulatedInteraction,
    InteractionLedger,
    InteractionOutcome,
)
from steadybot.emulator.ratelimits import RateLimiter, RateLimitSettings
from steadybot.emulator.rest import API_PREFIX, EmulatorApi
from steadybot.emulator.views import Action, EmulatorStatistics, InteractionView, Snapshot
from steadybot.emulator.world import World, WorldSettings

__all__ = ["DELIVERY_TIMEOUT", "Emulator"]

JSON = dict[str, Any]
DELIVERY_TIMEOUT = 10.0
"""Real seconds a delivery waits for the bot's HTTP reply (the 3 s rule is on the clock)."""
SETTLE_TIMEOUT = 2.0
"""Real seconds a webhook call waits for an initial response still in flight."""


class Emulator:
    """A local Discord for one application, one guild, and its members."""

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        seed: int = 0,
        members: int = 300,
        host: str = "127.0.0.1",
        port: int = 0,
        delivery_timeout: float = DELIVERY_TIMEOUT,
        faults: str = "none",
        rate_limits: RateLimitSettings | None = None,
    ) -> None:
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.world = World.seeded(WorldSettings(members=members, seed=seed), self.clock)
        self.ledger = InteractionLedger(self.world, self.clock)
        self._host = host
        self._port = port
        self._delivery_timeout = delivery_timeout
        self.limits = RateLimiter(rate_limits or RateLimitSettings(), self.clock, seed=seed)
        self.faults = FaultInjector(seed=seed, profile=faults)
        self._api = EmulatorApi(
            self.world,
            self.ledger,
            clock=self.clock,
            limits=self.limits,
            faults=self.faults,
            info=self.info,
            validate_endpoint=self._validate_endpoint,
            delivery_settled=self._delivery_settled,
        )
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._settled: dict[str, asyncio.Event] = {}
        self._interactions: list[EmulatedInteraction] = []
        self._balanced: tuple[str, ...] = ()  # set_interactions_endpoints: delivered in turn
        self._turns = itertools.count()

    # --- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, self._port))
        self._port = sock.getsockname()[1]
        app = self._api.application()
        ControlRoutes(
            act=self.act,
            snapshot=self.snapshot,
            set_endpoint=self.set_interactions_endpoint,
            set_endpoints=self.set_interactions_endpoints,
        ).register(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()
        self._session = aiohttp.ClientSession()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Emulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    # --- what a bot needs to be configured with ---------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._port}"

    @property
    def api_base(self) -> str:
        return self.url + API_PREFIX

    @property
    def application_id(self) -> str:
        return self.world.application_id

    @property
    def bot_token(self) -> str:
        return self.world.bot_token

    @property
    def public_key(self) -> str:
        return self.world.public_key_hex

    @property
    def guild_id(self) -> str:
        return str(self.world.guild["id"])

    @property
    def channel_ids(self) -> list[str]:
        return self.world.text_channel_ids

    @property
    def user_ids(self) -> list[str]:
        return list(self.world.members)

    def info(self) -> JSON:
        """What ``GET /_emulator/info`` returns."""
        return {
            "api_base": self.api_base,
            "application_id": self.application_id,
            "bot_token": self.bot_token,
            "public_key": self.public_key,
            "guild_id": self.guild_id,
            "channel_ids": self.channel_ids,
            "staff_role_id": self.world.staff_role_id,
            "user_ids": self.user_ids,
            "interactions_endpoint_url": self.world.interactions_endpoint_url or None,
        }

    # --- one interface for crowds, in-process or over HTTP ------------------------------

    async def act(self, action: Action) -> InteractionView:
        """Perform a user's action (see :class:`~steadybot.emulator.views.Action`)."""
        if action.user_id not in self.world.members:
            raise KeyError(f"no member {action.user_id}")
        if action.kind == "command":
            interaction = await self.send_command(
                action.name,
                user_id=action.user_id,
                channel_id=action.channel_id,
                options=action.options,
            )
        elif action.kind == "click":
            interaction = await self.click_button(
                action.custom_id, message_id=action.message_id, user_id=action.user_id
            )
        elif action.kind == "pick":
            interaction = await self.pick_select(
                action.custom_id,
                action.values,
                message_id=action.message_id,
                user_id=action.user_id,
            )
        else:
            interaction = await self.submit_modal(
                action.custom_id,
                action.fields,
                user_id=action.user_id,
                channel_id=action.channel_id,
            )
        return self.view(interaction)

    def view(self, interaction: EmulatedInteraction) -> InteractionView:
        """A read-only view of ``interaction`` now."""
        self.ledger.refresh(interaction)
        original = (
            self.ledger.webhook_message_or_none(interaction, "@original")
            if interaction.original_message_id is not None
            else None
        )
        loading = original is not None and bool(original["flags"] & LOADING_FLAG)
        if interaction.ack_type == 5:
            answered = original is not None and not loading
        elif interaction.ack_type == 6:
            answered = original is not None and original.get("edited_timestamp") is not None
        else:
            answered = False
        return InteractionView(
            id=interaction.id,
            type=interaction.type,
            user_id=interaction.user_id,
            channel_id=interaction.channel_id,
            outcome=interaction.outcome.value,
            ack_type=interaction.ack_type,
            ack_via=interaction.ack_via,
            ack_latency=interaction.ack_latency,
            original_message_id=interaction.original_message_id,
            followup_ids=list(interaction.followup_ids),
            double_acknowledged=interaction.double_acknowledged,
            expired_calls=interaction.expired_calls,
            owed=(
                interaction.ack_type in (5, 6)
                and not (answered or interaction.followup_ids)
                and not interaction.expired_calls
            ),
            answered_after_defer=answered or bool(interaction.followup_ids),
        )

    def snapshot(self, ids: list[str] | None = None, full: bool = True) -> Snapshot:
        """Views of the interactions ``ids`` (all when None) and, when ``full``, the
        channels, messages and counters a scenario's checks read."""
        chosen = (
            self._interactions
            if ids is None
            else [i for i in (self.ledger.get(x) for x in ids) if i is not None]
        )
        stats = self.statistics()
        world = self.world
        return Snapshot(
            interactions={i.id: self.view(i) for i in chosen},
            channels=list(world.channels.values()) if full else [],
            messages={cid: self.messages(cid) for cid in world.messages} if full else {},
            ephemeral={uid: list(ms) for uid, ms in world.ephemeral.items()} if full else {},
            dm_channels=dict(world.dm_channels) if full else {},
            selections={m: sorted(u) for m, u in world.selections.items() if u} if full else {},
            message_edits=dict(world.edits) if full else {},
            picks_while_showing=dict(world.picks_while_showing) if full else {},
            statistics=stats,
        )

    async def post_message(self, channel_id: str, body: JSON, *, age: float = 0.0) -> JSON:
        """Post a message as the bot (scenario setup), as ``POST .../messages`` would.

        ``age`` backdates it by that many seconds (its id says so too), e.g. to give a
        cleanup messages older than bulk delete's 14 days. No rate limit applies.
        """
        at = self.world.clock.time() - age if age else None
        return self.world.create_message(channel_id, body, author=self.world.bot_user, at=at)

    async def edit_message(self, channel_id: str, message_id: str, body: JSON) -> JSON:
        """Edit a message as someone else would (scenario: an admin changes a menu)."""
        message = self._api_message(channel_id, message_id)
        return self.world.edit_message(message, body)

    async def delete_message(self, channel_id: str, message_id: str) -> None:
        """Delete a message as someone else would (scenario: a moderator removes it)."""
        self.world.remove_message(self._api_message(channel_id, message_id))

    def _api_message(self, channel_id: str, message_id: str) -> JSON:
        message = self.world.messages.get(channel_id, {}).get(message_id)
        if message is None:
            raise KeyError(f"no message {message_id} in channel {channel_id}")
        return message

    def open_dm(self, user_id: str) -> str:
        """The id of the bot's DM channel with ``user_id`` (made on first use)."""
        return str(self.world.dm_channel(user_id)["id"])

    def set_interactions_endpoint(self, url: str) -> None:
        """Where interactions are POSTed (unchecked; PATCH applications/@me checks)."""
        self._balanced = ()
        self.world.interactions_endpoint_url = url

    def set_interactions_endpoints(self, urls: list[str]) -> None:
        """Deliver interactions to ``urls`` in turn (round robin), as a load balancer in
        front of several bot processes does: Discord itself knows one URL, the first.
        Setting one URL (here, or another one by ``PATCH /applications/@me``) ends the
        turns."""
        if not urls:
            raise ValueError("set_interactions_endpoints needs at least one URL")
        self._balanced = tuple(urls)
        self._turns = itertools.count()  # the first URL gets the next interaction
        self.world.interactions_endpoint_url = urls[0]

    def _next_endpoint(self) -> str:
        url = self.world.interactions_endpoint_url
        if self._balanced and url == self._balanced[0]:
            return self._balanced[next(self._turns) % len(self._balanced)]
        return url

    # --- users acting -----------------------------------------------------------------

    async def send_command(
        self,
        name: str,
        *,
        user_id: str | None = None,
        channel_id: str | None = None,
        options: list[JSON] | None = None,
    ) -> EmulatedInteraction:
        """A user runs ``/name``; returns once the bot's HTTP reply was handled."""
        data = {"id": self.world.ids.next(), "name": name, "type": 1, "options": options or []}
        return await self.deliver(self._create(2, data, user_id, channel_id))

    async def click_button(
        self, custom_id: str, *, message_id: str, user_id: str | None = None
    ) -> EmulatedInteraction:
        """A user clicks the button ``custom_id`` on message ``message_id``."""
        message = self._message_with_component(message_id, custom_id, component_type=2)
        data = {"custom_id": custom_id, "component_type": 2}
        return await self.deliver(
            self._create(3, data, user_id, message["channel_id"], message=message)
        )

    async def pick_select(
        self,
        custom_id: str,
        values: list[str],
        *,
        message_id: str,
        user_id: str | None = None,
    ) -> EmulatedInteraction:
        """A user picks ``values`` in the string select ``custom_id``."""
        message = self._message_with_component(message_id, custom_id, component_type=3)
        data = {"custom_id": custom_id, "component_type": 3, "values": values}
        interaction = self._create(3, data, user_id, message["channel_id"], message=message)
        self.world.pick(message_id, interaction.user_id)
        return await self.deliver(interaction)

    async def submit_modal(
        self,
        custom_id: str,
        fields: dict[str, str],
        *,
        user_id: str | None = None,
        channel_id: str | None = None,
    ) -> EmulatedInteraction:
        """A user submits the modal ``custom_id`` with text ``fields``."""
        rows = [
            {"type": 1, "components": [{"type": 4, "custom_id": key, "value": value}]}
            for key, value in fields.items()
        ]
        data = {"custom_id": custom_id, "components": rows}
        return await self.deliver(self._create(5, data, user_id, channel_id))

    def _create(
        self,
        kind: int,
        data: JSON,
        user_id: str | None,
        channel_id: str | None,
        *,
        message: JSON | None = None,
    ) -> EmulatedInteraction:
        interaction = self.ledger.create(
            kind,
            data,
            user_id=user_id or self.user_ids[0],
            channel_id=channel_id or self.channel_ids[0],
            message=message,
        )
        self._interactions.append(interaction)
        return interaction

    def _message_with_component(self, message_id: str, custom_id: str, component_type: int) -> JSON:
        message = self.world.find_message(message_id)
        if message is None:
            raise ValueError(f"no message {message_id} to interact with")
        for row in message.get("components") or []:
            for component in row.get("components") or []:
                if (
                    component.get("custom_id") == custom_id
                    and component.get("type") == component_type
                ):
                    return message
        raise ValueError(
            f"message {message_id} has no component {custom_id!r} of type {component_type}"
        )

    # --- delivery ---------------------------------------------------------------------

    def sign(self, body: bytes, timestamp: str | None = None) -> dict[str, str]:
        """The signature headers Discord sends with ``body``."""
        stamp = timestamp if timestamp is not None else str(int(self.clock.time()))
        signature = self.world.signing_key.sign(stamp.encode() + body).signature.hex()
        return {
            "X-Signature-Ed25519": signature,
            "X-Signature-Timestamp": stamp,
            "Content-Type": "application/json",
            "User-Agent": "Discord-Interactions/1.0 (+https://discord.com)",
        }

    async def post_signed(
        self, body: bytes, *, headers: dict[str, str] | None = None, url: str | None = None
    ) -> tuple[int, bytes]:
        """POST ``body`` to the endpoint, signed unless ``headers`` are given."""
        if self._session is None:
            raise RuntimeError("the emulator is not started")
        target = url or self._next_endpoint()
        if not target:
            raise RuntimeError("no interactions endpoint: call set_interactions_endpoint()")
        sent = headers if headers is not None else self.sign(body)
        timeout = aiohttp.ClientTimeout(total=self._delivery_timeout)
        async with self._session.post(target, data=body, headers=sent, timeout=timeout) as reply:
            return reply.status, await reply.read()

    async def deliver(self, interaction: EmulatedInteraction) -> EmulatedInteraction:
        """POST ``interaction`` to the bot and apply the HTTP reply as Discord would."""
        settled = self._settled.setdefault(interaction.id, asyncio.Event())
        try:
            body = msgspec.json.encode(interaction.payload)
            try:
                status, reply = await self.post_signed(body)
            except (aiohttp.ClientError, TimeoutError) as exc:
                self.ledger.mark_failed(interaction, f"no reply: {type(exc).__name__}")
                return interaction
            interaction.delivery_status = status
            if status == 200:
                self._apply_reply(interaction, reply)
            elif status not in (202, 204):
                self.ledger.mark_failed(interaction, f"the endpoint answered HTTP {status}")
            return self.ledger.refresh(interaction)
        finally:
            settled.set()
            self._settled.pop(interaction.id, None)

    def _apply_reply(self, interaction: EmulatedInteraction, reply: bytes) -> None:
        try:
            body = msgspec.json.decode(reply)
        except msgspec.DecodeError:
            self.ledger.mark_failed(interaction, "the reply is not JSON")
            return
        try:
            self.ledger.acknowledge(interaction.id, interaction.token, body, via="http")
        except EmulatedError as exc:
            interaction.delivery_error = f"reply refused: {exc.code} {exc.message}"
            if exc.code not in (40060, 10062):
                self.ledger.mark_failed(interaction, interaction.delivery_error)

    async def _delivery_settled(self, interaction: EmulatedInteraction) -> None:
        event = self._settled.get(interaction.id)
        if event is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), SETTLE_TIMEOUT)

    async def _validate_endpoint(self, url: str) -> str | None:
        """Discord's check of a new endpoint: a PING must get PONG, a bad signature 401."""
        ping = msgspec.json.encode(
            {
                "id": self.world.ids.next(),
                "type": 1,
                "version": 1,
                "application_id": self.application_id,
                "token": "ping",
            }
        )
        try:
            status, reply = await self.post_signed(ping, url=url)
            if status != 200 or msgspec.json.decode(reply) != {"type": 1}:
                return f"the endpoint answered a PING with HTTP {status} {reply[:60]!r}"
            forged = dict(self.sign(ping))
            forged["X-Signature-Ed25519"] = "00" * 64
            status, _ = await self.post_signed(ping, headers=forged, url=url)
        except (aiohttp.ClientError, TimeoutError, msgspec.DecodeError) as exc:
            return f"the endpoint could not be reached: {type(exc).__name__}"
        if status != 401:
            return f"the endpoint accepted a bad signature (HTTP {status}, expected 401)"
        return None

    # --- what Discord shows -----------------------------------------------------------

    @property
    def interactions(self) -> list[EmulatedInteraction]:
        return [self.ledger.refresh(i) for i in self._interactions]

    def messages(self, channel_id: str) -> list[JSON]:
        """A channel's messages, oldest first."""
        return sorted(self.world.messages.get(channel_id, {}).values(), key=lambda m: int(m["id"]))

    def message(self, channel_id: str, message_id: str) -> JSON | None:
        return self.world.messages.get(channel_id, {}).get(message_id)

    def ephemeral_messages(self, user_id: str) -> list[JSON]:
        return list(self.world.ephemeral.get(user_id, []))

    def statistics(self) -> EmulatorStatistics:
        interactions = self.ledger.all()
        counters: Counter[str] = self.ledger.counters + self._api.counters
        return EmulatorStatistics(
            delivered=counters["delivered"],
            acknowledged_in_time=counters["acknowledged_in_time"],
            failed=counters["failed"],
            pending=sum(1 for i in interactions if i.outcome is InteractionOutcome.PENDING),
            double_acknowledged=counters["double_acknowledged"],
            late_acknowledgements=counters["late_acknowledgements"],
            followups=counters["followups"],
            messages_created=counters["messages_created"],
            messages_edited=counters["messages_edited"],
            messages_deleted=counters["messages_deleted"],
            expired_token_calls=counters["expired_token_calls"],
            rest_requests=counters["rest_requests"],
            rest_errors=counters["rest_errors"],
            ack_types={
                int(key.removeprefix("ack_type_")): value
                for key, value in counters.items()
                if key.startswith("ack_type_")
            },
            rate_limited=dict(self.limits.rejected),
            invalid_requests=self.limits.invalid_requests,
            faults_injected=self.faults.total,
            requests_by_route=dict(self._api.requests_by_route),
        )
