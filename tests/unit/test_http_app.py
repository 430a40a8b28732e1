"""The ASGI front door: 401/400/404/405/503 paths, PING, the reply body, lifespan."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import msgspec
import pytest
from nacl.signing import SigningKey
from support import APP_ID, TOKEN, FakeDiscord, settings

from steadybot import Bot, Interaction, ManualClock

KEY = SigningKey(b"s" * 32)


def make_bot(**overrides: object) -> tuple[Bot, ManualClock]:
    clock = ManualClock()
    config = settings(public_key=KEY.verify_key.encode().hex(), **overrides)
    bot = Bot(config, clock=clock, transport=FakeDiscord().transport())

    @bot.command("ping")
    async def ping(ix: Interaction) -> None:
        await ix.respond("pong")

    @bot.command("slow")
    async def slow(ix: Interaction) -> None:
        await bot.clock.sleep(10)
        await ix.respond("done")

    return bot, clock


def interaction_body(kind: int = 2, name: str = "ping") -> bytes:
    body: dict[str, object] = {"type": kind, "id": "1", "application_id": APP_ID, "token": TOKEN}
    if kind == 2:
        body["data"] = {"id": "9", "name": name}
        body["channel_id"] = "5"
    return msgspec.json.encode(body)


async def call(
    bot: Bot,
    body: bytes,
    *,
    method: str = "POST",
    path: str = "/interactions",
    headers: dict[str, str] | None = None,
    chunks: int = 1,
    sent: list[dict[str, Any]] | None = None,
) -> tuple[int, Any]:
    """Run one request through the ASGI app; the body may arrive in several chunks."""
    size = max(1, len(body) // chunks)
    parts = [body[i : i + size] for i in range(0, len(body), size)] or [b""]
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": part, "more_body": i < len(parts) - 1}
        for i, part in enumerate(parts)
    ]
    sent = [] if sent is None else sent

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    raw_headers = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    scope = {"type": "http", "method": method, "path": path, "headers": raw_headers}
    await bot.asgi()(scope, receive, send)
    status = sent[0]["status"]
    payload = b"".join(m.get("body", b"") for m in sent[1:])
    return status, msgspec.json.decode(payload) if payload else None


def signed(body: bytes, clock: ManualClock, *, age: float = 0) -> dict[str, str]:
    ts = str(int(clock.time() - age))
    return {
        "X-Signature-Ed25519": KEY.sign(ts.encode() + body).signature.hex(),
        "X-Signature-Timestamp": ts,
    }


async def test_ping_gets_pong() -> None:
    bot, clock = make_bot()
    body = interaction_body(kind=1)
    assert await call(bot, body, headers=signed(body, clock)) == (200, {"type": 1})


async def test_command_answer_is_the_http_reply() -> None:
    bot, clock = make_bot()
    body = interaction_body()
    status, reply = await call(bot, body, headers=signed(body, clock), chunks=3)
    assert (status, reply) == (200, {"type": 4, "data": {"content": "pong"}})


async def test_slow_command_replies_with_the_defer_and_keeps_working() -> None:
    bot, clock = make_bot()
    body = interaction_body(name="slow")
    sent: list[dict[str, Any]] = []
    request = asyncio.create_task(call(bot, body, headers=signed(body, clock), sent=sent))
    await clock.advance(bot.settings.defer_after)
    assert sent[0]["status"] == 200
    assert msgspec.json.decode(sent[1]["body"]) == {"type": 5}
    # The reply is out; the handler goes on in the request's task, tracked by the bot.
    assert not request.done()
    assert bot.in_flight == 1
    await clock.advance(10)
    assert await request == (200, {"type": 5})
    assert bot.in_flight == 0


async def test_no_answer_by_the_deadline_is_a_500_and_the_handler_goes_on() -> None:
    bot, clock = make_bot()

    @bot.command("stubborn", defer="never")
    async def stubborn(ix: Interaction) -> None:
        await bot.clock.sleep(5)
        await ix.respond("late")

    body = interaction_body(name="stubborn")
    sent: list[dict[str, Any]] = []
    request = asyncio.create_task(call(bot, body, headers=signed(body, clock), sent=sent))
    await clock.advance(3)
    assert sent[0]["status"] == 500
    assert not request.done()
    await clock.advance(3)
    status, _ = await request
    assert status == 500
    assert len([m for m in sent if m["type"] == "http.response.start"]) == 1
    assert bot.statistics().missed_deadline == 1
    assert bot.statistics().fallbacks_delivered == 1


@pytest.mark.parametrize("case", ["no-headers", "bad-signature", "stale", "future", "tampered"])
async def test_signature_failures_are_401(case: str) -> None:
    bot, clock = make_bot()
    body = interaction_body(kind=1)
    headers = signed(body, clock)
    if case == "no-headers":
        headers = {}
    elif case == "bad-signature":
        headers["X-Signature-Ed25519"] = "00" * 64
    elif case == "stale":
        headers = signed(body, clock, age=60)
    elif case == "future":
        headers = signed(body, clock, age=-60)
    elif case == "tampered":
        body = body.replace(b'"type":1', b'"type":2')
    status, reply = await call(bot, body, headers=headers)
    assert status == 401
    assert reply == {"error": "invalid request signature"}


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{oops", "invalid interaction payload"),
        (b'{"type": 2, "id": 1, "application_id": "1", "token": "t"}', "$.id"),
        (b'{"type": 42, "id": "1", "application_id": "1", "token": "t"}', "$.type"),
    ],
)
async def test_malformed_bodies_are_400_with_the_reason(body: bytes, fragment: str) -> None:
    bot, clock = make_bot()
    status, reply = await call(bot, body, headers=signed(body, clock))
    assert status == 400
    assert fragment in reply["error"]
    assert "Traceback" not in reply["error"]


async def test_oversized_bodies_are_400_before_verification() -> None:
    bot, clock = make_bot(max_body_bytes=2048)
    body = b'{"type": 1, "pad": "' + b"x" * 4096 + b'"}'
    declared = {**signed(body, clock), "Content-Length": str(len(body))}
    assert await call(bot, body, headers=declared) == (400, {"error": "body too large"})
    # Without a Content-Length (chunked), the limit holds while reading.
    assert await call(bot, body, headers=signed(body, clock), chunks=4) == (
        400,
        {"error": "body too large"},
    )
    # ... and for a body that arrives in one message (the path that skips the loop).
    assert await call(bot, body, headers=signed(body, clock)) == (
        400,
        {"error": "body too large"},
    )


async def test_unknown_paths_and_methods() -> None:
    bot, _ = make_bot()
    assert (await call(bot, b"", path="/nope"))[0] == 404
    assert (await call(bot, b"", method="GET"))[0] == 405
    status, health = await call(bot, b"", method="GET", path="/health")
    assert status == 200
    assert health["status"] == "healthy"
    assert health["reasons"] == []


async def test_shutting_down_refuses_new_work_but_answers_ping() -> None:
    bot, clock = make_bot()
    await bot.close()
    body = interaction_body()
    assert (await call(bot, body, headers=signed(body, clock)))[0] == 503
    ping = interaction_body(kind=1)
    assert (await call(bot, ping, headers=signed(ping, clock)))[0] == 200


async def test_lifespan_starts_and_closes_the_bot() -> None:
    bot, _ = make_bot()
    inbox = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return inbox.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await bot.asgi()({"type": "lifespan"}, receive, send)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert not bot.accepting


async def test_an_answered_interaction_leaves_no_cyclic_garbage() -> None:
    """Reference cycles per request make the collector pause under load (p99 spikes)."""
    bot, clock = make_bot()
    body = interaction_body()
    headers = signed(body, clock)
    for _ in range(20):  # warm up caches and lazily made objects
        await call(bot, body, headers=headers)
    gc.collect()
    gc.disable()
    try:
        for _ in range(200):
            assert await call(bot, body, headers=headers) == (
                200,
                {"type": 4, "data": {"content": "pong"}},
            )
        found = gc.collect()
    finally:
        gc.enable()
    assert found < 20, f"{found} objects in reference cycles after 200 interactions"
