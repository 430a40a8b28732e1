"""The incoming interaction payload, decoded with msgspec.

Theory: Discord's interaction object carries its kind in ``type`` and a ``data`` whose
shape depends on that kind. We model each kind as its own struct in a *tagged union*
keyed on ``type``, so one decode pass both validates the body and picks the right
``data`` struct; an unknown ``type`` or a field of the wrong type is a
:class:`~steadybot.errors.PayloadError` (HTTP 400), never a crash. Unknown fields are
ignored, because Discord adds fields without notice.
"""

from __future__ import annotations

from typing import ClassVar

import msgspec

from steadybot.constants import InteractionType
from steadybot.errors import PayloadError
from steadybot.models import Attachment, Channel, Member, Message, Role, User

__all__ = [
    "AnyInteraction",
    "ApplicationCommandData",
    "AutocompleteInteraction",
    "CommandInteraction",
    "CommandOption",
    "ComponentInteraction",
    "MessageComponentData",
    "ModalField",
    "ModalRow",
    "ModalSubmitData",
    "ModalSubmitInteraction",
    "OptionValue",
    "PingInteraction",
    "ResolvedData",
    "decode_interaction",
]

OptionValue = str | int | float | bool
"""The raw value of a command option as Discord sends it."""


class CommandOption(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One option of a slash command; sub-commands nest their options."""

    name: str
    type: int
    value: OptionValue | None = None
    options: list[CommandOption] = msgspec.field(default_factory=list)
    focused: bool = False


class ResolvedData(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Full objects for the ids referenced by options or select values."""

    users: dict[str, User] = msgspec.field(default_factory=dict)
    members: dict[str, Member] = msgspec.field(default_factory=dict)
    roles: dict[str, Role] = msgspec.field(default_factory=dict)
    channels: dict[str, Channel] = msgspec.field(default_factory=dict)
    messages: dict[str, Message] = msgspec.field(default_factory=dict)
    attachments: dict[str, Attachment] = msgspec.field(default_factory=dict)


class ApplicationCommandData(msgspec.Struct, kw_only=True, omit_defaults=True):
    """``data`` of an APPLICATION_COMMAND or AUTOCOMPLETE interaction."""

    id: str
    name: str
    type: int = 1
    options: list[CommandOption] = msgspec.field(default_factory=list)
    resolved: ResolvedData | None = None
    guild_id: str | None = None
    target_id: str | None = None


class MessageComponentData(msgspec.Struct, kw_only=True, omit_defaults=True):
    """``data`` of a MESSAGE_COMPONENT interaction."""

    custom_id: str
    component_type: int
    values: list[str] = msgspec.field(default_factory=list)
    resolved: ResolvedData | None = None


class ModalField(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A submitted input of a modal (text input, or a select inside a label)."""

    type: int
    custom_id: str = ""
    value: str | None = None
    values: list[str] | None = None


class ModalRow(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A top-level modal component: an action row, or a label wrapping one field."""

    type: int
    components: list[ModalField] = msgspec.field(default_factory=list)
    component: ModalField | None = None


class ModalSubmitData(msgspec.Struct, kw_only=True, omit_defaults=True):
    """``data`` of a MODAL_SUBMIT interaction."""

    custom_id: str
    components: list[ModalRow] = msgspec.field(default_factory=list)
    resolved: ResolvedData | None = None

    def fields(self) -> dict[str, str]:
        """The submitted values by input ``custom_id``; selects join their values by ','."""
        found: dict[str, str] = {}
        for row in self.components:
            inputs = [*row.components, *([row.component] if row.component else [])]
            for field in inputs:
                if field.value is not None:
                    found[field.custom_id] = field.value
                elif field.values is not None:
                    found[field.custom_id] = ",".join(field.values)
        return found


class _InteractionBase(
    msgspec.Struct, kw_only=True, omit_defaults=True, tag_field="type", forbid_unknown_fields=False
):
    """Fields every interaction carries."""

    kind: ClassVar[InteractionType]

    id: str
    application_id: str
    token: str
    version: int = 1
    guild_id: str | None = None
    channel_id: str | None = None
    channel: Channel | None = None
    member: Member | None = None
    user: User | None = None
    locale: str | None = None
    guild_locale: str | None = None
    app_permissions: str | None = None
    context: int | None = None

    @property
    def author(self) -> User | None:
        """The invoking user: ``member.user`` in guilds, ``user`` in DMs."""
        if self.member is not None and self.member.user is not None:
            return self.member.user
        return self.user


class PingInteraction(_InteractionBase, tag=int(InteractionType.PING)):
    """Discord checking the endpoint; answered with PONG."""

    kind: ClassVar[InteractionType] = InteractionType.PING


class CommandInteraction(_InteractionBase, tag=int(InteractionType.APPLICATION_COMMAND)):
    """A slash, user or message command."""

    kind: ClassVar[InteractionType] = InteractionType.APPLICATION_COMMAND
    data: ApplicationCommandData


class ComponentInteraction(_InteractionBase, tag=int(InteractionType.MESSAGE_COMPONENT)):
    """A button click or select pick on a message."""

    kind: ClassVar[InteractionType] = InteractionType.MESSAGE_COMPONENT
    data: MessageComponentData
    message: Message


class AutocompleteInteraction(
    _InteractionBase, tag=int(InteractionType.APPLICATION_COMMAND_AUTOCOMPLETE)
):
    """A user typing into an autocompleted option."""

    kind: ClassVar[InteractionType] = InteractionType.APPLICATION_COMMAND_AUTOCOMPLETE
    data: ApplicationCommandData


class ModalSubmitInteraction(_InteractionBase, tag=int(InteractionType.MODAL_SUBMIT)):
    """A submitted modal; ``message`` is set when the modal came from a component."""

    kind: ClassVar[InteractionType] = InteractionType.MODAL_SUBMIT
    data: ModalSubmitData
    message: Message | None = None


AnyInteraction = (
    PingInteraction
    | CommandInteraction
    | ComponentInteraction
    | AutocompleteInteraction
    | ModalSubmitInteraction
)

_decoder: msgspec.json.Decoder[AnyInteraction] = msgspec.json.Decoder(AnyInteraction)


def decode_interaction(body: bytes) -> AnyInteraction:
    """Decode and validate an interaction body, or raise :class:`PayloadError`."""
    try:
        return _decoder.decode(body)
    except msgspec.DecodeError as exc:
        # msgspec's message names the offending path ("at `$.data.name`"), nothing more.
        raise PayloadError(f"invalid interaction payload: {exc}") from None
