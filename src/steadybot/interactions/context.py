"""The object a handler receives: the payload, typed accessors, and the responder."""

from __future__ import annotations

import contextlib
from collections.abc import Coroutine, Mapping, Sequence
from typing import Any, Protocol

from steadybot.clock import Clock
from steadybot.constants import EPHEMERAL_FLAG, InteractionType, OptionType
from steadybot.interactions.bodies import Choice, Component, Embed
from steadybot.interactions.payload import (
    AnyInteraction,
    AutocompleteInteraction,
    CommandInteraction,
    CommandOption,
    ComponentInteraction,
    ModalSubmitInteraction,
    ResolvedData,
)
from steadybot.interactions.progress import ProgressReporter
from steadybot.interactions.responder import Responder, ResponderState
from steadybot.interactions.routing import command_path
from steadybot.models import Attachment, Channel, Message, Role, User
from steadybot.rest import RestClient


class MenuResets(Protocol):
    """What an interaction asks the select-reset manager (components/reset.py)."""

    def answering(
        self, message_id: str, arrived_at: float, edited_timestamp: str | None = None
    ) -> contextlib.AbstractAsyncContextManager[bool]: ...


__all__ = ["Interaction", "ResolvedOption"]

ResolvedOption = str | int | float | bool | User | Role | Channel | Attachment
"""An option value, with user/channel/role/attachment ids replaced by their objects."""

_RESOLVED_KINDS: dict[int, tuple[str, ...]] = {
    OptionType.USER: ("users",),
    OptionType.CHANNEL: ("channels",),
    OptionType.ROLE: ("roles",),
    OptionType.MENTIONABLE: ("users", "roles"),
    OptionType.ATTACHMENT: ("attachments",),
}


def _resolve(option: CommandOption, resolved: ResolvedData | None) -> ResolvedOption | None:
    value = option.value
    kinds = _RESOLVED_KINDS.get(option.type)
    if kinds is None or resolved is None or not isinstance(value, str):
        return value
    for kind in kinds:
        table: Mapping[str, User | Role | Channel | Attachment] = getattr(resolved, kind)
        if value in table:
            return table[value]
    return value


class Interaction:
    """One interaction as a handler sees it.

    Answer with :meth:`respond` (or :meth:`update` for components); the runtime has
    already made sure the 3 s deadline is met and that only one initial response goes
    out, whatever you call and whenever.
    """

    def __init__(
        self,
        payload: AnyInteraction,
        responder: Responder,
        *,
        rest: RestClient,
        clock: Clock,
        args: Mapping[str, object] | None = None,
    ) -> None:
        self.payload = payload
        self.responder = responder
        self.rest = rest
        self.args: Mapping[str, object] = args or {}
        """Typed arguments parsed out of the custom_id by the handler's pattern."""
        self._clock = clock
        self.menu_resets: MenuResets | None = None
        """Set for ``reset=True`` handlers: a first ``respond`` resets the menu (type 7)."""
        self.command_path: tuple[str, ...] = ()
        self.options: dict[str, ResolvedOption | None] = {}
        self.focused_option: str | None = None
        if isinstance(payload, CommandInteraction | AutocompleteInteraction):
            path, leaf = command_path(payload.data.name, payload.data.options)
            self.command_path = path
            for option in leaf:
                self.options[option.name] = _resolve(option, payload.data.resolved)
                if option.focused:
                    self.focused_option = option.name

    # --- who, where, what -------------------------------------------------------------

    @property
    def id(self) -> str:
        return self.payload.id

    @property
    def type(self) -> InteractionType:
        return self.payload.kind

    @property
    def user(self) -> User | None:
        """The invoking user (``member.user`` in guilds)."""
        return self.payload.author

    @property
    def user_id(self) -> str | None:
        author = self.payload.author
        return None if author is None else author.id

    @property
    def guild_id(self) -> str | None:
        return self.payload.guild_id

    @property
    def channel_id(self) -> str | None:
        return self.payload.channel_id

    @property
    def locale(self) -> str | None:
        return self.payload.locale

    @property
    def app_permissions(self) -> int:
        """The bot's permissions in the channel, as a bit set (0 when unknown)."""
        return int(self.payload.app_permissions or 0)

    @property
    def custom_id(self) -> str | None:
        if isinstance(self.payload, ComponentInteraction | ModalSubmitInteraction):
            return self.payload.data.custom_id
        return None

    @property
    def values(self) -> list[str]:
        """Picked values of a select menu."""
        if isinstance(self.payload, ComponentInteraction):
            return list(self.payload.data.values)
        return []

    @property
    def message(self) -> Message | None:
        """The message a component sits on."""
        if isinstance(self.payload, ComponentInteraction | ModalSubmitInteraction):
            return self.payload.message
        return None

    @property
    def fields(self) -> dict[str, str]:
        """Submitted modal inputs by custom_id."""
        if isinstance(self.payload, ModalSubmitInteraction):
            return self.payload.data.fields()
        return {}

    @property
    def elapsed(self) -> float:
        """Seconds since the request arrived."""
        return self._clock.monotonic() - self.responder.arrived_at

    # --- answering (see Responder for the state machine) ------------------------------

    def respond(
        self,
        content: str | None = None,
        *,
        embeds: Sequence[Embed] | None = None,
        components: Sequence[Component] | None = None,
        ephemeral: bool | None = None,
        allowed_mentions: Mapping[str, object] | None = None,
        fallback_channel_id: str | None = None,
    ) -> Coroutine[Any, Any, Message | None]:
        """Answer the user (await it); see :meth:`Responder.respond`.

        In a ``reset=True`` select handler, a first answer goes out as UPDATE_MESSAGE
        (type 7) carrying the menu's own components, which shows no pick again at no
        extra cost, and the content as a follow-up (ephemeral by the handler's default).
        Not when the bot changed the menu after the pick arrived (it waits while the bot
        is changing it): the interaction's copy of the menu could be older than that
        change, so the answer is a plain message and the reset is left to the reset
        manager's fresh, locked edit.
        """
        resets = self.menu_resets
        if resets is not None and self.responder.state is ResponderState.PENDING:
            message = self.message
            if message is not None and not message.flags & EPHEMERAL_FLAG:
                return self._respond_resetting(
                    resets, message, content, embeds, components, ephemeral, allowed_mentions
                )
        # Returns the responder's coroutine rather than awaiting it: one frame less on
        # the path every interaction takes.
        return self.responder.respond(
            content,
            embeds=embeds,
            components=components,
            ephemeral=ephemeral,
            allowed_mentions=allowed_mentions,
            fallback_channel_id=fallback_channel_id,
        )

    async def _respond_resetting(
        self,
        resets: MenuResets,
        message: Message,
        content: str | None,
        embeds: Sequence[Embed] | None,
        components: Sequence[Component] | None,
        ephemeral: bool | None,
        allowed_mentions: Mapping[str, object] | None,
    ) -> Message | None:
        arrived_at = self.responder.arrived_at
        async with resets.answering(message.id, arrived_at, message.edited_timestamp) as current:
            if current:
                await self.responder.update(components=message.components)
        # After the type-7 reset the content is a follow-up; otherwise a plain answer.
        send = self.responder.followup if current else self.responder.respond
        return await send(
            content,
            embeds=embeds,
            components=components,
            ephemeral=ephemeral,
            allowed_mentions=allowed_mentions,
        )

    async def followup(
        self,
        content: str | None = None,
        *,
        embeds: Sequence[Embed] | None = None,
        components: Sequence[Component] | None = None,
        ephemeral: bool | None = None,
    ) -> Message | None:
        return await self.responder.followup(
            content, embeds=embeds, components=components, ephemeral=ephemeral
        )

    async def update(
        self,
        content: str | None = None,
        *,
        embeds: Sequence[Embed] | None = None,
        components: Sequence[Component] | None = None,
    ) -> Message | None:
        return await self.responder.update(content, embeds=embeds, components=components)

    async def defer(self, *, ephemeral: bool | None = None, update: bool | None = None) -> bool:
        return await self.responder.defer(ephemeral=ephemeral, update=update)

    async def edit_original(
        self,
        content: str | None = None,
        *,
        embeds: Sequence[Embed] | None = None,
        components: Sequence[Component] | None = None,
    ) -> Message | None:
        return await self.responder.edit_original(content, embeds=embeds, components=components)

    async def delete_original(self) -> None:
        await self.responder.delete_original()

    async def modal(self, custom_id: str, title: str, components: Sequence[Component]) -> None:
        await self.responder.modal(custom_id, title, components)

    async def autocomplete(self, choices: Sequence[Choice]) -> None:
        await self.responder.autocomplete(choices)

    def progress(self, *, interval: float | None = None) -> ProgressReporter:
        return self.responder.progress(interval=interval)
