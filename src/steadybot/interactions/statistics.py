"""Counters of the interaction runtime, read through a frozen snapshot."""

from __future__ import annotations

from dataclasses import dataclass, fields

__all__ = ["RuntimeCounters", "RuntimeStatistics"]


@dataclass(frozen=True, slots=True)
class RuntimeStatistics:
    """What the runtime did since start; metrics and health read this record."""

    interactions: int = 0  # dispatched to a handler (PINGs excluded)
    answered_directly: int = 0  # initial response was the handler's own answer
    deferred_automatically: int = 0  # `auto` deferred at the defer point
    deferred_early: int = 0  # `auto` deferred at once because the handler was slow lately
    deferred_explicitly: int = 0  # the handler (or `now`) deferred
    missed_deadline: int = 0  # no initial response within 3 s: the user saw a failure
    token_expired: int = 0  # a token-bound call found the token dead
    fallbacks_delivered: int = 0  # an answer delivered through the bot token instead
    undeliverable: int = 0  # an answer that no route could deliver (logged as error)
    handler_errors: int = 0  # handlers that raised
    handlers_cancelled: int = 0  # handlers cut off by shutdown past the grace period
    unanswered_handlers: int = 0  # handlers that returned without answering
    unknown_routes: int = 0  # interactions no handler matched
    progress_edits: int = 0  # progress updates written
    followups_delivered: int = 0  # token-bound calls after the initial response that worked
    followups_failed: int = 0  # ... that failed for good (the token was still alive)


class RuntimeCounters:
    """The mutable counterpart of :class:`RuntimeStatistics` (one event loop only)."""

    __slots__ = tuple(f.name for f in fields(RuntimeStatistics))

    def __init__(self) -> None:
        for name in self.__slots__:
            setattr(self, name, 0)

    def add(self, name: str, amount: int = 1) -> None:
        """Increase the counter ``name``; an unknown name is a programming error."""
        setattr(self, name, getattr(self, name) + amount)

    def snapshot(self) -> RuntimeStatistics:
        """A frozen copy of the counters."""
        return RuntimeStatistics(**{name: getattr(self, name) for name in self.__slots__})
