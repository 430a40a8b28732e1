"""The outbox's error types."""

from __future__ import annotations

from steadybot.errors import SteadybotError

__all__ = ["IllegalOutboxTransition", "OutboxError"]


class OutboxError(SteadybotError):
    """An outbox operation failed (a bad item, a closed relay...)."""


class IllegalOutboxTransition(OutboxError):
    """An item was asked to move between two states its lifecycle does not connect."""

    def __init__(self, current: str, target: str) -> None:
        self.current = current
        self.target = target
        super().__init__(f"an outbox item cannot go from {current} to {target}")
