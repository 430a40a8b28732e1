"""Routing an interaction to its handler.

Commands are found by their *path*: the command name followed by the sub-command
group and sub-command names (``("queue", "join")``). Components and modals are found
by their ``custom_id``: a handler registers a *pattern* such as ``"apply"`` (exact) or
``"role:{role_id:int}:{action}"``, and the typed arguments are parsed out of the id, so
state lives in the id rather than in a process-local map that a restart loses.
Exact ids are a dict lookup; patterns are tried in registration order among those whose
literal prefix the id starts with. Autocomplete is routed by command path and, when
registered so, the focused option's name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Generic, TypeVar

from steadybot.constants import CUSTOM_ID_MAX_LENGTH, OptionType
from steadybot.interactions.payload import CommandOption

__all__ = ["CustomIdPattern", "RouteMatch", "Router", "command_path"]

H = TypeVar("H")

_PLACEHOLDER = re.compile(r"\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::(?P<kind>[a-z]+))?\}")
_CONVERTERS: Mapping[str, tuple[str, Callable[[str], object]]] = {
    "str": (r"[^:]+", str),
    "int": (r"-?\d+", int),
    "rest": (r".*", str),
}


class CustomIdPattern:
    """A ``custom_id`` pattern with typed placeholders: ``{name}``, ``{name:int}``,
    ``{name:rest}`` (the rest of the id, separators included)."""

    def __init__(self, pattern: str) -> None:
        if not pattern:
            raise ValueError("a custom_id pattern cannot be empty")
        self.pattern = pattern
        regex: list[str] = []
        self._converters: dict[str, Callable[[str], object]] = {}
        position = 0
        for found in _PLACEHOLDER.finditer(pattern):
            regex.append(re.escape(pattern[position : found.start()]))
            name, kind = found["name"], found["kind"] or "str"
            if kind not in _CONVERTERS:
                raise ValueError(f"unknown placeholder type {kind!r} in {pattern!r}")
            if name in self._converters:
                raise ValueError(f"placeholder {name!r} appears twice in {pattern!r}")
            fragment, convert = _CONVERTERS[kind]
            regex.append(f"(?P<{name}>{fragment})")
            self._converters[name] = convert
            position = found.end()
        regex.append(re.escape(pattern[position:]))
        self.literal_prefix = pattern.split("{", 1)[0]
        if len(self.literal_prefix) > CUSTOM_ID_MAX_LENGTH:
            raise ValueError(f"{pattern!r} cannot match: ids are at most 100 characters")
        self.is_exact = not self._converters
        self.names: frozenset[str] = frozenset(self._converters)
        self._regex = re.compile("".join(regex))

    def match(self, custom_id: str) -> dict[str, object] | None:
        """The typed arguments when ``custom_id`` matches, else None."""
        if self.is_exact:
            return {} if custom_id == self.pattern else None
        found = self._regex.fullmatch(custom_id)
        if found is None:
            return None
        return {name: convert(found[name]) for name, convert in self._converters.items()}

    def format(self, **values: object) -> str:
        """Build a custom_id from this pattern; checks Discord's 100-character limit."""
        missing = set(self._converters) - set(values)
        if missing:
            raise ValueError(f"{self.pattern!r} needs {sorted(missing)}")
        custom_id = _PLACEHOLDER.sub(lambda m: str(values[m["name"]]), self.pattern)
        if not 1 <= len(custom_id) <= CUSTOM_ID_MAX_LENGTH:
            raise ValueError(f"custom_id {custom_id!r} exceeds {CUSTOM_ID_MAX_LENGTH} chars")
        if self.match(custom_id) is None:
            raise ValueError(f"values do not round-trip through {self.pattern!r}")
        return custom_id


@dataclass(frozen=True, slots=True)
class RouteMatch(Generic[H]):
    """A found handler and the arguments parsed out of the id."""

    handler: H
    args: Mapping[str, object]


_NO_ARGS: Final[Mapping[str, object]] = MappingProxyType({})
"""The arguments of a match without placeholders; read-only, as it is shared."""


class _PatternTable(Generic[H]):
    def __init__(self, kind: str) -> None:
        self._kind = kind
        self._exact: dict[str, RouteMatch[H]] = {}  # built once, like command routes
        self._patterns: list[tuple[CustomIdPattern, H]] = []

    def handlers(self) -> list[H]:
        return [
            *(match.handler for match in self._exact.values()),
            *(handler for _, handler in self._patterns),
        ]

    def add(self, pattern: str, handler: H) -> CustomIdPattern:
        compiled = CustomIdPattern(pattern)
        if compiled.is_exact:
            if pattern in self._exact:
                raise ValueError(f"{self._kind} {pattern!r} is already registered")
            self._exact[pattern] = RouteMatch(handler, _NO_ARGS)
        else:
            if any(existing.pattern == pattern for existing, _ in self._patterns):
                raise ValueError(f"{self._kind} pattern {pattern!r} is already registered")
            self._patterns.append((compiled, handler))
        return compiled

    def find(self, custom_id: str) -> RouteMatch[H] | None:
        exact = self._exact.get(custom_id)
        if exact is not None:
            return exact
        for compiled, candidate in self._patterns:
            if custom_id.startswith(compiled.literal_prefix):
                args = compiled.match(custom_id)
                if args is not None:
                    return RouteMatch(candidate, args)
        return None


def command_path(
    name: str, options: Sequence[CommandOption]
) -> tuple[tuple[str, ...], list[CommandOption]]:
    """The command's path (name, group, sub-command) and its leaf options."""
    if not options:  # most commands: no sub-command, no option
        return (name,), []
    path = [name]
    leaf = list(options)
    while len(leaf) == 1 and leaf[0].type in (OptionType.SUB_COMMAND, OptionType.SUB_COMMAND_GROUP):
        path.append(leaf[0].name)
        leaf = list(leaf[0].options)
    return tuple(path), leaf


class Router(Generic[H]):
    """Handlers by command path, custom_id pattern, modal id and autocomplete option."""

    def __init__(self) -> None:
        # Command routes carry no arguments: each one's match is built once, at
        # registration, rather than per interaction.
        self._commands: dict[tuple[str, ...], RouteMatch[H]] = {}
        self._autocomplete: dict[tuple[tuple[str, ...], str | None], RouteMatch[H]] = {}
        self._components = _PatternTable[H]("component")
        self._modals = _PatternTable[H]("modal")

    @staticmethod
    def split_path(path: str) -> tuple[str, ...]:
        """``"queue join"`` → ``("queue", "join")``; at most name, group, sub-command."""
        parts = tuple(path.split())
        if not 1 <= len(parts) <= 3:
            raise ValueError(f"a command path has 1-3 names, got {path!r}")
        return parts

    def add_command(self, path: str, handler: H) -> None:
        key = self.split_path(path)
        if key in self._commands:
            raise ValueError(f"command {path!r} is already registered")
        self._commands[key] = RouteMatch(handler, _NO_ARGS)

    def add_component(self, pattern: str, handler: H) -> CustomIdPattern:
        return self._components.add(pattern, handler)

    def add_modal(self, pattern: str, handler: H) -> CustomIdPattern:
        return self._modals.add(pattern, handler)

    def add_autocomplete(self, path: str, option: str | None, handler: H) -> None:
        key = (self.split_path(path), option)
        if key in self._autocomplete:
            raise ValueError(f"autocomplete for {path!r} / {option!r} is already registered")
        self._autocomplete[key] = RouteMatch(handler, _NO_ARGS)

    def handlers(self) -> list[H]:
        """Every registered handler, once per registration."""
        return [
            *(match.handler for match in self._commands.values()),
            *(match.handler for match in self._autocomplete.values()),
            *self._components.handlers(),
            *self._modals.handlers(),
        ]

    def find_command(self, path: tuple[str, ...]) -> RouteMatch[H] | None:
        return self._commands.get(path)

    def find_component(self, custom_id: str) -> RouteMatch[H] | None:
        return self._components.find(custom_id)

    def find_modal(self, custom_id: str) -> RouteMatch[H] | None:
        return self._modals.find(custom_id)

    def find_autocomplete(self, path: tuple[str, ...], focused: str | None) -> RouteMatch[H] | None:
        return self._autocomplete.get((path, focused)) or self._autocomplete.get((path, None))
