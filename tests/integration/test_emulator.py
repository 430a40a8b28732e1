"""The emulator over real sockets: its REST API, signed delivery, and Discord's clocks.

The emulator runs on a manual clock, so the 3-second and 15-minute rules are crossed
by advancing time; the bot side is a tiny aiohttp app on 127.0.0.1 whose answers each
test sets, and which checks every signature with the emulator's public key.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp import web
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from steadybot.clock import ManualClock, SystemClock
from steadybot.emulator import Emulator, InteractionOutcome
from steadybot.emulator.ratelimits import RateLimitSettings
from steadybot.errors import BadRequest, NotFound, RateLimited, Unauthorized
from steadybot.rest import RestClient

JSON = dict[str, Any]
Answer = Callable[[JSON], "JSON | int"]
LOADING = 128
EPHEMERAL = 64


class Endpoint:
    """The bot's interactions endpoint: verifies signatures, PONGs, answers as told."""

    def __init__(self, public_key: str, *, check_signatures: bool = True) -> None:
        self.verify_key = VerifyKey(bytes.fromhex(public_key))
        self.check_signatures = check_signatures
        self.answer: Answer = lambda payload: 202
        self.before_reply: Callable[[JSON], Awaitable[None]] | None = None
        self.received: list[JSON] = []  # payloads that passed the signature check
        self.timestamps: list[str] = []
        self.rejected = 0  # requests refused for a bad signature
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/interactions", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/interactions"

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        signature = request.headers.get("X-Signature-Ed25519", "")
        timestamp = request.headers.get("X-Signature-Timestamp", "")
        if self.check_signatures:
            try:
                self.verify_key.verify(timestamp.encode() + body, bytes.fromhex(signature))
            except (BadSignatureError, ValueError):
                self.rejected += 1
                return web.Response(status=401, text="invalid request signature")
        payload: JSON = msgspec.json.decode(body)
        self.received.append(payload)
        self.timestamps.append(timestamp)
        if payload["type"] == 1:
            return web.json_response({"type": 1})
        if self.before_reply is not None:
            await self.before_reply(payload)
        answer = self.answer(payload)
        if isinstance(answer, int):
            return web.Response(status=answer)
        return web.json_response(answer)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def emulator(clock: ManualClock) -> AsyncIterator[Emulator]:
    async with Emulator(clock=clock, members=20) as emu:
        yield emu


@pytest.fixture
async def bot(emulator: Emulator) -> AsyncIterator[Endpoint]:
    endpoint = Endpoint(emulator.public_key)
    await endpoint.start()
    emulator.set_interactions_endpoint(endpoint.url)
    yield endpoint
    await endpoint.close()


@pytest.fixture
async def rest(emulator: Emulator) -> AsyncIterator[RestClient]:
    client = RestClient(api_base=emulator.api_base, token=emulator.bot_token, clock=SystemClock())
    yield client
    await client.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def outcome(emulator: Emulator, interaction_id: str) -> InteractionOutcome:
    """The outcome as the emulator judges it now (the 3 s rule applied)."""
    interaction = emulator.ledger.get(interaction_id)
    assert interaction is not None
    return interaction.outcome


def reply_with(body: JSON | int) -> Answer:
    return lambda payload: body


async def fetch(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    token: str | None = None,
    json: object = None,
    data: bytes | None = None,
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bot {token}"} if token is not None else {}
    async with http.request(method, url, headers=headers, json=json, data=data) as reply:
        raw = await reply.read()
        return reply.status, msgspec.json.decode(raw) if raw else None


# --- the API itself ----------------------------------------------------------------------


async def test_info_tells_a_bot_what_to_configure(
    emulator: Emulator, http: aiohttp.ClientSession
) -> None:
    status, info = await fetch(http, "GET", f"{emulator.url}/_emulator/info")

    assert status == 200
    assert info["api_base"] == emulator.api_base
    assert info["api_base"].endswith("/api/v10")
    assert info["application_id"] == emulator.application_id
    assert info["bot_token"] == emulator.bot_token
    assert info["public_key"] == emulator.public_key
    assert len(bytes.fromhex(info["public_key"])) == 32
    assert info["guild_id"] == emulator.guild_id
    assert info["channel_ids"] == emulator.channel_ids
    assert len(info["channel_ids"]) == 3
    assert info["staff_role_id"] == emulator.world.staff_role_id
    assert info["interactions_endpoint_url"] is None

    emulator.set_interactions_endpoint("http://127.0.0.1:9/interactions")
    _, info = await fetch(http, "GET", f"{emulator.url}/_emulator/info")
    assert info["interactions_endpoint_url"] == "http://127.0.0.1:9/interactions"


async def test_bot_routes_need_the_bot_token(
    emulator: Emulator, http: aiohttp.ClientSession
) -> None:
    me = f"{emulator.api_base}/users/@me"

    assert await fetch(http, "GET", me) == (401, {"code": 0, "message": "401: Unauthorized"})
    status, _ = await fetch(http, "GET", me, token=emulator.bot_token + "x")
    assert status == 401
    async with http.get(me, headers={"Authorization": emulator.bot_token}) as reply:
        assert reply.status == 401  # the "Bot " prefix is part of the credential

    status, user = await fetch(http, "GET", me, token=emulator.bot_token)
    assert status == 200
    assert user["id"] == emulator.application_id
    assert user["bot"] is True


async def test_rest_client_with_a_wrong_token_gets_unauthorized(emulator: Emulator) -> None:
    client = RestClient(api_base=emulator.api_base, token="not-the-token", clock=SystemClock())
    try:
        with pytest.raises(Unauthorized) as caught:
            await client.create_message(emulator.channel_ids[0], {"content": "x"})
    finally:
        await client.close()
    assert caught.value.status == 401
    assert emulator.messages(emulator.channel_ids[0]) == []


async def test_unknown_route_wrong_method_and_invalid_json(
    emulator: Emulator, http: aiohttp.ClientSession
) -> None:
    token = emulator.bot_token
    status, body = await fetch(http, "GET", f"{emulator.api_base}/no/such/route", token=token)
    assert (status, body) == (404, {"code": 0, "message": "404: Not Found"})

    status, body = await fetch(http, "PUT", f"{emulator.api_base}/users/@me", token=token)
    assert status == 405
    assert body["code"] == 0

    url = f"{emulator.api_base}/channels/{emulator.channel_ids[0]}/messages"
    status, body = await fetch(http, "POST", url, token=token, data=b'{"content": "x"')
    assert status == 400
    assert body["code"] == 50109
    assert emulator.messages(emulator.channel_ids[0]) == []


async def test_message_create_get_edit_list_delete(
    emulator: Emulator, rest: RestClient, http: aiohttp.ClientSession
) -> None:
    channel = emulator.channel_ids[1]

    first = await rest.create_message(channel, {"content": "first"})
    second = await rest.create_message(channel, {"content": "second"})
    assert first.channel_id == channel
    assert int(second.id) > int(first.id)

    got = await rest.get_message(channel, first.id)
    assert (got.id, got.content) == (first.id, "first")

    edited = await rest.edit_message(channel, first.id, {"content": "first, edited"})
    assert edited.content == "first, edited"
    assert emulator.message(channel, first.id)["content"] == "first, edited"  # type: ignore[index]
    assert emulator.message(channel, first.id)["edited_timestamp"] is not None  # type: ignore[index]

    url = f"{emulator.api_base}/channels/{channel}/messages"
    status, listed = await fetch(http, "GET", url, token=emulator.bot_token)
    assert status == 200
    assert [m["content"] for m in listed] == ["second", "first, edited"]  # newest first
    _, limited = await fetch(http, "GET", url + "?limit=1", token=emulator.bot_token)
    assert [m["id"] for m in limited] == [second.id]

    await rest.delete_message(channel, first.id)
    with pytest.raises(NotFound) as caught:
        await rest.get_message(channel, first.id)
    assert caught.value.code == 10008
    assert [m["id"] for m in emulator.messages(channel)] == [second.id]

    stats = emulator.statistics()
    assert (stats.messages_created, stats.messages_edited, stats.messages_deleted) == (2, 1, 1)


async def test_unknown_channel_is_10003(rest: RestClient) -> None:
    with pytest.raises(NotFound) as caught:
        await rest.create_message("123", {"content": "x"})
    assert caught.value.code == 10003


async def test_content_over_2000_characters_is_a_field_error(
    emulator: Emulator, rest: RestClient
) -> None:
    channel = emulator.channel_ids[0]
    with pytest.raises(BadRequest) as caught:
        await rest.create_message(channel, {"content": "x" * 2001})

    assert caught.value.code == 50035
    assert caught.value.errors["content"]["_errors"][0]["code"] == "BASE_TYPE_MAX_LENGTH"
    assert emulator.messages(channel) == []

    exactly = await rest.create_message(channel, {"content": "x" * 2000})
    assert len(exactly.content) == 2000
    with pytest.raises(BadRequest) as caught:
        await rest.edit_message(channel, exactly.id, {"content": "y" * 2001})
    assert caught.value.errors["content"]["_errors"][0]["code"] == "BASE_TYPE_MAX_LENGTH"
    with pytest.raises(BadRequest) as caught:
        await rest.create_message(channel, {"content": ""})
    assert caught.value.code == 50006


# --- delivery and the initial response --------------------------------------------------


async def test_delivery_is_signed_with_the_applications_key(
    emulator: Emulator, bot: Endpoint, clock: ManualClock
) -> None:
    bot.answer = reply_with({"type": 4, "data": {"content": "pong"}})

    interaction = await emulator.send_command("ping", options=[{"name": "n", "value": 1}])

    assert bot.rejected == 0
    assert len(bot.received) == 1
    payload = bot.received[0]
    assert payload["id"] == interaction.id
    assert payload["token"] == interaction.token
    assert len(interaction.token) > 100
    assert payload["type"] == 2
    assert payload["application_id"] == emulator.application_id
    assert payload["data"]["name"] == "ping"
    assert payload["data"]["options"] == [{"name": "n", "value": 1}]
    assert payload["member"]["user"]["id"] == emulator.user_ids[0]
    assert bot.timestamps == [str(int(clock.time()))]

    # A forged signature is refused by the same check, so the check above means something.
    forged = emulator.sign(b'{"type": 1}')
    forged["X-Signature-Ed25519"] = "00" * 64
    status, _ = await emulator.post_signed(b'{"type": 1}', headers=forged)
    assert status == 401
    assert bot.rejected == 1


async def test_http_reply_type_4_creates_the_original_message(
    emulator: Emulator, bot: Endpoint
) -> None:
    bot.answer = reply_with({"type": 4, "data": {"content": "pong"}})

    interaction = await emulator.send_command("ping")

    assert interaction.outcome is InteractionOutcome.ACKNOWLEDGED
    assert (interaction.ack_type, interaction.ack_via) == (4, "http")
    assert interaction.delivery_status == 200
    assert interaction.original_message_id is not None
    message = emulator.message(interaction.channel_id, interaction.original_message_id)
    assert message is not None
    assert message["content"] == "pong"
    assert message["author"]["id"] == emulator.application_id
    assert message["interaction_metadata"]["id"] == interaction.id
    assert message["flags"] & (EPHEMERAL | LOADING) == 0
    stats = emulator.statistics()
    assert (stats.delivered, stats.acknowledged_in_time, stats.failed) == (1, 1, 0)
    assert stats.ack_types == {4: 1}


async def test_callback_route_acknowledges_and_a_second_callback_is_40060(
    emulator: Emulator, bot: Endpoint, rest: RestClient
) -> None:
    bot.answer = reply_with(202)
    interaction = await emulator.send_command("ping")
    assert interaction.outcome is InteractionOutcome.PENDING
    assert interaction.delivery_status == 202

    answer = await rest.create_interaction_response(
        interaction.id,
        interaction.token,
        {"type": 4, "data": {"content": "via callback"}},
        with_response=True,
    )

    assert answer is not None
    assert answer["interaction"]["id"] == interaction.id
    assert answer["resource"]["type"] == 4
    assert answer["resource"]["message"]["content"] == "via callback"
    assert outcome(emulator, interaction.id) is InteractionOutcome.ACKNOWLEDGED
    assert interaction.ack_via == "callback"

    with pytest.raises(BadRequest) as caught:
        await rest.create_interaction_response(interaction.id, interaction.token, {"type": 5})
    assert caught.value.code == 40060
    stats = emulator.statistics()
    assert stats.double_acknowledged == 1
    assert stats.acknowledged_in_time == 1
    assert interaction.double_acknowledged == 1
    assert [m["content"] for m in emulator.messages(interaction.channel_id)] == ["via callback"]


async def test_callback_with_a_wrong_token_is_unknown_interaction(
    emulator: Emulator, bot: Endpoint, rest: RestClient
) -> None:
    interaction = await emulator.send_command("ping")
    with pytest.raises(NotFound) as caught:
        await rest.create_interaction_response(interaction.id, "x" * 150, {"type": 5})
    assert caught.value.code == 10062
    assert interaction.outcome is InteractionOutcome.PENDING


async def test_no_answer_within_3_seconds_fails_and_a_late_callback_is_10062(
    emulator: Emulator, bot: Endpoint, rest: RestClient, clock: ManualClock
) -> None:
    bot.answer = reply_with(202)
    interaction = await emulator.send_command("slow")
    await clock.advance(2.9)
    assert outcome(emulator, interaction.id) is InteractionOutcome.PENDING

    await clock.advance(0.2)  # 3.1 s after the event

    assert outcome(emulator, interaction.id) is InteractionOutcome.FAILED
    assert emulator.interactions[0].failed is True
    with pytest.raises(NotFound) as caught:
        await rest.create_interaction_response(interaction.id, interaction.token, {"type": 5})
    assert caught.value.code == 10062
    with pytest.raises(NotFound) as caught:
        await rest.create_followup(emulator.application_id, interaction.token, {"content": "x"})
    assert caught.value.code == 10062
    stats = emulator.statistics()
    assert stats.failed == 1
    assert stats.late_acknowledgements == 1
    assert stats.acknowledged_in_time == 0
    assert emulator.messages(interaction.channel_id) == []


async def test_endpoint_error_status_fails_the_interaction_at_once(
    emulator: Emulator, bot: Endpoint
) -> None:
    bot.answer = reply_with(500)
    interaction = await emulator.send_command("ping")
    assert interaction.outcome is InteractionOutcome.FAILED
    assert interaction.delivery_status == 500
    assert emulator.statistics().failed == 1


async def test_invalid_http_reply_is_refused_and_the_interaction_fails(
    emulator: Emulator, bot: Endpoint
) -> None:
    bot.answer = reply_with({"type": 4, "data": {"content": "x" * 2001}})
    interaction = await emulator.send_command("ping")
    assert interaction.outcome is InteractionOutcome.FAILED
    assert interaction.delivery_error is not None
    assert "50035" in interaction.delivery_error
    assert emulator.messages(interaction.channel_id) == []


async def test_http_reply_later_than_3_seconds_fails(
    emulator: Emulator, bot: Endpoint, clock: ManualClock
) -> None:
    async def stall(payload: JSON) -> None:
        await clock.advance(3.5)  # the handler takes 3.5 s on Discord's clock

    bot.before_reply = stall
    bot.answer = reply_with({"type": 4, "data": {"content": "too late"}})

    interaction = await emulator.send_command("slow")

    assert interaction.outcome is InteractionOutcome.FAILED
    assert interaction.delivery_error is not None
    assert "10062" in interaction.delivery_error
    assert emulator.messages(interaction.channel_id) == []
    stats = emulator.statistics()
    assert (stats.failed, stats.late_acknowledgements, stats.acknowledged_in_time) == (1, 1, 0)


async def test_reply_body_after_a_callback_is_40060_and_counted(
    emulator: Emulator, bot: Endpoint, rest: RestClient
) -> None:
    async def callback_first(payload: JSON) -> None:
        body = {"type": 4, "data": {"content": "from the callback"}}
        await rest.create_interaction_response(payload["id"], payload["token"], body)

    bot.before_reply = callback_first
    bot.answer = reply_with({"type": 4, "data": {"content": "from the reply"}})

    interaction = await emulator.send_command("ping")

    assert interaction.outcome is InteractionOutcome.ACKNOWLEDGED
    assert interaction.ack_via == "callback"
    assert interaction.delivery_error is not None
    assert "40060" in interaction.delivery_error
    assert emulator.statistics().double_acknowledged == 1
    contents = [m["content"] for m in emulator.messages(interaction.channel_id)]
    assert contents == ["from the callback"]


async def test_followup_racing_the_http_reply_waits_for_it(
    emulator: Emulator, bot: Endpoint, rest: RestClient
) -> None:
    followups: list[asyncio.Task[Any]] = []

    async def followup_early(payload: JSON) -> None:
        body = {"content": "follow-up"}
        call = rest.create_followup(payload["application_id"], payload["token"], body)
        followups.append(asyncio.ensure_future(call))
        await asyncio.sleep(0.05)  # let it reach the emulator before the reply does

    bot.before_reply = followup_early
    bot.answer = reply_with({"type": 4, "data": {"content": "original"}})

    interaction = await emulator.send_command("ping")
    message = await followups[0]

    assert message.content == "follow-up"
    assert interaction.followup_ids == [message.id]
    contents = [m["content"] for m in emulator.messages(interaction.channel_id)]
    assert contents == ["original", "follow-up"]


async def test_callback_type_not_allowed_for_a_command_is_40043(
    emulator: Emulator, bot: Endpoint, rest: RestClient
) -> None:
    interaction = await emulator.send_command("ping")
    with pytest.raises(BadRequest) as caught:
        await rest.create_interaction_response(interaction.id, interaction.token, {"type": 7})
    assert caught.value.code == 40043
    assert outcome(emulator, interaction.id) is InteractionOutcome.PENDING


# --- the token: follow-ups and @original ------------------------------------------------


async def test_followups_work_for_15_minutes_then_50027(
    emulator: Emulator, bot: Endpoint, rest: RestClient, clock: ManualClock
) -> None:
    bot.answer = reply_with({"type": 4, "data": {"content": "first"}})
    interaction = await emulator.send_command("ping")
    app, token = emulator.application_id, interaction.token

    early = await rest.create_followup(app, token, {"content": "follow-up 1"})
    await clock.advance(899)
    late = await rest.create_followup(app, token, {"content": "follow-up 2"})
    assert (early.content, late.content) == ("follow-up 1", "follow-up 2")
    assert interaction.followup_ids == [early.id, late.id]
    fetched = await rest.get_webhook_message(app, token, early.id)
    assert fetched.content == "follow-up 1"

    await clock.advance(2)  # 901 s after the event

    with pytest.raises(Unauthorized) as caught:
        await rest.create_followup(app, token, {"content": "too late"})
    assert caught.value.code == 50027
    # The client now knows the token is dead and does not send with it again...
    with pytest.raises(Unauthorized) as caught:
        await rest.edit_webhook_message(app, token, {"content": "too late"})
    assert caught.value.code == 50027
    assert "not sent" in caught.value.message
    assert emulator.statistics().expired_token_calls == 1
    # ...while a client that never learnt it gets the emulator's answer on every route.
    fresh = RestClient(api_base=emulator.api_base, token=emulator.bot_token, clock=clock)
    try:
        with pytest.raises(Unauthorized) as caught:
            await fresh.edit_webhook_message(app, token, {"content": "too late"})
    finally:
        await fresh.close()
    assert caught.value.code == 50027
    stats = emulator.statistics()
    assert stats.followups == 2
    assert stats.expired_token_calls == 2
    contents = [m["content"] for m in emulator.messages(interaction.channel_id)]
    assert contents == ["first", "follow-up 1", "follow-up 2"]


async def test_deferred_message_is_loading_until_original_is_edited(
    emulator: Emulator, bot: Endpoint, rest: RestClient
) -> None:
    bot.answer = reply_with({"type": 5})
    interaction = await emulator.send_command("slow")
    assert interaction.ack_type == 5
    assert interaction.original_message_id is not None
    thinking = emulator.message(interaction.channel_id, interaction.original_message_id)
    assert thinking is not None
    assert thinking["flags"] & LOADING == LOADING
    assert thinking["content"] == ""

    edited = await rest.edit_webhook_message(
        emulator.application_id, interaction.token, {"content": "done"}
    )

    assert edited.id == interaction.original_message_id
    assert edited.content == "done"
    assert edited.flags & LOADING == 0
    stored = emulator.message(interaction.channel_id, interaction.original_message_id)
    assert stored is not None
    assert (stored["content"], stored["flags"] & LOADING) == ("done", 0)
    original = await rest.get_webhook_message(emulator.application_id, interaction.token)
    assert original.content == "done"


async def test_ephemeral_answers_are_seen_only_by_the_user(
    emulator: Emulator, bot: Endpoint, rest: RestClient
) -> None:
    user = emulator.user_ids[3]
    bot.answer = reply_with({"type": 4, "data": {"content": "secret", "flags": EPHEMERAL}})
    interaction = await emulator.send_command("whisper", user_id=user)
    await rest.create_followup(
        emulator.application_id, interaction.token, {"content": "also secret", "flags": 64}
    )

    assert interaction.ephemeral is True
    assert emulator.messages(interaction.channel_id) == []
    private = emulator.ephemeral_messages(user)
    assert [(m["content"], m["flags"] & EPHEMERAL) for m in private] == [
        ("secret", EPHEMERAL),
        ("also secret", EPHEMERAL),
    ]
    assert emulator.ephemeral_messages(emulator.user_ids[0]) == []
    original = await rest.get_webhook_message(emulator.application_id, interaction.token)
    assert original.content == "secret"


# --- components -------------------------------------------------------------------------


def button_row(custom_id: str) -> list[JSON]:
    button = {"type": 2, "style": 1, "label": "Go", "custom_id": custom_id}
    return [{"type": 1, "components": [button]}]


async def test_click_button_needs_a_message_with_that_button(
    emulator: Emulator, bot: Endpoint, rest: RestClient
) -> None:
    channel = emulator.channel_ids[0]
    menu = await rest.create_message(channel, {"content": "menu", "components": button_row("go")})

    with pytest.raises(ValueError, match="no component 'stop'"):
        await emulator.click_button("stop", message_id=menu.id)
    with pytest.raises(ValueError, match="has no component"):
        await emulator.pick_select("go", ["a"], message_id=menu.id)  # a button, not a select
    with pytest.raises(ValueError, match="no message"):
        await emulator.click_button("go", message_id="1")
    assert bot.received == []  # nothing was delivered

    bot.answer = reply_with({"type": 6})
    interaction = await emulator.click_button("go", message_id=menu.id)
    assert bot.received[0]["type"] == 3
    assert bot.received[0]["data"] == {"custom_id": "go", "component_type": 2}
    assert bot.received[0]["message"]["id"] == menu.id
    assert interaction.outcome is InteractionOutcome.ACKNOWLEDGED


async def test_update_message_edits_the_components_message(
    emulator: Emulator, bot: Endpoint, rest: RestClient
) -> None:
    channel = emulator.channel_ids[2]
    menu = await rest.create_message(channel, {"content": "menu", "components": button_row("go")})
    bot.answer = reply_with({"type": 7, "data": {"content": "updated", "components": []}})

    interaction = await emulator.click_button("go", message_id=menu.id)

    assert interaction.ack_type == 7
    assert interaction.original_message_id == menu.id
    stored = emulator.message(channel, menu.id)
    assert stored is not None
    assert (stored["content"], stored["components"]) == ("updated", [])
    assert [m["id"] for m in emulator.messages(channel)] == [menu.id]  # no new message
    assert emulator.statistics().messages_edited == 1


# --- the interactions endpoint check ------------------------------------------------------


async def test_endpoint_that_pongs_and_refuses_bad_signatures_is_accepted(
    emulator: Emulator, http: aiohttp.ClientSession
) -> None:
    endpoint = Endpoint(emulator.public_key)
    await endpoint.start()
    try:
        status, app = await fetch(
            http,
            "PATCH",
            f"{emulator.api_base}/applications/@me",
            token=emulator.bot_token,
            json={"interactions_endpoint_url": endpoint.url},
        )
    finally:
        await endpoint.close()

    assert status == 200
    assert app["interactions_endpoint_url"] == endpoint.url
    assert app["verify_key"] == emulator.public_key
    assert emulator.world.interactions_endpoint_url == endpoint.url
    assert [p["type"] for p in endpoint.received] == [1]  # the good PING
    assert endpoint.rejected == 1  # the forged one


async def test_endpoint_that_accepts_bad_signatures_is_refused(
    emulator: Emulator, http: aiohttp.ClientSession
) -> None:
    lenient = Endpoint(emulator.public_key, check_signatures=False)
    await lenient.start()
    try:
        status, body = await fetch(
            http,
            "PATCH",
            f"{emulator.api_base}/applications/@me",
            token=emulator.bot_token,
            json={"interactions_endpoint_url": lenient.url},
        )
    finally:
        await lenient.close()

    assert status == 400
    assert body["code"] == 50035
    problem = body["errors"]["interactions_endpoint_url"]["_errors"][0]
    assert problem["code"] == "APPLICATION_INTERACTIONS_ENDPOINT"
    assert "bad signature" in problem["message"]
    assert len(lenient.received) == 2  # the PING and the forged PING both got through
    assert emulator.world.interactions_endpoint_url == ""


async def test_endpoint_that_cannot_be_reached_is_refused(
    emulator: Emulator, http: aiohttp.ClientSession
) -> None:
    endpoint = Endpoint(emulator.public_key)
    await endpoint.start()
    url = endpoint.url
    await endpoint.close()  # nothing listens there any more

    status, body = await fetch(
        http,
        "PATCH",
        f"{emulator.api_base}/applications/@me",
        token=emulator.bot_token,
        json={"interactions_endpoint_url": url},
    )
    assert status == 400
    assert body["code"] == 50035
    assert emulator.world.interactions_endpoint_url == ""


# --- the REST client against the emulator's rate limits ---------------------------------


async def wait_for_sleeper(clock: ManualClock) -> None:
    """Wait (in real time) until something sleeps on ``clock``."""
    for _ in range(200):
        if clock.pending_sleepers:
            return
        await asyncio.sleep(0.005)
    raise AssertionError("nothing went to sleep on the manual clock")


async def test_rest_client_waits_out_a_bucket_429_and_retries(
    emulator: Emulator, clock: ManualClock
) -> None:
    client = RestClient(api_base=emulator.api_base, token=emulator.bot_token, clock=clock)
    channel = emulator.channel_ids[0]
    try:
        for index in range(5):
            await client.create_message(channel, {"content": f"m{index}"})
        sixth = asyncio.ensure_future(client.create_message(channel, {"content": "m5"}))
        await wait_for_sleeper(clock)
        assert not sixth.done()
        await clock.advance(5.0)
        message = await sixth
    finally:
        await client.close()

    assert message.content == "m5"
    assert len(emulator.messages(channel)) == 6
    stats = client.statistics()
    assert (stats.rate_limited, stats.retries) == (1, 1)
    assert stats.by_status == {200: 6, 429: 1}
    assert emulator.statistics().rate_limited["user"] == 1


async def test_rest_client_does_not_retry_the_emulators_cloudflare_block(
    clock: ManualClock,
) -> None:
    limits = RateLimitSettings(invalid_limit=2)
    async with Emulator(clock=clock, members=5, rate_limits=limits) as emulator:
        wrong = RestClient(api_base=emulator.api_base, token="wrong", clock=clock)
        other = RestClient(api_base=emulator.api_base, token="also wrong", clock=clock)
        right = RestClient(api_base=emulator.api_base, token=emulator.bot_token, clock=clock)
        try:
            for client in (wrong, other):
                with pytest.raises(Unauthorized):
                    await client.create_message(emulator.channel_ids[0], {"content": "x"})
            # A dead token is not tried again: refused without reaching the emulator.
            with pytest.raises(Unauthorized) as refused:
                await wrong.create_message(emulator.channel_ids[0], {"content": "x"})
            assert "not sent" in refused.value.message
            assert wrong.statistics().requests == 1
            with pytest.raises(RateLimited) as caught:
                await right.create_message(emulator.channel_ids[0], {"content": "x"})
        finally:
            await wrong.close()
            await other.close()
            await right.close()

        assert caught.value.cloudflare is True
        assert caught.value.code == 0
        assert right.statistics().requests == 1
        assert clock.pending_sleepers == 0
        assert emulator.statistics().rate_limited["cloudflare"] == 1
