"""The two ASGI apps the endpoint benchmark holds against each other.

Both verify the same Ed25519 key (derived from a fixed seed, so a run is reproducible)
with the same timestamp window, and both are served by uvicorn with identical settings:

- ``bare`` is the floor: the least a correct interactions endpoint must do. It reads the
  body, checks the signature and the timestamp window with PyNaCl, decodes the JSON with
  msgspec and replies ``{"type": 4, "data": {"content": "pong"}}``. No routing, no
  validation into types, no tasks.
- ``steadybot_app`` is a :class:`~steadybot.Bot` with an instant ``/ping`` handler behind
  ``bot.asgi()``: everything the runtime does on the hot path (typed decode, routing, a
  tracked handler task, the responder, the reply sink) is in the measurement.

``timestamp_max_age`` is one hour for both apps (instead of Discord's 15 s), so a signed
request stays valid for a whole run; the window is still checked on every request.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final

import msgspec
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey
from pydantic import SecretStr

from steadybot import Bot, Interaction
from steadybot.config import Settings

__all__ = [
    "APPLICATION_ID",
    "SIGNING_KEY",
    "TIMESTAMP_MAX_AGE",
    "TIMESTAMP_MAX_SKEW_AHEAD",
    "bare",
    "bot",
    "interaction_body",
    "sign",
    "steadybot_app",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

SIGNING_KEY: Final = SigningKey(b"steadybot-endpoint-benchmark-key")  # 32-byte fixed seed
PUBLIC_KEY_HEX: Final = SIGNING_KEY.verify_key.encode().hex()
APPLICATION_ID: Final = "100000000000000001"
TIMESTAMP_MAX_AGE: Final = 3600.0
TIMESTAMP_MAX_SKEW_AHEAD: Final = 5.0


def sign(body: bytes, timestamp: str) -> str:
    """The hex Ed25519 signature Discord would send for ``body`` at ``timestamp``."""
    return SIGNING_KEY.sign(timestamp.encode() + body).signature.hex()


def interaction_body() -> bytes:
    """A realistic ``/ping`` APPLICATION_COMMAND body, shaped like Discord's."""
    body = {
        "id": "600000000000000000",
        "application_id": APPLICATION_ID,
        "type": 2,
        "data": {"id": "1", "name": "ping", "type": 1, "options": []},
        "token": "T" * 200,
        "version": 1,
        "channel_id": "300000000000000003",
        "guild_id": "200000000000000002",
        "member": {"user": {"id": "400000000000000004", "username": "alice"}, "roles": []},
        "locale": "en-US",
        "app_permissions": "2048",
    }
    return msgspec.json.encode(body)


# --- the floor -------------------------------------------------------------------------

_VERIFY_KEY: Final = VerifyKey(bytes.fromhex(PUBLIC_KEY_HEX))
_JSON_HEADERS: Final = [(b"content-type", b"application/json")]
_encode = msgspec.json.encode
_decode = msgspec.json.decode


async def bare(scope: Scope, receive: Receive, send: Send) -> None:
    """Signature check + JSON decode + JSON reply, and nothing else."""
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    signature = timestamp = b""
    for name, value in scope["headers"]:
        if name == b"x-signature-ed25519":
            signature = value
        elif name == b"x-signature-timestamp":
            timestamp = value
    chunks: list[bytes] = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    if not _valid(signature, timestamp, body):
        await _send(send, 401, b'{"error":"invalid request signature"}')
        return
    _decode(body)
    await _send(send, 200, _encode({"type": 4, "data": {"content": "pong"}}))


def _valid(signature: bytes, timestamp: bytes, body: bytes) -> bool:
    try:
        age = time.time() - float(timestamp)
        if age > TIMESTAMP_MAX_AGE or -age > TIMESTAMP_MAX_SKEW_AHEAD:
            return False
        _VERIFY_KEY.verify(timestamp + body, bytes.fromhex(signature.decode("latin-1")))
    except (ValueError, BadSignatureError):
        return False
    return True


async def _send(send: Send, status: int, body: bytes) -> None:
    headers = [*_JSON_HEADERS, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


# --- steadybot ---------------------------------------------------------------------------

bot = Bot(
    Settings(
        application_id=APPLICATION_ID,
        public_key=PUBLIC_KEY_HEX,
        token=SecretStr("benchmark-token"),
        api_base="http://127.0.0.1:9/api/v10",  # never called: /ping answers in the reply
        timestamp_max_age=TIMESTAMP_MAX_AGE,
        timestamp_max_skew_ahead=TIMESTAMP_MAX_SKEW_AHEAD,
        _env_file=None,  # a stray .env must not change what is measured
    )
)


@bot.command("ping")
async def ping(interaction: Interaction) -> None:
    await interaction.respond("pong")


steadybot_app = bot.asgi()
