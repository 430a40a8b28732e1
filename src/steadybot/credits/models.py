"""The ledger's records: balances, reservations, reconciliation reports, statistics."""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = [
    "Balance",
    "Discrepancy",
    "LedgerStatistics",
    "ReconcileReport",
    "Reservation",
    "ReservationState",
]


class ReservationState(enum.StrEnum):
    """Where a reservation is in its life; it leaves PENDING exactly once."""

    PENDING = "pending"  # holds credits until posted, voided or its deadline passes
    POSTED = "posted"  # charged (all or part); the rest was released
    VOIDED = "voided"  # released on request
    EXPIRED = "expired"  # released because its deadline passed


@dataclass(frozen=True, slots=True)
class Balance:
    """An account's credits. ``available = posted - pending``."""

    account_id: str
    posted: int  # credits the account has (deposits minus posted charges)
    pending: int  # credits held by pending reservations
    allow_negative: bool = False

    @property
    def available(self) -> int:
        return self.posted - self.pending


@dataclass(frozen=True, slots=True)
class Reservation:
    """A two-phase charge: credits held until posted (charged) or released."""

    id: str
    account_id: str
    amount: int  # held
    deadline: float  # wall-clock seconds (clock.time()) after which it expires
    state: ReservationState
    posted_amount: int = 0  # charged, once POSTED (<= amount)


@dataclass(frozen=True, slots=True)
class Discrepancy:
    """One thing :meth:`Ledger.reconcile` found wrong."""

    kind: str  # "posted" | "pending" | "negative" | "resolution" | "overdue"
    account_id: str
    expected: int | float | None  # what the entries (or the rules) say
    actual: int | float | None  # what the cached row says
    reservation_id: str | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    """Balances recomputed from the entries, and every disagreement found."""

    accounts: int
    entries: int
    reservations: int
    discrepancies: tuple[Discrepancy, ...]

    @property
    def ok(self) -> bool:
        return not self.discrepancies


@dataclass(frozen=True, slots=True)
class LedgerStatistics:
    """What this process's :class:`Ledger` did since it was made."""

    deposits: int
    reservations: int
    posts: int
    voids: int
    expired: int
    replays: int  # requests answered from their idempotency key, changing nothing
    refused: int  # LedgerError raised (insufficient, already resolved, conflict...)
    sweeps: int
    sweep_failures: int
