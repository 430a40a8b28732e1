"""Credits: a ledger with two-phase reservations and idempotent requests.

See ``docs/credits.md`` and the theory in :mod:`steadybot.credits.ledger`.
"""

from steadybot.credits.errors import (
    AccountConflict,
    AlreadyResolved,
    ExceedsReservation,
    IdempotencyConflict,
    InsufficientCredits,
    LedgerError,
    ReservationExpired,
    UnknownAccount,
    UnknownReservation,
)
from steadybot.credits.ledger import MAX_AMOUNT, Ledger
from steadybot.credits.models import (
    Balance,
    Discrepancy,
    LedgerStatistics,
    ReconcileReport,
    Reservation,
    ReservationState,
)
from steadybot.credits.schema import LEDGER_MIGRATIONS, LEDGER_SCOPE

__all__ = [
    "LEDGER_MIGRATIONS",
    "LEDGER_SCOPE",
    "MAX_AMOUNT",
    "AccountConflict",
    "AlreadyResolved",
    "Balance",
    "Discrepancy",
    "ExceedsReservation",
    "IdempotencyConflict",
    "InsufficientCredits",
    "Ledger",
    "LedgerError",
    "LedgerStatistics",
    "ReconcileReport",
    "Reservation",
    "ReservationExpired",
    "ReservationState",
    "UnknownAccount",
    "UnknownReservation",
]
