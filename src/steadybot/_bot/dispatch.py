"""One interaction's way through the bot: route, responder, handler run, menu reset.

For each interaction the bot makes one :class:`~steadybot.interactions.Responder` (the
state machine that answers exactly once, in time) and one
:class:`~steadybot.interactions.Interaction` around it, finds the handler by route, and
runs it with :func:`~steadybot.interactions.runner.run_handler` (the defer timer, the
guards, the error taxonomy). An interaction no handler matches is answered anyway
(ephemeral ``unknown_route_message``, or no choices for autocomplete) so the user never
sees "This interaction failed". After a ``reset=True`` handler the select menu is reset
(:mod:`steadybot.components.reset`).

The rest client, clock and settings are read from the bot per interaction, so
:meth:`steadybot.Bot.use_clock` applies to the next interaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from steadybot.components.reset import SelectResetManager
from steadybot.constants import EPHEMERAL_FLAG
from steadybot.interactions.context import Interaction
from steadybot.interactions.payload import (
    AutocompleteInteraction,
    CommandInteraction,
    ComponentInteraction,
    ModalSubmitInteraction,
)
from steadybot.interactions.registry import HandlerRegistry
from steadybot.interactions.responder import Responder, ResponderState
from steadybot.interactions.runner import run_handler
from steadybot.interactions.sinks import InitialResponseSink
from steadybot.interactions.statistics import RuntimeCounters

if TYPE_CHECKING:
    from steadybot.bot import Bot

__all__ = ["Dispatcher", "RoutedInteraction"]

# The bot's logger: these are the bot's messages, wherever the code lives.
log = logging.getLogger("steadybot.bot")

RoutedInteraction = (
    AutocompleteInteraction | CommandInteraction | ComponentInteraction | ModalSubmitInteraction
)
"""Every interaction but PING (the front door answers that itself)."""


class Dispatcher:
    """Runs interactions through the bot's handlers; see the module docstring."""

    def __init__(
        self,
        bot: Bot,
        registry: HandlerRegistry,
        counters: RuntimeCounters,
        resets: Callable[[], SelectResetManager],
    ) -> None:
        self._bot = bot
        self._registry = registry
        self._counters = counters
        self._resets = resets  # a getter: the reset manager is made on first use

    async def handle(
        self, payload: RoutedInteraction, *, arrived_at: float, sink: InitialResponseSink
    ) -> None:
        """Answer ``payload`` with its handler (or the unknown-route answer)."""
        bot = self._bot
        self._counters.add("interactions")
        responder = Responder(
            payload,
            sink=sink,
            rest=bot.rest,
            clock=bot.clock,
            settings=bot.settings,
            counters=self._counters,
            arrived_at=arrived_at,
            ephemeral=True,  # until a handler says otherwise
        )
        interaction = Interaction(payload, responder, rest=bot.rest, clock=bot.clock)
        # Routed from the Interaction, which has parsed the command path once.
        match = self._registry.route(interaction)
        if match is None:
            await self._answer_unknown(interaction)
            return
        responder.ephemeral_default = match.handler.ephemeral
        interaction.args = match.args
        if match.handler.reset is True:
            interaction.menu_resets = self._resets()
        values: Mapping[str, object] = (
            {**interaction.options, **match.args} if match.args else interaction.options
        )
        await run_handler(
            match.handler,
            interaction,
            values,
            clock=bot.clock,
            settings=bot.settings,
            counters=self._counters,
        )
        if match.handler.reset:
            self._reset_menu(interaction)

    def _reset_menu(self, interaction: Interaction) -> None:
        """After a ``reset=True`` handler: the menu shows no pick again."""
        message = interaction.message
        if message is None:
            return
        if interaction.responder.state is ResponderState.MESSAGE_UPDATED:
            self._resets().reset_in_answer()
        elif message.flags & EPHEMERAL_FLAG:
            log.warning(
                "menu on ephemeral message %s: only an update() answer can reset it", message.id
            )
        else:
            self._resets().request(message.channel_id or interaction.channel_id or "", message.id)

    async def _answer_unknown(self, interaction: Interaction) -> None:
        self._counters.add("unknown_routes")
        what = interaction.custom_id or " ".join(interaction.command_path) or "?"
        log.warning(
            "no handler for %s %r (interaction %s)", interaction.type.name, what, interaction.id
        )
        try:
            if isinstance(interaction.payload, AutocompleteInteraction):
                await interaction.autocomplete([])
            else:
                await interaction.respond(self._bot.settings.unknown_route_message, ephemeral=True)
        except Exception:
            log.exception("could not answer the unknown route")
