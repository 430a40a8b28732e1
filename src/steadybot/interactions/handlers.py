"""A registered handler and how it is called."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from steadybot.interactions.defer import DeferMode, LatencyTracker
from steadybot.observability.metrics import HandlerMetrics

if TYPE_CHECKING:
    from steadybot.interactions.context import Interaction

__all__ = ["Guard", "Handler", "HandlerSpec"]

Handler = Callable[..., Awaitable[object]]
"""``async def handler(interaction, **arguments)``."""
Guard = Callable[["Interaction", Callable[[], Awaitable[object]]], Awaitable[object]]
"""Runs a handler's call under its ``exclusive=``/``serialize=`` options
(:mod:`steadybot.interactions.guards`)."""


@dataclass(slots=True)
class HandlerSpec:
    """A handler with its answering policy and its latency history."""

    name: str
    func: Handler
    defer: DeferMode
    ephemeral: bool
    tracker: LatencyTracker
    # A select whose menu is reset after every pick: True (in the answer when it can)
    # or "edit" (always by the reset manager's edit).
    reset: bool | Literal["edit"] = False
    metrics: HandlerMetrics = field(default_factory=HandlerMetrics)
    guard: Guard | None = None
    _parameters: tuple[str, ...] = field(default=(), init=False)
    _defaults: frozenset[str] = field(default=frozenset(), init=False)
    _takes_all: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        if not inspect.iscoroutinefunction(self.func):
            raise TypeError(f"handler {self.name!r} must be an async function")
        params = list(inspect.signature(self.func).parameters.values())[1:]
        self._takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
        named = [p for p in params if p.kind is not inspect.Parameter.VAR_KEYWORD]
        self._parameters = tuple(p.name for p in named)
        self._defaults = frozenset(p.name for p in named if p.default is not p.empty)

    def require(self, names: frozenset[str]) -> None:
        """Check at registration that every parameter without a default can be filled."""
        unknown = [n for n in self._parameters if n not in names and n not in self._defaults]
        if unknown:
            raise TypeError(f"handler {self.name!r}: no value for parameter(s) {unknown}")

    def arguments(self, values: Mapping[str, object]) -> dict[str, object]:
        """Keyword arguments for one call: options and custom_id arguments by name.

        An optional command option the user left out arrives as None unless the
        parameter has a default.
        """
        if self._takes_all:
            return dict(values)
        found: dict[str, object] = {}
        for name in self._parameters:
            if name in values:
                found[name] = values[name]
            elif name not in self._defaults:
                found[name] = None
        return found
