"""The handler registry: what the Bot's decorators record, and how an interaction finds it.

Each decorator (``@bot.command``, ``@bot.component``, ``@bot.modal``,
``@bot.autocomplete``) makes one :class:`~steadybot.interactions.handlers.HandlerSpec`:
the function, its defer mode, its default visibility, its own latency tracker (the
adaptive defer reads it), its select-reset mode and, with ``exclusive=`` or
``serialize=``, a guard that runs the call under the bot's coordination
(:mod:`steadybot.interactions.guards`). The spec goes into the
:class:`~steadybot.interactions.routing.Router` by command path or custom_id pattern;
:meth:`HandlerRegistry.route` finds it again for an incoming interaction.

Options are checked when the decorator runs (a bad pattern, ``busy=`` without
``exclusive=``, ``serialize="message"`` on a command): a mistake fails at import, not at
the first click. The guards themselves are made on first use, so registering an
``exclusive`` handler opens no Redis connection.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Literal

from steadybot.config import Settings
from steadybot.interactions.context import Interaction
from steadybot.interactions.defer import DeferMode, LatencyTracker
from steadybot.interactions.guards import GuardOptions, HandlerGuards
from steadybot.interactions.handlers import Handler, HandlerSpec
from steadybot.interactions.payload import (
    AutocompleteInteraction,
    CommandInteraction,
    ComponentInteraction,
    ModalSubmitInteraction,
)
from steadybot.interactions.routing import CustomIdPattern, RouteMatch, Router

__all__ = ["DeferSetting", "HandlerRegistry", "ResetSetting"]

DeferSetting = DeferMode | Literal["auto", "now", "never"]
"""A handler's ``defer=``: a :class:`DeferMode` or its value."""

ResetSetting = bool | Literal["edit"]
"""A component handler's ``reset=`` (see :meth:`steadybot.Bot.component`)."""


class HandlerRegistry:
    """Handler specs by route; see the module docstring."""

    def __init__(self, settings: Settings, guards: Callable[[], HandlerGuards]) -> None:
        # A getter: the guards (and their backend) are made when a guarded handler runs.
        self._settings = settings
        self._guards = guards
        self._router: Router[HandlerSpec] = Router()

    def command(
        self, path: str, defer: DeferSetting, ephemeral: bool, guard: GuardOptions
    ) -> Callable[[Handler], Handler]:
        """A decorator registering a slash command handler under ``path``."""

        def register(func: Handler) -> Handler:
            spec = self._spec(path, func, defer, ephemeral)
            self._guard(spec, guard, component=False)
            self._router.add_command(path, spec)
            return func

        return register

    def pattern(
        self,
        kind: Literal["component", "modal"],
        pattern: str,
        defer: DeferSetting,
        ephemeral: bool,
        *,
        reset: ResetSetting = False,
        guard: GuardOptions,
    ) -> Callable[[Handler], Handler]:
        """A decorator registering a component or modal handler by custom_id pattern."""

        def register(func: Handler) -> Handler:
            spec = self._spec(pattern, func, defer, ephemeral)
            spec.reset = reset
            self._guard(spec, guard, component=kind == "component")
            add = self._router.add_component if kind == "component" else self._router.add_modal
            compiled: CustomIdPattern = add(pattern, spec)
            spec.require(compiled.names)
            return func

        return register

    def autocomplete(self, path: str, option: str | None) -> Callable[[Handler], Handler]:
        """A decorator registering an autocomplete handler for a command (and option)."""

        def register(func: Handler) -> Handler:
            spec = self._spec(f"{path} [autocomplete]", func, DeferMode.NEVER, False)
            self._router.add_autocomplete(path, option, spec)
            return func

        return register

    def handlers(self) -> list[HandlerSpec]:
        """Every registered handler."""
        return self._router.handlers()

    def route(self, interaction: Interaction) -> RouteMatch[HandlerSpec] | None:
        """The handler for ``interaction`` and the arguments its route gives, if any."""
        router = self._router
        payload = interaction.payload
        if isinstance(payload, AutocompleteInteraction):
            return router.find_autocomplete(interaction.command_path, interaction.focused_option)
        if isinstance(payload, CommandInteraction):
            return router.find_command(interaction.command_path)
        if isinstance(payload, ComponentInteraction):
            return router.find_component(payload.data.custom_id)
        if isinstance(payload, ModalSubmitInteraction):
            return router.find_modal(payload.data.custom_id)
        return None

    def _spec(self, name: str, func: Handler, defer: DeferSetting, ephemeral: bool) -> HandlerSpec:
        settings = self._settings
        tracker = LatencyTracker(
            window=settings.latency_window,
            min_samples=settings.latency_min_samples,
            percentile=settings.adaptive_percentile,
        )
        return HandlerSpec(
            name=name, func=func, defer=DeferMode(defer), ephemeral=ephemeral, tracker=tracker
        )

    def _guard(self, spec: HandlerSpec, options: GuardOptions, *, component: bool) -> None:
        if not options.active:
            if options.busy is not None:
                raise ValueError(f"handler {spec.name!r}: busy= needs exclusive=")
            return
        options.check(spec.name, component=component)
        name = spec.name
        guards = self._guards

        def guard(
            interaction: Interaction, call: Callable[[], Awaitable[object]]
        ) -> Awaitable[object]:
            return guards().run(options, name, interaction, call)

        spec.guard = guard
