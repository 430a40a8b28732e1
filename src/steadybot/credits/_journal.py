"""The ledger's journal operations, inside a transaction: locks, entries, resolutions.

Every balance change goes through :func:`append_entry` plus a cache update in the same
transaction; every reservation leaves ``pending`` through :func:`resolve`, whose
``UPDATE ... WHERE state = 'pending'`` must change exactly one row.
"""

from __future__ import annotations

from typing import Any, Final

from steadybot.credits.errors import (
    AlreadyResolved,
    LedgerError,
    ReservationExpired,
    UnknownAccount,
    UnknownReservation,
)
from steadybot.credits.models import Balance, Reservation, ReservationState
from steadybot.storage import Connection

__all__ = [
    "MAX_AMOUNT",
    "Outcome",
    "append_entry",
    "balance_from",
    "check_account_id",
    "check_amount",
    "check_key",
    "lock_account",
    "lock_pending",
    "reservation_from",
    "reservation_json",
    "resolve",
]

MAX_AMOUNT: Final = 10**15
"""Largest amount of one request: sums of many stay far inside 64-bit integers."""

_MAX_KEY_LENGTH: Final = 200


def check_amount(amount: object, what: str = "amount") -> int:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise TypeError(f"{what} must be an int, got {type(amount).__name__}")
    if not 1 <= amount <= MAX_AMOUNT:
        raise ValueError(f"{what} must be between 1 and {MAX_AMOUNT}, got {amount}")
    return amount


def check_key(key: str) -> None:
    if not isinstance(key, str) or not key or len(key) > _MAX_KEY_LENGTH:
        raise ValueError(f"an idempotency key is a non-empty str of <= {_MAX_KEY_LENGTH} chars")


def check_account_id(account_id: str) -> None:
    if not isinstance(account_id, str) or not account_id or len(account_id) > _MAX_KEY_LENGTH:
        raise ValueError(f"an account id is a non-empty str of <= {_MAX_KEY_LENGTH} chars")


def reservation_from(row: Any) -> Reservation:
    return Reservation(
        id=row["id"],
        account_id=row["account_id"],
        amount=row["amount"],
        deadline=row["deadline"],
        state=ReservationState(row["state"]),
        posted_amount=row["posted_amount"],
    )


def reservation_json(reservation: Reservation) -> dict[str, object]:
    return {
        "id": reservation.id,
        "account_id": reservation.account_id,
        "amount": reservation.amount,
        "deadline": reservation.deadline,
        "state": str(reservation.state),
        "posted_amount": reservation.posted_amount,
    }


def balance_from(row: Any, account_id: str) -> Balance:
    return Balance(
        account_id=account_id,
        posted=row["posted"],
        pending=row["pending"],
        allow_negative=bool(row["allow_negative"]),
    )


class Outcome:
    """What a request's transaction produced: a result to store, or an error to raise
    after committing (an expiry found on the way is kept)."""

    __slots__ = ("error", "result")

    def __init__(self, result: dict[str, object], error: LedgerError | None = None) -> None:
        self.result = result
        self.error = error


async def lock_account(conn: Connection, account_id: str) -> Any:
    row = await conn.fetchrow(
        "SELECT posted, pending, allow_negative FROM credit_accounts WHERE id = $1"
        + conn.for_update,
        account_id,
    )
    if row is None:
        raise UnknownAccount(f"no account {account_id!r}")
    return row


async def lock_pending(conn: Connection, reservation_id: str, now: float) -> Any | Outcome:
    """The reservation, pending, with its account locked; or the expiry outcome."""
    account_id = await conn.fetchval(
        "SELECT account_id FROM credit_reservations WHERE id = $1", reservation_id
    )
    if account_id is None:
        raise UnknownReservation(f"no reservation {reservation_id!r}")
    await lock_account(conn, account_id)
    # Read again under the account's lock: every transition of it takes that lock.
    row = await conn.fetchrow("SELECT * FROM credit_reservations WHERE id = $1", reservation_id)
    assert row is not None
    if row["state"] != ReservationState.PENDING:
        raise AlreadyResolved(reservation_id, row["state"])
    if row["deadline"] <= now:
        await resolve(conn, row, ReservationState.EXPIRED, 0, None, now)
        return Outcome({}, ReservationExpired(reservation_id))
    return row


async def resolve(
    conn: Connection,
    row: Any,
    state: ReservationState,
    charged: int,
    key: str | None,
    now: float,
) -> Outcome:
    """Move a pending reservation to ``state``: one entry, one cache update."""
    changed = await conn.execute(
        "UPDATE credit_reservations SET state = $1, posted_amount = $2, resolved_at = $3 "
        "WHERE id = $4 AND state = $5",
        str(state),
        charged,
        now,
        row["id"],
        str(ReservationState.PENDING),
    )
    if changed != 1:
        raise AlreadyResolved(row["id"], "resolved")
    kind = {"posted": "post", "voided": "void", "expired": "expire"}[str(state)]
    held = row["amount"]
    await append_entry(conn, row["account_id"], kind, -charged, -held, row["id"], key, now)
    await conn.execute(
        "UPDATE credit_accounts SET posted = posted - $1, pending = pending - $2 WHERE id = $3",
        charged,
        held,
        row["account_id"],
    )
    resolved = dict(row) | {"state": str(state), "posted_amount": charged}
    return Outcome(reservation_json(reservation_from(resolved)))


async def append_entry(
    conn: Connection,
    account_id: str,
    kind: str,
    posted_delta: int,
    pending_delta: int,
    reservation_id: str | None,
    key: str | None,
    now: float,
) -> None:
    await conn.execute(
        "INSERT INTO credit_entries (account_id, kind, posted_delta, pending_delta, "
        "reservation_id, request_key, at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        account_id,
        kind,
        posted_delta,
        pending_delta,
        reservation_id,
        key,
        now,
    )
