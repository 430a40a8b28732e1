"""The ledger's error types."""

from __future__ import annotations

from steadybot.errors import SteadybotError

__all__ = [
    "AccountConflict",
    "AlreadyResolved",
    "ExceedsReservation",
    "IdempotencyConflict",
    "InsufficientCredits",
    "LedgerError",
    "ReservationExpired",
    "UnknownAccount",
    "UnknownReservation",
]


class LedgerError(SteadybotError):
    """A ledger request was refused; nothing was changed."""


class UnknownAccount(LedgerError):
    """No account has this id (open it first)."""


class AccountConflict(LedgerError):
    """The account exists with different settings than the ones asked for."""


class UnknownReservation(LedgerError):
    """No reservation has this id."""


class InsufficientCredits(LedgerError):
    """The account's available credits are fewer than the amount asked for."""

    def __init__(self, account_id: str, available: int, requested: int) -> None:
        self.account_id = account_id
        self.available = available
        self.requested = requested
        super().__init__(f"account {account_id!r} has {available} available, {requested} asked")


class AlreadyResolved(LedgerError):
    """The reservation was already posted, voided or expired; it resolves only once."""

    def __init__(self, reservation_id: str, state: str) -> None:
        self.reservation_id = reservation_id
        self.state = state
        super().__init__(f"reservation {reservation_id} is already {state}")


class ReservationExpired(AlreadyResolved):
    """The reservation's deadline passed before it was posted or voided; it is expired
    now (its credits are released) and cannot be posted."""

    def __init__(self, reservation_id: str) -> None:
        super().__init__(reservation_id, "expired")


class IdempotencyConflict(LedgerError):
    """An idempotency key was reused for a different request."""

    def __init__(self, key: str, original: str, given: str) -> None:
        self.key = key
        self.original = original
        self.given = given
        super().__init__(f"idempotency key {key!r} was used for {original}, not {given}")


class ExceedsReservation(LedgerError):
    """A post asked to charge more than the reservation holds."""

    def __init__(self, reservation_id: str, reserved: int, requested: int) -> None:
        self.reservation_id = reservation_id
        self.reserved = reserved
        self.requested = requested
        super().__init__(f"reservation {reservation_id} holds {reserved}; cannot post {requested}")
