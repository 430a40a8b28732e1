"""Interactions as Discord tracks them: the 3-second window, one acknowledgement, 15 minutes.

Discord's rules, enforced on an injected clock so tests can cross them in no time:

- the initial response must arrive within 3 s of the event; otherwise the interaction
  has *failed* (the user sees "This interaction failed") and its token is dead: a late
  callback gets 404 / 10062, follow-ups and @original get 404 / 10062 as well;
- a second initial response gets 400 / 40060;
- the token serves follow-ups and @original for 15 minutes; after that 401 / 50027.

The outcome is computed from the clock when asked, so no timer has to fire for an
unanswered interaction to count as failed.
"""

from __future__ import annotations

import enum
import secrets
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from steadybot.clock import Clock
from steadybot.constants import (
    EPHEMERAL_FLAG,
    INITIAL_RESPONSE_DEADLINE,
    INTERACTION_TOKEN_LIFETIME,
    LOADING_FLAG,
    ErrorCode,
)
from steadybot.emulator.errors import EmulatedError, unknown
from steadybot.emulator.validation import check_callback, check_message
from steadybot.emulator.world import World

__all__ = ["EmulatedInteraction", "InteractionLedger", "InteractionOutcome"]

JSON = dict[str, Any]
TOKEN_BYTES = 120  # real tokens are well over 128 characters


class InteractionOutcome(enum.Enum):
    """What the user saw."""

    PENDING = "pending"  # within the 3 s window, nothing yet
    ACKNOWLEDGED = "acknowledged"  # an initial response arrived in time
    FAILED = "failed"  # "This interaction failed"


@dataclass
class EmulatedInteraction:
    """One interaction the emulator sent, and everything that happened to it."""

    id: str
    token: str
    type: int
    payload: JSON
    user_id: str
    channel_id: str
    created_at: float  # monotonic
    ack_type: int | None = None
    ack_at: float | None = None
    ack_via: str | None = None  # "http" (reply body) or "callback" (REST)
    original_message_id: str | None = None
    source_message_id: str | None = None  # the message a component sits on
    followup_ids: list[str] = field(default_factory=list)
    modal: JSON | None = None
    choices: list[JSON] | None = None
    double_acknowledged: int = 0
    late_acknowledgements: int = 0
    delivery_status: int | None = None  # HTTP status of the delivery to the bot
    delivery_error: str | None = None
    failed: bool = False
    original_flags: int = 0
    expired_calls: int = 0  # token-bound calls refused because 15 minutes had passed

    @property
    def ack_latency(self) -> float | None:
        """Seconds from the event to the initial response."""
        return None if self.ack_at is None else self.ack_at - self.created_at

    @property
    def outcome(self) -> InteractionOutcome:
        if self.ack_type is not None:
            return InteractionOutcome.ACKNOWLEDGED
        return InteractionOutcome.FAILED if self.failed else InteractionOutcome.PENDING

    @property
    def ephemeral(self) -> bool:
        """Whether the original response is visible to the invoking user only."""
        return bool(self.original_flags & EPHEMERAL_FLAG)


class InteractionLedger:
    """All interactions of one emulator, and the acknowledgement rules."""

    def __init__(self, world: World, clock: Clock) -> None:
        self._world = world
        self._clock = clock
        self._by_id: dict[str, EmulatedInteraction] = {}
        self._by_token: dict[str, EmulatedInteraction] = {}
        self.counters: Counter[str] = Counter()

    # --- creation -----------------------------------------------------------------

    def create(
        self,
        kind: int,
        data: JSON | None,
        *,
        user_id: str,
        channel_id: str,
        message: JSON | None = None,
    ) -> EmulatedInteraction:
        world = self._world
        interaction_id = world.ids.next()
        token = "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(TOKEN_BYTES)
        channel = world.channels[channel_id]
        payload: JSON = {
            "id": interaction_id,
            "application_id": world.application_id,
            "type": kind,
            "token": token,
            "version": 1,
            "guild_id": world.guild["id"],
            "channel_id": channel_id,
            "channel": {"id": channel_id, "type": channel["type"], "name": channel.get("name")},
            "member": world.members[user_id],
            "locale": "en-US",
            "guild_locale": "en-US",
            "app_permissions": "1071698660929",
            "entitlements": [],
            "authorizing_integration_owners": {"0": world.guild["id"]},
            "context": 0,
        }
        if data is not None:
            payload["data"] = data
        if message is not None:
            payload["message"] = message
        interaction = EmulatedInteraction(
            id=interaction_id,
            token=token,
            type=kind,
            payload=payload,
            user_id=user_id,
            channel_id=channel_id,
            created_at=self._clock.monotonic(),
            source_message_id=message["id"] if message is not None else None,
        )
        self._by_id[interaction_id] = interaction
        self._by_token[token] = interaction
        self.counters["delivered"] += 1
        return interaction

    # --- clocks -------------------------------------------------------------------

    def refresh(self, interaction: EmulatedInteraction) -> EmulatedInteraction:
        """Apply the 3 s rule: an unanswered interaction past it has failed."""
        if (
            interaction.ack_type is None
            and not interaction.failed
            and self._clock.monotonic() - interaction.created_at > INITIAL_RESPONSE_DEADLINE
        ):
            interaction.failed = True
            self.counters["failed"] += 1
        return interaction

    def all(self) -> list[EmulatedInteraction]:
        return [self.refresh(i) for i in self._by_id.values()]

    def get(self, interaction_id: str) -> EmulatedInteraction | None:
        interaction = self._by_id.get(interaction_id)
        return self.refresh(interaction) if interaction is not None else None

    def mark_failed(self, interaction: EmulatedInteraction, reason: str) -> None:
        """The delivery itself failed (refused, error status, no answer)."""
        interaction.delivery_error = reason
        if interaction.ack_type is None and not interaction.failed:
            interaction.failed = True
            self.counters["failed"] += 1

    # --- the initial response -----------------------------------------------------

    def acknowledge(
        self, interaction_id: str, token: str, body: object, *, via: str
    ) -> EmulatedInteraction:
        """Apply an initial response, or raise the error Discord would answer."""
        interaction = self._by_id.get(interaction_id)
        if interaction is None or interaction.token != token:
            raise unknown(ErrorCode.UNKNOWN_INTERACTION)
        self.refresh(interaction)
        if interaction.ack_type is not None:
            interaction.double_acknowledged += 1
            self.counters["double_acknowledged"] += 1
            raise EmulatedError(
                400,
                ErrorCode.INTERACTION_ALREADY_ACKNOWLEDGED,
                "Interaction has already been acknowledged.",
            )
        if interaction.failed:
            interaction.late_acknowledgements += 1
            self.counters["late_acknowledgements"] += 1
            raise unknown(ErrorCode.UNKNOWN_INTERACTION)
        kind, data = check_callback(body, interaction.type)
        self._apply(interaction, kind, data)
        interaction.ack_type = kind
        interaction.ack_at = self._clock.monotonic()
        interaction.ack_via = via
        self.counters["acknowledged_in_time"] += 1
        self.counters[f"ack_type_{kind}"] += 1
        return interaction

    def _apply(self, interaction: EmulatedInteraction, kind: int, data: JSON) -> None:
        world = self._world
        if kind in (4, 5):
            flags = int(data.get("flags") or 0) & EPHEMERAL_FLAG
            if kind == 5:
                data = {"content": "", "flags": flags | LOADING_FLAG}
            message = self._create_response_message(interaction, data, flags)
            interaction.original_message_id = message["id"]
            interaction.original_flags = flags
        elif kind in (6, 7):
            interaction.original_message_id = interaction.source_message_id
            if kind == 7 and interaction.source_message_id is not None:
                source = world.find_message(interaction.source_message_id)
                if source is not None:
                    world.edit_message(source, data)
                    self.counters["messages_edited"] += 1
        elif kind == 8:
            interaction.choices = list(data.get("choices") or [])
        elif kind == 9:
            interaction.modal = data

    def _create_response_message(
        self, interaction: EmulatedInteraction, data: JSON, flags: int
    ) -> JSON:
        world = self._world
        extra: JSON = {
            "webhook_id": world.application_id,
            "application_id": world.application_id,
            "interaction_metadata": {
                "id": interaction.id,
                "type": interaction.type,
                "user": world.user(interaction.user_id),
                "authorizing_integration_owners": {"0": world.guild["id"]},
                **(
                    {"interacted_message_id": interaction.source_message_id}
                    if interaction.source_message_id is not None
                    else {}
                ),
            },
        }
        if flags & EPHEMERAL_FLAG:
            message = world.create_message(
                interaction.channel_id,
                {**data, "flags": int(data.get("flags") or 0)},
                author=world.bot_user,
                extra=extra,
            )
            # Ephemeral messages live with the user, not in the channel's history.
            world.messages[interaction.channel_id].pop(message["id"], None)
            world.ephemeral.setdefault(interaction.user_id, []).append(message)
        else:
            message = world.create_message(
                interaction.channel_id, data, author=world.bot_user, extra=extra
            )
        self.counters["messages_created"] += 1
        return message

    # --- the token: follow-ups and @original --------------------------------------

    def by_token(self, application_id: str, token: str) -> EmulatedInteraction:
        """The interaction a webhook token belongs to, or the error Discord gives."""
        interaction = self._by_token.get(token)
        if interaction is None or application_id != self._world.application_id:
            raise unknown(ErrorCode.UNKNOWN_WEBHOOK)
        self.refresh(interaction)
        if interaction.failed:
            raise unknown(ErrorCode.UNKNOWN_INTERACTION)
        if interaction.ack_type is None:
            raise unknown(ErrorCode.UNKNOWN_WEBHOOK)
        if self._clock.monotonic() - interaction.created_at > INTERACTION_TOKEN_LIFETIME:
            self.counters["expired_token_calls"] += 1
            interaction.expired_calls += 1
            raise EmulatedError(401, ErrorCode.INVALID_WEBHOOK_TOKEN, "Invalid Webhook Token")
        return interaction

    def pending_by_token(self, token: str) -> EmulatedInteraction | None:
        """The interaction of ``token`` while its initial response may still arrive."""
        interaction = self._by_token.get(token)
        if interaction is None or interaction.ack_type is not None or interaction.failed:
            return None
        return interaction

    def followup(self, interaction: EmulatedInteraction, body: object) -> JSON:
        data = check_message(body)
        flags = int(data.get("flags") or 0) & EPHEMERAL_FLAG
        message = self._create_response_message(interaction, data, flags)
        interaction.followup_ids.append(message["id"])
        self.counters["followups"] += 1
        return message

    def webhook_message_or_none(
        self, interaction: EmulatedInteraction, message_id: str
    ) -> JSON | None:
        try:
            return self.webhook_message(interaction, message_id)
        except EmulatedError:
            return None

    def webhook_message(self, interaction: EmulatedInteraction, message_id: str) -> JSON:
        """The message @original or an id names, if this token may touch it."""
        if message_id == "@original":
            if interaction.original_message_id is None:
                raise unknown(ErrorCode.UNKNOWN_MESSAGE)
            message_id = interaction.original_message_id
        elif message_id not in interaction.followup_ids:
            raise unknown(ErrorCode.UNKNOWN_MESSAGE)
        message = self._world.find_message(message_id)
        if message is None:
            raise unknown(ErrorCode.UNKNOWN_MESSAGE)
        return message
