"""Read-only views of the emulator's state, the same in-process and over HTTP.

Crowds and scenario checks read these instead of the emulator's live objects, so one
scenario runs against an emulator in the same process or a standalone one behind
``/_emulator/act`` and ``/_emulator/snapshot`` alike. They are msgspec structs: the
JSON the control API sends decodes straight back into them.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

__all__ = ["Action", "EmulatorStatistics", "InteractionView", "Snapshot"]

JSON = dict[str, Any]


class Action(msgspec.Struct, kw_only=True, frozen=True):
    """One thing a simulated user does."""

    kind: Literal["command", "click", "pick", "modal"]
    user_id: str
    name: str = ""  # command name
    custom_id: str = ""  # button, select or modal
    message_id: str = ""  # the message a button or select sits on
    channel_id: str | None = None
    options: list[JSON] = msgspec.field(default_factory=list)
    values: list[str] = msgspec.field(default_factory=list)
    fields: dict[str, str] = msgspec.field(default_factory=dict)


class InteractionView(msgspec.Struct, kw_only=True, frozen=True):
    """One interaction as Discord saw it."""

    id: str
    type: int
    user_id: str
    channel_id: str
    outcome: Literal["pending", "acknowledged", "failed"]
    ack_type: int | None
    ack_via: str | None
    ack_latency: float | None  # seconds from the event to the initial response
    original_message_id: str | None
    followup_ids: list[str]
    double_acknowledged: int
    expired_calls: int
    owed: bool  # deferred (type 5/6), not answered yet, token not expired
    answered_after_defer: bool  # deferred (type 5/6), then answered in the token's life


class EmulatorStatistics(msgspec.Struct, kw_only=True, frozen=True):
    """What the emulator saw, from Discord's side: its counters."""

    delivered: int
    acknowledged_in_time: int
    failed: int
    pending: int
    double_acknowledged: int
    late_acknowledgements: int
    followups: int
    messages_created: int
    messages_edited: int
    messages_deleted: int
    expired_token_calls: int
    rest_requests: int
    rest_errors: int
    ack_types: dict[int, int]
    rate_limited: dict[str, int]  # 429s sent, by scope: user, global, cloudflare
    invalid_requests: int  # 401/403/429 in the current 10-minute window
    faults_injected: int
    # "METHOD /route/{template}" → requests received (Discord's routes only)
    requests_by_route: dict[str, int] = msgspec.field(default_factory=dict)


class Snapshot(msgspec.Struct, kw_only=True, frozen=True):
    """The state a scenario's checks judge: interactions, channels, messages, counters."""

    interactions: dict[str, InteractionView]
    channels: list[JSON]
    messages: dict[str, list[JSON]]  # channel id → messages, oldest first
    ephemeral: dict[str, list[JSON]]  # user id → ephemeral messages
    dm_channels: dict[str, str]  # user id → DM channel id
    # message id → users whose select on it still shows their pick (no edit since)
    selections: dict[str, list[str]] = msgspec.field(default_factory=dict)
    message_edits: dict[str, int] = msgspec.field(default_factory=dict)  # message id → edits
    # message id → picks made while that user's earlier pick on it still showed
    picks_while_showing: dict[str, int] = msgspec.field(default_factory=dict)
    statistics: EmulatorStatistics

    def channel_messages(self, channel_id: str) -> list[JSON]:
        return self.messages.get(channel_id, [])

    def ephemeral_messages(self, user_id: str) -> list[JSON]:
        return self.ephemeral.get(user_id, [])
