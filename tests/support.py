"""Shared test helpers: payload factories, a recording sink, a recording REST transport,
and bots served to the emulator."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

import msgspec

from steadybot import Bot
from steadybot.clock import Clock, ManualClock
from steadybot.config import Settings
from steadybot.interactions.payload import AnyInteraction, decode_interaction
from steadybot.interactions.responder import Responder
from steadybot.interactions.sinks import InitialResponseRejected
from steadybot.interactions.statistics import RuntimeCounters
from steadybot.rest import MockTransport, RestClient, TransportRequest, TransportResponse
from steadybot.serving import serve_in_process

if TYPE_CHECKING:
    from steadybot.crowd import CrowdReport
    from steadybot.emulator import Emulator

APP_ID = "100000000000000001"
TOKEN = "T" * 200  # interaction tokens are long; this one must never show up in logs
BOT_TOKEN = "bot-token-secret-value"
CHANNEL_ID = "300000000000000003"
USER_ID = "400000000000000004"
MESSAGE_ID = "500000000000000005"
PUBLIC_KEY_HEX = "0" * 64

T = TypeVar("T")

_ids = itertools.count(600000000000000000)


def settings(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "application_id": APP_ID,
        "public_key": PUBLIC_KEY_HEX,
        "token": BOT_TOKEN,
        "api_base": "http://discord.test/api/v10",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def payload(kind: int, data: dict[str, object] | None = None, **extra: object) -> AnyInteraction:
    """An interaction of type ``kind``, decoded through the real decoder."""
    body: dict[str, object] = {
        "id": str(next(_ids)),
        "application_id": APP_ID,
        "type": kind,
        "token": TOKEN,
        "version": 1,
        "channel_id": CHANNEL_ID,
        "guild_id": "200000000000000002",
        "member": {"user": {"id": USER_ID, "username": "alice"}, "roles": []},
        "locale": "en-US",
        "app_permissions": "2048",
    }
    if data is not None:
        body["data"] = data
    body.update(extra)
    return decode_interaction(msgspec.json.encode(body))


def command(name: str = "ping", options: list[dict[str, object]] | None = None) -> AnyInteraction:
    return payload(2, {"id": "1", "name": name, "type": 1, "options": options or []})


def component(custom_id: str = "button", values: list[str] | None = None) -> AnyInteraction:
    data: dict[str, object] = {"custom_id": custom_id, "component_type": 2}
    if values is not None:
        data = {"custom_id": custom_id, "component_type": 3, "values": values}
    message = {"id": MESSAGE_ID, "channel_id": CHANNEL_ID, "content": "menu", "flags": 0}
    return payload(3, data, message=message)


def modal_submit(custom_id: str = "form", fields: dict[str, str] | None = None) -> AnyInteraction:
    rows = [
        {"type": 1, "components": [{"type": 4, "custom_id": key, "value": value}]}
        for key, value in (fields or {"name": "Alice"}).items()
    ]
    return payload(5, {"custom_id": custom_id, "components": rows})


def autocomplete(name: str = "search", focused: str = "query") -> AnyInteraction:
    option = {"name": focused, "type": 3, "value": "ab", "focused": True}
    return payload(4, {"id": "1", "name": name, "type": 1, "options": [option]})


class RecordingSink:
    """An initial-response sink that records what it got; can refuse like a closed door."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, object]] = []
        self.sent_at: list[float] = []
        self.reject = False
        self.accepted = False
        self.clock: ManualClock | None = None

    async def send(self, body: dict[str, object]) -> None:
        if self.reject:
            raise InitialResponseRejected("closed")
        self.bodies.append(body)
        self.accepted = True
        if self.clock is not None:
            self.sent_at.append(self.clock.monotonic())

    def expire(self) -> None:
        return None

    @property
    def types(self) -> list[object]:
        return [body["type"] for body in self.bodies]


@dataclass
class Call:
    method: str
    path: str
    json: object
    headers: dict[str, str]


@dataclass
class FakeDiscord:
    """A REST transport answering like Discord for the routes the responder uses.

    ``fail`` maps (method, path suffix) to (status, code) answers given instead.
    """

    calls: list[Call] = field(default_factory=list)
    fail: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)

    def handler(self, request: TransportRequest) -> TransportResponse:
        path = request.url.split("/api/v10", 1)[1].split("?", 1)[0]
        body = msgspec.json.decode(request.body) if request.body else None
        self.calls.append(Call(request.method, path, body, dict(request.headers)))
        for (method, suffix), (status, code) in self.fail.items():
            if request.method == method and path.endswith(suffix):
                error = {"code": code, "message": "failure injected by the test"}
                return TransportResponse(
                    status=status, headers={"via": "1.1 google"}, body=msgspec.json.encode(error)
                )
        if request.method == "DELETE":
            return TransportResponse(status=204, headers={}, body=b"")
        if path == "/users/@me/channels":
            dm = {"id": "700000000000000007", "type": 1}
            return TransportResponse(status=200, headers={}, body=msgspec.json.encode(dm))
        content = body.get("content", "") if isinstance(body, dict) else ""
        message = {
            "id": str(next(_ids)),
            "channel_id": CHANNEL_ID,
            "content": content,
            "flags": body.get("flags", 0) if isinstance(body, dict) else 0,
        }
        return TransportResponse(status=200, headers={}, body=msgspec.json.encode(message))

    def transport(self) -> MockTransport:
        return MockTransport(self.handler)

    def paths(self, method: str | None = None) -> list[str]:
        return [c.path for c in self.calls if method is None or c.method == method]

    def where(self, predicate: Callable[[Call], bool]) -> list[Call]:
        return [c for c in self.calls if predicate(c)]


@dataclass
class Harness:
    clock: ManualClock
    sink: RecordingSink
    discord: FakeDiscord
    rest: RestClient
    counters: RuntimeCounters
    settings: Settings

    def responder(self, interaction: AnyInteraction, *, ephemeral: bool = False) -> Responder:
        return Responder(
            interaction,
            sink=self.sink,
            rest=self.rest,
            clock=self.clock,
            settings=self.settings,
            counters=self.counters,
            arrived_at=self.clock.monotonic(),
            ephemeral=ephemeral,
        )


def harness(**setting_overrides: object) -> Harness:
    clock = ManualClock()
    sink = RecordingSink()
    sink.clock = clock
    discord = FakeDiscord()
    config = settings(**setting_overrides)
    rest = RestClient.from_settings(config, clock=clock, transport=discord.transport())
    return Harness(clock, sink, discord, rest, RuntimeCounters(), config)


async def drive(clock: ManualClock, awaitable: Awaitable[T], *, step: float = 0.01) -> T:
    """Await ``awaitable`` while real I/O runs, moving ``clock`` whenever something sleeps.

    For tests that talk to the emulator over sockets with rate limits on: time only
    moves while a coroutine waits on the clock, in steps shorter than the rate
    limiter's margin, so a step never looks like more network jitter than it allows.
    """
    task = asyncio.ensure_future(awaitable)
    for _ in range(200_000):
        if task.done():
            break
        await asyncio.sleep(0.001)
        if clock.pending_sleepers:
            await clock.advance(step)
    return await task


# --- bots served to the emulator ---------------------------------------------------------


def emulator_bot(emulator: Emulator, clock: Clock | None = None, **overrides: object) -> Bot:
    """A bot whose settings point at ``emulator``: its application, key, token and API."""
    values: dict[str, object] = {
        "application_id": emulator.application_id,
        "public_key": emulator.public_key,
        "token": emulator.bot_token,
        "api_base": emulator.api_base,
    }
    values.update(overrides)
    return Bot(Settings(**values), clock=clock)  # type: ignore[arg-type]


@asynccontextmanager
async def serving(emulator: Emulator, bot: Bot) -> AsyncIterator[None]:
    """Serve ``bot`` over a real socket (its lifespan runs) as the emulator's endpoint."""
    served = await serve_in_process(bot.asgi())
    emulator.set_interactions_endpoint(served.url)
    try:
        yield
    finally:
        await served.stop()


def assert_checks_pass(report: CrowdReport, *context: object) -> None:
    """Every check of a crowd run passed and no simulated user failed; ``context`` is
    shown beside the failed checks when one did not."""
    failed = {name: check.detail for name, check in report.checks.items() if not check.ok}
    assert not failed, (failed, *context) if context else failed
    assert report.failed == 0
