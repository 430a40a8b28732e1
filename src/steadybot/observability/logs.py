"""Structured logs: JSON in production, readable in a terminal, tokens never shown.

steadybot's modules log through the standard library (``logging.getLogger``), so a bot
may configure logging however it likes. :func:`configure_logging` is the recommended
setup (``steadybot serve`` calls it): structlog's stdlib integration formats every
record, steadybot's and the bot's own, as one JSON object per line, or as aligned,
coloured text when writing to a terminal.

Every line logged while an interaction is handled carries ``interaction_id``,
``handler``, ``guild_id``, ``user_id`` and ``elapsed`` (seconds since the request
arrived). The runner sets one context variable per interaction (:data:`INTERACTION`);
the :func:`add_interaction_context` processor reads the fields off the interaction when
a line is written, so the hot path pays one ``ContextVar.set`` of a tuple and nothing
per log call that is filtered out.

Secrets: the :func:`redact` processor replaces the bot token and the public key
given to :func:`configure_logging`, ``Bot <token>`` authorisations, and anything that
looks like an interaction token (a run of 100+ URL-safe characters), in the message and
every string field. The runtime itself never logs a token (errors name route
templates); this is the net under it.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, MutableMapping
from contextvars import ContextVar
from typing import Any, Protocol, TextIO

import structlog

from steadybot.clock import Clock

__all__ = [
    "INTERACTION",
    "LoggedInteraction",
    "add_interaction_context",
    "configure_logging",
    "redact",
]

EventDict = MutableMapping[str, Any]
REDACTED = "[redacted]"
_TOKEN_LIKE = re.compile(r"[A-Za-z0-9_\-.]{100,}")
_BOT_AUTH = re.compile(r"Bot\s+[A-Za-z0-9_\-.]{20,}")


class LoggedInteraction(Protocol):
    """What the log context reads off the interaction being handled (only when a line
    is written: the hot path stores a reference and nothing else)."""

    @property
    def id(self) -> str: ...
    @property
    def guild_id(self) -> str | None: ...
    @property
    def user_id(self) -> str | None: ...
    @property
    def responder(self) -> Any: ...


# (interaction, handler name, clock) of the interaction this task is handling.
INTERACTION: ContextVar[tuple[LoggedInteraction, str, Clock] | None] = ContextVar(
    "steadybot_interaction", default=None
)
_secrets: list[str] = []


def add_interaction_context(_logger: object, _method: str, event: EventDict) -> EventDict:
    """structlog processor: the current interaction's fields and ``elapsed``."""
    context = INTERACTION.get()
    if context is not None:
        interaction, handler, clock = context
        event.setdefault("interaction_id", interaction.id)
        event.setdefault("handler", handler)
        guild_id, user_id = interaction.guild_id, interaction.user_id
        if guild_id is not None:
            event.setdefault("guild_id", guild_id)
        if user_id is not None:
            event.setdefault("user_id", user_id)
        arrived_at = interaction.responder.arrived_at
        event.setdefault("elapsed", round(clock.monotonic() - arrived_at, 4))
    return event


def _scrub(text: str) -> str:
    for secret in _secrets:
        if secret and secret in text:
            text = text.replace(secret, REDACTED)
    text = _BOT_AUTH.sub(f"Bot {REDACTED}", text)
    return _TOKEN_LIKE.sub(REDACTED, text)


def redact(_logger: object, _method: str, event: EventDict) -> EventDict:
    """structlog processor: no secret survives in any string field."""
    for key, value in event.items():
        if isinstance(value, str):
            event[key] = _scrub(value)
    return event


def _render_exception(_logger: object, _method: str, event: EventDict) -> EventDict:
    # Format tracebacks before redaction so their text is scrubbed too.
    return structlog.processors.format_exc_info(_logger, _method, event)


def configure_logging(
    *,
    json: bool | None = None,
    level: int | str = logging.INFO,
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
) -> logging.Handler:
    """Route all stdlib logging through structlog; returns the installed handler.

    ``json`` None: JSON unless ``stream`` is a terminal. ``secrets`` are redacted
    wherever they appear (pass the bot token). Calling it again replaces the handler.
    """
    _secrets[:] = [s for s in secrets if s]
    out = stream if stream is not None else sys.stderr
    as_json = json if json is not None else not out.isatty()
    renderer: Any = (
        structlog.processors.JSONRenderer(sort_keys=False)
        if as_json
        else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    pre_chain: list[Any] = [
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_interaction_context,
        structlog.stdlib.ExtraAdder(),
    ]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=pre_chain,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _render_exception,
            redact,
            renderer,
        ],
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    handler.set_name("steadybot")
    root = logging.getLogger()
    for existing in list(root.handlers):
        if existing.get_name() == "steadybot":
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    return handler
