"""The outbox's records: item states and kinds, what is enqueued, statistics."""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from steadybot.outbox.errors import IllegalOutboxTransition

__all__ = [
    "DeliveryKind",
    "DeliveryRoute",
    "OutboxItem",
    "OutboxRecord",
    "OutboxState",
    "OutboxStatistics",
]

MAX_KEY_LENGTH: Final = 200


class OutboxState(enum.StrEnum):
    """Where an item is in its life. ``pending → sending → delivered | dead``; a failed
    attempt goes back ``sending → pending`` with a later ``next_attempt_at``."""

    PENDING = "pending"  # committed with its state change; waiting for a relay (or a retry)
    SENDING = "sending"  # claimed and committed BEFORE the HTTP call: after a crash, in doubt
    DELIVERED = "delivered"  # Discord confirmed it (or an in-doubt check found it): final
    DEAD = "dead"  # given up, with a reason (token expired, 4xx...); kept for inspection

    def check(self, target: OutboxState) -> None:
        """Raise :class:`IllegalOutboxTransition` unless ``self → target`` is allowed."""
        if target not in _TRANSITIONS[self]:
            raise IllegalOutboxTransition(str(self), str(target))


_TRANSITIONS: Final[Mapping[OutboxState, frozenset[OutboxState]]] = {
    OutboxState.PENDING: frozenset({OutboxState.SENDING, OutboxState.DEAD}),
    # SENDING → SENDING: a lapsed lease is taken over by another claim (in doubt).
    OutboxState.SENDING: frozenset(
        {OutboxState.PENDING, OutboxState.SENDING, OutboxState.DELIVERED, OutboxState.DEAD}
    ),
    OutboxState.DELIVERED: frozenset(),
    OutboxState.DEAD: frozenset(),
}


class DeliveryKind(enum.StrEnum):
    """How an item reaches the user, and so how a redo after a crash is made safe."""

    # PATCH /webhooks/{app}/{token}/messages/@original: idempotent, a redo rewrites the
    # same message. The home of a deferred interaction's answer ("thinking…").
    EDIT_ORIGINAL = "edit_original"
    # POST /webhooks/{app}/{token}: a new message, no idempotency key at Discord. In
    # doubt, a non-ephemeral one is looked for in the channel before resending.
    FOLLOWUP = "followup"
    # POST /channels/{id}/messages with nonce + enforce_nonce: Discord returns the
    # existing message for a repeated nonce (for a few minutes). Needs the bot token.
    CHANNEL_MESSAGE = "channel_message"

    @property
    def uses_token(self) -> bool:
        return self is not DeliveryKind.CHANNEL_MESSAGE


class DeliveryRoute(enum.StrEnum):
    """Which way a delivery (or an attempt) went."""

    TOKEN = "token"  # the interaction token (edit original / follow-up)
    CHANNEL = "channel"  # a channel message with the bot token (kind, or fallback)
    DM = "dm"  # a direct message with the bot token (fallback for ephemeral answers)


def _check_key(key: str) -> str:
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
        raise ValueError(f"an outbox key is a non-empty str of <= {MAX_KEY_LENGTH} characters")
    return key


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One side effect to deliver, recorded by :meth:`Outbox.enqueue`.

    ``key`` is the idempotency key: enqueuing the same key twice is a no-op, so a
    handler that runs again (a retried transaction, a replayed request) records its
    follow-up once. ``token`` is the interaction's webhook token, a secret: it is
    stored (the relay needs it to deliver, possibly after a restart), never logged
    (``repr`` hides it) and erased from the row when the item ends. ``expires_at``
    (wall-clock seconds) is when the relay stops using the token.
    """

    key: str
    kind: DeliveryKind
    payload: Mapping[str, Any]  # the message body as Discord takes it
    interaction_id: str | None = None
    application_id: str | None = None
    token: str | None = field(default=None, repr=False)
    expires_at: float | None = None  # wall clock; required for token kinds
    channel_id: str | None = None  # the interaction's channel, or the target channel
    user_id: str | None = None  # the invoking user: DM fallback of ephemeral answers
    ephemeral: bool = False
    fallback: bool = True  # may a dead token fall back to the channel (or a DM)?
    fallback_channel_id: str | None = None  # where that fallback goes, if not channel_id

    def __post_init__(self) -> None:
        _check_key(self.key)
        object.__setattr__(self, "kind", DeliveryKind(self.kind))
        if not isinstance(self.payload, Mapping):
            raise TypeError("payload must be a mapping (a message body)")
        if self.kind.uses_token:
            missing = [
                name
                for name in ("interaction_id", "application_id", "token", "expires_at")
                if not getattr(self, name)
            ]
            if missing:
                raise ValueError(f"a {self.kind} item needs {', '.join(missing)}")
        elif not self.channel_id:
            raise ValueError("a channel_message item needs channel_id")
        if self.expires_at is not None and not math.isfinite(self.expires_at):
            raise ValueError("expires_at must be a finite wall-clock time")


@dataclass(frozen=True, slots=True)
class OutboxRecord:
    """An item as stored, with its delivery history (the token is never read back
    into a record)."""

    id: int
    key: str
    kind: DeliveryKind
    state: OutboxState
    payload: Mapping[str, Any]
    interaction_id: str | None
    channel_id: str | None
    ephemeral: bool
    attempts: int
    created_at: float
    expires_at: float | None
    next_attempt_at: float
    delivered_at: float | None
    delivered_via: DeliveryRoute | None
    message_id: str | None
    dead_reason: str | None
    last_error: str | None
    in_doubt: int  # times a claim found it left in SENDING (a crash or a lapsed lease)
    resolution: str | None  # how the last in-doubt claim was resolved


@dataclass(frozen=True, slots=True)
class OutboxStatistics:
    """What the outbox holds (from the relay's last look at the table) and what this
    process's relay did since it started."""

    pending: int  # items waiting (due or backing off), at the last look
    sending: int  # items claimed and not yet finished, at the last look
    oldest_pending_age: float  # seconds the oldest pending item has waited (0 if none)
    enqueued: int  # enqueue calls in this process that inserted a row
    duplicates: int  # enqueue calls ignored because the key was already there
    delivered: int
    delivered_via: Mapping[str, int]  # route → deliveries
    retried: int  # attempts that failed and were scheduled again
    dead_lettered: int
    dead_by_reason: Mapping[str, int]  # "token expired", "unknown webhook 10015", "4xx ..."
    in_doubt_found: int  # claims of an item a crashed (or too slow) relay left in SENDING
    in_doubt_resolved: Mapping[str, int]  # how: "idempotent redo", "found in channel", ...
    redelivered: int  # in-doubt items sent again with no means to check: may show twice
    lost_leases: int  # our result came after another relay took the item over
    polls: int
