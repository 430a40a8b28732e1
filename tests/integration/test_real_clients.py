"""Real Discord client libraries, unmodified apart from their base URL, against the emulator.

discord.py and hikari talk to the emulator over sockets on 127.0.0.1 exactly as they
would talk to Discord: they parse its JSON into their own models, read its rate-limit
headers, and must survive its 429s (bucket limits and injected faults) without losing
or duplicating a message. A failure here means the emulator does not look like Discord
to a real client (facts file, "What real clients need from a look-alike server").

The message-create bucket is shrunk to 5 per 0.5 s so a 12-message burst needs three
windows (at least 1 s) instead of 15 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import discord
import discord.http
import hikari
import pytest
from hikari.impl import RESTClientImpl

from steadybot.emulator import Emulator
from steadybot.emulator.faults import FaultRule
from steadybot.emulator.ratelimits import BucketLimit, RateLimitSettings

SEED = 20260611
BURST = 12
WINDOW = 0.5  # seconds; message create is limited to 5 per WINDOW per channel
PER_WINDOW = 5
MIN_BURST_SECONDS = (BURST - 1) // PER_WINDOW * WINDOW  # 12 messages need 3 windows
DEADLINE = 10.0  # real seconds any one burst may take before the test fails
UNKNOWN_MESSAGE = 10008
FAULTY_POSTS = FaultRule(route="/channels/*", method="POST", probability=0.3, status=429)


def fast_limits() -> RateLimitSettings:
    defaults = RateLimitSettings().buckets
    return RateLimitSettings(
        buckets={**defaults, "message-create": BucketLimit(PER_WINDOW, WINDOW)}
    )


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with Emulator(members=5, seed=SEED, rate_limits=fast_limits()) as running:
        yield running


@pytest.fixture
def discord_routes(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    """discord.py builds every REST URL from the class attribute ``Route.BASE``: point it
    at the emulator for this test only (monkeypatch puts the original back)."""
    monkeypatch.setattr(discord.http.Route, "BASE", emulator.api_base)
    return emulator


@pytest.fixture
async def new_discord_http(
    discord_routes: Emulator,
) -> AsyncIterator[Callable[[], discord.http.HTTPClient]]:
    """Makes discord.py REST clients (``HTTPClient``) for the emulator, closed after."""
    loop = asyncio.get_running_loop()
    made: list[discord.http.HTTPClient] = []

    def make() -> discord.http.HTTPClient:
        made.append(discord.http.HTTPClient(loop))
        return made[-1]

    try:
        yield make
    finally:
        for http in made:
            await http.close()


@pytest.fixture
def discord_http(
    new_discord_http: Callable[[], discord.http.HTTPClient],
) -> discord.http.HTTPClient:
    return new_discord_http()


@pytest.fixture
async def new_hikari_rest(
    emulator: Emulator,
) -> AsyncIterator[Callable[[], Awaitable[RESTClientImpl]]]:
    """Makes hikari REST clients for the bot token, each on its own started ``RESTApp``."""
    async with contextlib.AsyncExitStack() as stack:

        async def make() -> RESTClientImpl:
            rest_app = hikari.RESTApp(url=emulator.api_base)
            await rest_app.start()
            stack.push_async_callback(rest_app.close)
            client = rest_app.acquire(emulator.bot_token, hikari.TokenType.BOT)
            return await stack.enter_async_context(client)  # async with ... as client

        yield make


@pytest.fixture
async def hikari_rest(new_hikari_rest: Callable[[], Awaitable[RESTClientImpl]]) -> RESTClientImpl:
    return await new_hikari_rest()


def contents(count: int, label: str) -> list[str]:
    return [f"{label} {index:02d}" for index in range(count)]


async def timed_burst(
    send: Callable[[str], Awaitable[str]], texts: list[str], *, concurrent: bool
) -> tuple[list[str], float]:
    """Send every text (all at once, or one after another); the ids and the seconds taken."""
    started = time.monotonic()
    async with asyncio.timeout(DEADLINE):
        if concurrent:
            ids = list(await asyncio.gather(*(send(text) for text in texts)))
        else:
            ids = [await send(text) for text in texts]
    return ids, time.monotonic() - started


def assert_arrived_once(
    emulator: Emulator, channel_id: str, ids: list[str], texts: list[str]
) -> None:
    """Every text is in the channel exactly once, under the id the client was given."""
    stored = emulator.messages(channel_id)
    assert len(stored) == len(texts)
    assert sorted(m["content"] for m in stored) == sorted(texts)
    assert len(set(ids)) == len(ids)
    by_id = {m["id"]: m["content"] for m in stored}
    assert {ids[index]: text for index, text in enumerate(texts)} == by_id
    for other in emulator.channel_ids:
        if other != channel_id:
            assert emulator.messages(other) == []


async def assert_survives_bucket_429s(
    emulator: Emulator, channel_id: str, send: Callable[[str], Awaitable[str]], texts: list[str]
) -> None:
    """A concurrent burst that the emulator must 429; every 429 costs exactly one retry."""
    before = emulator.statistics()
    ids, seconds = await timed_burst(send, texts, concurrent=True)
    after = emulator.statistics()

    assert_arrived_once(emulator, channel_id, ids, texts)
    assert seconds >= MIN_BURST_SECONDS
    rejected = after.rate_limited["user"] - before.rate_limited["user"]
    assert rejected > 0  # the clients really were answered 429, and recovered
    assert after.rest_requests - before.rest_requests == len(texts) + rejected
    assert after.messages_created == len(texts)


async def assert_survives_injected_429s(
    emulator: Emulator, channel_id: str, send: Callable[[str], Awaitable[str]], texts: list[str]
) -> None:
    """Sequential sends (so the seeded faults repeat exactly) through injected 429s."""
    before = emulator.statistics()
    ids, _ = await timed_burst(send, texts, concurrent=False)
    after = emulator.statistics()

    assert_arrived_once(emulator, channel_id, ids, texts)
    assert after.faults_injected > 0
    assert emulator.faults.injected == {FAULTY_POSTS.label: after.faults_injected}
    rejected = after.rate_limited["user"] - before.rate_limited["user"]
    requests = after.rest_requests - before.rest_requests
    assert requests == len(texts) + after.faults_injected + rejected  # one retry per 429
    assert after.messages_created == len(texts)


# --- discord.py -------------------------------------------------------------------------


def dpy_params(content: str) -> discord.http.MultipartParameters:
    return discord.http.handle_message_parameters(content=content)


async def test_discord_py_http_client_logs_in_and_manages_a_message(
    emulator: Emulator, discord_http: discord.http.HTTPClient
) -> None:
    http = discord_http
    channel_id = emulator.channel_ids[0]

    me = await http.static_login(emulator.bot_token)
    assert me["id"] == emulator.application_id
    assert me["username"] == emulator.world.bot_user["username"]
    assert me["bot"] is True

    sent = await http.send_message(channel_id, params=dpy_params("hello from discord.py"))
    assert sent["content"] == "hello from discord.py"
    assert sent["channel_id"] == channel_id
    assert sent["author"]["id"] == emulator.application_id
    assert sent["edited_timestamp"] is None
    message_id = sent["id"]
    assert isinstance(message_id, str)  # snowflakes travel as strings
    stored = emulator.message(channel_id, message_id)
    assert stored is not None
    assert stored["content"] == "hello from discord.py"

    edited = await http.edit_message(channel_id, message_id, params=dpy_params("edited"))
    assert edited["id"] == message_id
    assert edited["content"] == "edited"
    assert edited["edited_timestamp"] is not None
    fetched = await http.get_message(channel_id, message_id)
    assert (fetched["id"], fetched["content"]) == (message_id, "edited")

    await http.delete_message(channel_id, message_id)
    assert emulator.message(channel_id, message_id) is None
    with pytest.raises(discord.NotFound) as gone:
        await http.get_message(channel_id, message_id)
    assert gone.value.code == UNKNOWN_MESSAGE

    application = await http.application_info()
    assert application["id"] == emulator.application_id
    assert application["verify_key"] == emulator.public_key

    stats = emulator.statistics()
    assert (stats.messages_created, stats.messages_edited, stats.messages_deleted) == (1, 1, 1)


async def test_discord_py_client_login_parses_the_user_and_application(
    discord_routes: Emulator,
) -> None:
    """The high-level ``discord.Client``: login builds ``ClientUser`` and ``AppInfo``."""
    emulator = discord_routes
    client = discord.Client(intents=discord.Intents.none())
    try:
        await client.login(emulator.bot_token)
        assert client.user is not None
        assert str(client.user.id) == emulator.application_id
        assert client.user.bot is True
        assert client.application is not None
        assert str(client.application.id) == emulator.application_id
        assert client.application.verify_key == emulator.public_key

        channel_id = emulator.channel_ids[1]
        channel = client.get_partial_messageable(int(channel_id))
        message = await channel.send("hello from discord.Client")
        assert message.content == "hello from discord.Client"
        assert message.author.id == client.user.id
        message = await message.edit(content="edited by discord.Client")
        assert message.edited_at is not None
        fetched = await channel.fetch_message(message.id)
        assert fetched.content == "edited by discord.Client"
        await fetched.delete()
        assert emulator.message(channel_id, str(message.id)) is None
    finally:
        await client.close()


async def test_discord_py_burst_waits_for_the_message_create_limit(
    emulator: Emulator, discord_http: discord.http.HTTPClient
) -> None:
    """One client reads the bucket headers and waits for the window instead of sending."""
    await discord_http.static_login(emulator.bot_token)
    channel_id = emulator.channel_ids[0]
    texts = contents(BURST, "discord.py burst")

    async def send(text: str) -> str:
        message = await discord_http.send_message(channel_id, params=dpy_params(text))
        assert message["content"] == text
        return str(message["id"])

    ids, seconds = await timed_burst(send, texts, concurrent=True)

    assert_arrived_once(emulator, channel_id, ids, texts)
    assert seconds >= MIN_BURST_SECONDS  # the limit held: no more than 5 per window
    assert emulator.statistics().messages_created == BURST


async def test_discord_py_clients_sharing_a_token_survive_bucket_429s(
    emulator: Emulator, new_discord_http: Callable[[], discord.http.HTTPClient]
) -> None:
    """Two clients on one token cannot see each other's use of the bucket: the emulator
    answers 429 (scope ``user``) and discord.py must retry after ``retry_after``."""
    clients = [new_discord_http(), new_discord_http()]
    for http in clients:
        await http.static_login(emulator.bot_token)
    channel_id = emulator.channel_ids[0]
    texts = contents(BURST, "discord.py shared")
    turn = iter(range(BURST))

    async def send(text: str) -> str:
        http = clients[next(turn) % len(clients)]
        return str((await http.send_message(channel_id, params=dpy_params(text)))["id"])

    await assert_survives_bucket_429s(emulator, channel_id, send, texts)


async def test_discord_py_retries_injected_429s(
    emulator: Emulator, discord_http: discord.http.HTTPClient
) -> None:
    await discord_http.static_login(emulator.bot_token)
    emulator.faults.set_rules([FAULTY_POSTS])
    channel_id = emulator.channel_ids[0]
    texts = contents(BURST, "discord.py fault")

    async def send(text: str) -> str:
        message = await discord_http.send_message(channel_id, params=dpy_params(text))
        return str(message["id"])

    await assert_survives_injected_429s(emulator, channel_id, send, texts)


# --- hikari -----------------------------------------------------------------------------


async def test_hikari_rest_client_manages_a_message(
    emulator: Emulator, hikari_rest: RESTClientImpl
) -> None:
    rest = hikari_rest
    channel_id = emulator.channel_ids[0]

    me = await rest.fetch_my_user()
    assert str(me.id) == emulator.application_id
    assert me.username == emulator.world.bot_user["username"]
    assert me.is_bot is True

    sent = await rest.create_message(int(channel_id), "hello from hikari")
    assert sent.content == "hello from hikari"
    assert str(sent.channel_id) == channel_id
    assert str(sent.author.id) == emulator.application_id
    assert sent.edited_timestamp is None
    stored = emulator.message(channel_id, str(sent.id))
    assert stored is not None
    assert stored["content"] == "hello from hikari"

    edited = await rest.edit_message(int(channel_id), sent.id, "edited")
    assert edited.id == sent.id
    assert edited.content == "edited"
    assert edited.edited_timestamp is not None
    fetched = await rest.fetch_message(int(channel_id), sent.id)
    assert (fetched.id, fetched.content) == (sent.id, "edited")

    await rest.delete_message(int(channel_id), sent.id)
    assert emulator.message(channel_id, str(sent.id)) is None
    with pytest.raises(hikari.NotFoundError) as gone:
        await rest.fetch_message(int(channel_id), sent.id)
    assert gone.value.code == UNKNOWN_MESSAGE

    application = await rest.fetch_application()
    assert str(application.id) == emulator.application_id
    assert application.public_key == bytes.fromhex(emulator.public_key)

    stats = emulator.statistics()
    assert (stats.messages_created, stats.messages_edited, stats.messages_deleted) == (1, 1, 1)


async def test_hikari_burst_waits_for_the_message_create_limit(
    emulator: Emulator, hikari_rest: RESTClientImpl
) -> None:
    channel_id = emulator.channel_ids[0]
    texts = contents(BURST, "hikari burst")

    async def send(text: str) -> str:
        message = await hikari_rest.create_message(int(channel_id), text)
        assert message.content == text
        return str(message.id)

    ids, seconds = await timed_burst(send, texts, concurrent=True)

    assert_arrived_once(emulator, channel_id, ids, texts)
    assert seconds >= MIN_BURST_SECONDS
    assert emulator.statistics().messages_created == BURST


async def test_hikari_clients_sharing_a_token_survive_bucket_429s(
    emulator: Emulator, new_hikari_rest: Callable[[], Awaitable[RESTClientImpl]]
) -> None:
    clients = [await new_hikari_rest(), await new_hikari_rest()]
    channel_id = emulator.channel_ids[0]
    texts = contents(BURST, "hikari shared")
    turn = iter(range(BURST))

    async def send(text: str) -> str:
        rest = clients[next(turn) % len(clients)]
        return str((await rest.create_message(int(channel_id), text)).id)

    await assert_survives_bucket_429s(emulator, channel_id, send, texts)


async def test_hikari_retries_injected_429s(
    emulator: Emulator, hikari_rest: RESTClientImpl
) -> None:
    emulator.faults.set_rules([FAULTY_POSTS])
    channel_id = emulator.channel_ids[0]
    texts = contents(BURST, "hikari fault")

    async def send(text: str) -> str:
        return str((await hikari_rest.create_message(int(channel_id), text)).id)

    await assert_survives_injected_429s(emulator, channel_id, send, texts)
