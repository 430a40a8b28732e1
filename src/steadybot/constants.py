"""Discord's numbers in one place.

Every deadline, limit, callback type and error code the runtime relies on is a
``Final`` constant here, so that logic never carries a bare literal and a reader can
check each number against Discord's documentation (see ``shared/discord-facts.md``).
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final

__all__ = [
    "API_BASE",
    "AUTOCOMPLETE_MAX_CHOICES",
    "CUSTOM_ID_MAX_LENGTH",
    "EPHEMERAL_FLAG",
    "INITIAL_RESPONSE_DEADLINE",
    "INTERACTION_TOKEN_LIFETIME",
    "LOADING_FLAG",
    "MESSAGE_CONTENT_MAX_LENGTH",
    "MESSAGE_MAX_ACTION_ROWS",
    "MESSAGE_MAX_EMBEDS",
    "MODAL_MAX_COMPONENTS",
    "MODAL_TITLE_MAX_LENGTH",
    "CallbackType",
    "ComponentType",
    "ErrorCode",
    "InteractionType",
    "OptionType",
]

API_BASE: Final = "https://discord.com/api/v10"
"""Discord's REST base URL; ``STEADYBOT_API_BASE`` overrides it (the emulator)."""

INITIAL_RESPONSE_DEADLINE: Final = 3.0
"""Seconds from the event within which the initial response must arrive."""

INTERACTION_TOKEN_LIFETIME: Final = 15 * 60.0
"""Seconds an interaction token stays valid for follow-ups and @original edits."""

EPHEMERAL_FLAG: Final = 1 << 6
"""Message flag 64: only the invoking user sees the message."""

MESSAGE_CONTENT_MAX_LENGTH: Final = 2000
CUSTOM_ID_MAX_LENGTH: Final = 100
MODAL_TITLE_MAX_LENGTH: Final = 45
MODAL_MAX_COMPONENTS: Final = 5
AUTOCOMPLETE_MAX_CHOICES: Final = 25
MESSAGE_MAX_EMBEDS: Final = 10
MESSAGE_MAX_ACTION_ROWS: Final = 5

LOADING_FLAG: Final = 1 << 7
"""Message flag 128: the deferred "thinking…" message, until its first edit."""


class InteractionType(IntEnum):
    """The ``type`` of an incoming interaction."""

    PING = 1
    APPLICATION_COMMAND = 2
    MESSAGE_COMPONENT = 3
    APPLICATION_COMMAND_AUTOCOMPLETE = 4
    MODAL_SUBMIT = 5


class CallbackType(IntEnum):
    """The ``type`` of an initial response (interaction callback)."""

    PONG = 1
    CHANNEL_MESSAGE_WITH_SOURCE = 4
    DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE = 5
    DEFERRED_UPDATE_MESSAGE = 6
    UPDATE_MESSAGE = 7
    APPLICATION_COMMAND_AUTOCOMPLETE_RESULT = 8
    MODAL = 9


class OptionType(IntEnum):
    """Application command option types."""

    SUB_COMMAND = 1
    SUB_COMMAND_GROUP = 2
    STRING = 3
    INTEGER = 4
    BOOLEAN = 5
    USER = 6
    CHANNEL = 7
    ROLE = 8
    MENTIONABLE = 9
    NUMBER = 10
    ATTACHMENT = 11


class ComponentType(IntEnum):
    """Message component types."""

    ACTION_ROW = 1
    BUTTON = 2
    STRING_SELECT = 3
    TEXT_INPUT = 4
    USER_SELECT = 5
    ROLE_SELECT = 6
    MENTIONABLE_SELECT = 7
    CHANNEL_SELECT = 8


class ErrorCode(IntEnum):
    """JSON error codes Discord returns, with the HTTP status clients observe."""

    GENERAL = 0
    UNKNOWN_APPLICATION = 10002  # 404
    UNKNOWN_CHANNEL = 10003  # 404
    UNKNOWN_GUILD = 10004  # 404
    UNKNOWN_MEMBER = 10007  # 404
    UNKNOWN_MESSAGE = 10008  # 404
    UNKNOWN_ROLE = 10011  # 404
    UNKNOWN_WEBHOOK = 10015  # 404
    UNKNOWN_INTERACTION = 10062  # 404
    UNKNOWN_APPLICATION_COMMAND = 10063  # 404
    INTERACTION_ALREADY_ACKNOWLEDGED = 40060  # 400
    MAX_FOLLOWUP_MESSAGES = 40094  # 400
    MISSING_ACCESS = 50001  # 403
    CANNOT_EXECUTE_ON_DM = 50003  # 400
    MISSING_PERMISSIONS = 50013  # 403
    INVALID_WEBHOOK_TOKEN = 50027  # 401
    MESSAGE_TOO_OLD_TO_BULK_DELETE = 50034  # 400
    INVALID_FORM_BODY = 50035  # 400
