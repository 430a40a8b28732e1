"""The Discord calls of the relay, one per route, and the in-doubt look-up.

Kept apart from the relay's protocol so each reads on its own: this module knows
Discord's endpoints and what their answers mean; the relay knows states and time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, Final

import msgspec

from steadybot.errors import DiscordHTTPError, RateLimited, RateLimitWait, TransportError
from steadybot.interactions.bodies import without_flags
from steadybot.models import Message
from steadybot.outbox.models import DeliveryKind
from steadybot.outbox.store import ClaimedItem
from steadybot.rest import RestClient, routes

__all__ = [
    "NONCE_LENGTH",
    "find_in_channel",
    "is_retryable",
    "nonce_for",
    "open_dm",
    "send_channel",
    "send_with_token",
]

NONCE_LENGTH: Final = 25
"""Discord takes a string nonce of at most 25 characters."""

_RETRYABLE_STATUSES: Final = frozenset({408, 429, 500, 502, 503, 504})


def nonce_for(key: str) -> str:
    """The item's nonce: a digest of its key (a key may be long or carry ids)."""
    return "o" + hashlib.sha256(key.encode()).hexdigest()[: NONCE_LENGTH - 1]


def is_retryable(exc: BaseException) -> bool:
    """Whether a failed call may succeed later: no answer, rate limits, 5xx."""
    if isinstance(exc, TransportError | RateLimitWait | TimeoutError):
        return True
    if isinstance(exc, RateLimited):
        return True  # the relay's backoff waits longer than the client would
    return isinstance(exc, DiscordHTTPError) and exc.status in _RETRYABLE_STATUSES


async def send_with_token(rest: RestClient, item: ClaimedItem, *, deadline: float) -> Message:
    """Edit the original or post the follow-up through the interaction token."""
    assert item.application_id is not None
    assert item.token is not None
    if item.kind is DeliveryKind.EDIT_ORIGINAL:
        return await rest.edit_webhook_message(
            item.application_id, item.token, without_flags(item.payload), deadline=deadline
        )
    return await rest.create_followup(
        item.application_id, item.token, dict(item.payload), deadline=deadline
    )


async def send_channel(
    rest: RestClient, channel_id: str, item: ClaimedItem, *, deadline: float
) -> Message:
    """Post the item to a channel with the bot token, with its nonce enforced: sent
    again within Discord's nonce window, it returns the first message instead."""
    body: dict[str, Any] = without_flags(item.payload)
    body["nonce"] = nonce_for(item.key)
    body["enforce_nonce"] = True
    route = routes.CHANNEL_CREATE_MESSAGE.compile(channel_id=channel_id)
    raw = await rest.request(route, json=body, deadline=deadline)
    return msgspec.json.decode(raw, type=Message)


async def open_dm(rest: RestClient, user_id: str) -> str:
    return (await rest.create_dm(user_id)).id


async def find_in_channel(rest: RestClient, item: ClaimedItem, *, limit: int) -> Message | None:
    """The message this item made, if it is among the channel's latest ``limit``: made
    by the application for this interaction (``interaction_metadata.id``) with this
    content. ``None``: not there. Raises the REST error when the channel cannot be read.
    """
    assert item.channel_id is not None
    content = item.payload.get("content")
    for message in await rest.list_messages(item.channel_id, limit=limit):
        if _made_by(message, item) and message.content == content:
            return message
    return None


def _made_by(message: Message, item: ClaimedItem) -> bool:
    metadata: Mapping[str, object] = message.interaction_metadata or {}
    return metadata.get("id") == item.interaction_id and message.webhook_id in (
        None,
        item.application_id,
    )
