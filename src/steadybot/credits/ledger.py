"""A credits ledger with two-phase reservations, TigerBeetle-style.

Model (after TigerBeetle's accounts and transfers):

- An **account** (``"user:123"``, ``"guild:9"``) has ``posted`` credits and ``pending``
  credits held by reservations; ``available = posted - pending``.
- Every change is an **entry** appended to a journal: ``deposit`` (+posted),
  ``reserve`` (+pending), ``post`` (-posted by the charged amount, -pending by the
  held amount), ``void`` and ``expire`` (-pending). Entries are never updated or
  deleted (triggers refuse it); the account row's ``posted``/``pending`` are a cache of
  the sums over its entries, written in the same transaction as each entry.
- A **reservation** is a pending transfer: ``reserve`` holds credits for ``timeout``
  seconds; ``post`` charges up to the held amount and releases the rest; ``void``
  releases it all; past its deadline it **expires** (the sweeper, or the first
  ``post``/``void`` that finds it overdue). It leaves ``pending`` exactly once.
- Every request carries an **idempotency key**. The key, the request's fingerprint and
  its result are stored in the request's transaction, so a retried request (after a
  timeout, a crash, a double click) returns the original result and changes nothing; a
  different request with a used key is an :class:`IdempotencyConflict`. A refused
  request (insufficient credits...) stores nothing and may be retried.

Invariants, held inside each transaction: available never below zero unless the account
allows it (checked under the account's row lock); a reservation resolves once (its
``UPDATE ... WHERE state = 'pending'`` must hit one row); balances equal the sum of
entries (same transaction). :meth:`Ledger.reconcile` recomputes them from the journal.

Concurrency: each request locks its account row (``FOR UPDATE`` on PostgreSQL,
``BEGIN IMMEDIATE`` on SQLite) before reading the balance; the sweeper locks accounts in
id order so it cannot deadlock with itself. Two requests with one key racing on
PostgreSQL: the loser's key insert fails, it re-runs and replays the winner's result.

Why our own: the companion bot's story needs holds that survive a crash and expire on
their own, and the bot runs on SQLite or PostgreSQL, not on a TigerBeetle cluster;
no Python library offers two-phase holds with idempotency on those databases.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from steadybot.clock import Clock
from steadybot.credits._journal import (
    MAX_AMOUNT,
    Outcome,
    append_entry,
    balance_from,
    check_account_id,
    check_amount,
    check_key,
    lock_account,
    lock_pending,
    reservation_from,
    reservation_json,
    resolve,
)
from steadybot.credits.errors import (
    AccountConflict,
    AlreadyResolved,
    ExceedsReservation,
    IdempotencyConflict,
    InsufficientCredits,
    LedgerError,
    UnknownAccount,
    UnknownReservation,
)
from steadybot.credits.models import (
    Balance,
    LedgerStatistics,
    ReconcileReport,
    Reservation,
    ReservationState,
)
from steadybot.credits.reconcile import reconcile
from steadybot.credits.schema import LEDGER_MIGRATIONS
from steadybot.storage import Connection, Database, DuplicateKey

if TYPE_CHECKING:
    from steadybot.config import Settings

__all__ = ["MAX_AMOUNT", "Ledger"]

log = logging.getLogger("steadybot.credits")

T = TypeVar("T")


class Ledger:
    """Accounts, append-only entries and two-phase reservations on a :class:`Database`."""

    def __init__(
        self,
        database: Database,
        *,
        clock: Clock | None = None,
        sweep_interval: float = 5.0,
        expire_batch: int = 500,
        overdue_grace: float = 60.0,
    ) -> None:
        if not (sweep_interval > 0 and math.isfinite(sweep_interval)):
            raise ValueError(f"sweep_interval must be positive: {sweep_interval}")
        if expire_batch < 1:
            raise ValueError(f"expire_batch must be >= 1: {expire_batch}")
        self._database = database
        self._clock = clock or database.clock
        self._sweep_interval = sweep_interval
        self._expire_batch = expire_batch
        self._overdue_grace = overdue_grace
        self._sweeper: asyncio.Task[None] | None = None
        self._counts = dict.fromkeys(
            ("deposits", "reservations", "posts", "voids", "expired", "replays", "refused"), 0
        )
        self._sweeps = 0
        self._sweep_failures = 0

    @classmethod
    def from_settings(
        cls, database: Database, settings: Settings, *, clock: Clock | None = None
    ) -> Ledger:
        return cls(
            database,
            clock=clock,
            sweep_interval=settings.credits_sweep_interval,
            expire_batch=settings.credits_expire_batch,
            overdue_grace=settings.credits_overdue_grace,
        )

    async def migrate(self) -> list[int]:
        """Create the ledger's tables if needed (also possible via ``open_database``)."""
        return await self._database.migrate(LEDGER_MIGRATIONS)

    # --- accounts ----------------------------------------------------------------------
    async def open_account(self, account_id: str, *, allow_negative: bool = False) -> Balance:
        """Open the account, or return it when it exists with the same settings."""
        check_account_id(account_id)

        async def body(conn: Connection) -> Balance:
            await conn.execute(
                "INSERT INTO credit_accounts (id, allow_negative, created_at) "
                "VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                account_id,
                allow_negative,
                self._clock.time(),
            )
            row = await conn.fetchrow(
                "SELECT posted, pending, allow_negative FROM credit_accounts WHERE id = $1",
                account_id,
            )
            assert row is not None
            if bool(row["allow_negative"]) != allow_negative:
                raise AccountConflict(
                    f"account {account_id!r} exists with allow_negative="
                    f"{bool(row['allow_negative'])}"
                )
            return balance_from(row, account_id)

        return await self._database.run_transaction(body)

    async def balance(self, account_id: str) -> Balance:
        row = await self._database.fetchrow(
            "SELECT posted, pending, allow_negative FROM credit_accounts WHERE id = $1",
            account_id,
        )
        if row is None:
            raise UnknownAccount(f"no account {account_id!r}")
        return balance_from(row, account_id)

    async def reservation(self, reservation_id: str) -> Reservation:
        row = await self._database.fetchrow(
            "SELECT * FROM credit_reservations WHERE id = $1", reservation_id
        )
        if row is None:
            raise UnknownReservation(f"no reservation {reservation_id!r}")
        return reservation_from(row)

    # --- requests ------------------------------------------------------------------------
    async def deposit(self, account_id: str, amount: int, *, key: str) -> Balance:
        """Add ``amount`` posted credits. Returns the balance right after."""
        check_amount(amount)

        async def body(conn: Connection, now: float) -> Outcome:
            row = await lock_account(conn, account_id)
            await append_entry(conn, account_id, "deposit", amount, 0, None, key, now)
            await conn.execute(
                "UPDATE credit_accounts SET posted = posted + $1 WHERE id = $2",
                amount,
                account_id,
            )
            return Outcome(
                {
                    "posted": row["posted"] + amount,
                    "pending": row["pending"],
                    "allow_negative": bool(row["allow_negative"]),
                }
            )

        result = await self._request(key, "deposit", [account_id, amount], body, "deposits")
        return balance_from(result, account_id)

    async def reserve(
        self, account_id: str, amount: int, *, timeout: float, key: str
    ) -> Reservation:
        """Hold ``amount`` credits for ``timeout`` seconds, or raise
        :class:`InsufficientCredits`."""
        check_amount(amount)
        if not (timeout > 0 and math.isfinite(timeout)):
            raise ValueError(f"timeout must be a positive number of seconds: {timeout}")

        async def body(conn: Connection, now: float) -> Outcome:
            row = await lock_account(conn, account_id)
            available = row["posted"] - row["pending"]
            if available < amount and not row["allow_negative"]:
                raise InsufficientCredits(account_id, available, amount)
            reservation = Reservation(
                id=uuid.uuid4().hex,
                account_id=account_id,
                amount=amount,
                deadline=now + timeout,
                state=ReservationState.PENDING,
            )
            await conn.execute(
                "INSERT INTO credit_reservations (id, account_id, amount, state, deadline, "
                "created_at) VALUES ($1, $2, $3, $4, $5, $6)",
                reservation.id,
                account_id,
                amount,
                str(ReservationState.PENDING),
                reservation.deadline,
                now,
            )
            await append_entry(conn, account_id, "reserve", 0, amount, reservation.id, key, now)
            await conn.execute(
                "UPDATE credit_accounts SET pending = pending + $1 WHERE id = $2",
                amount,
                account_id,
            )
            return Outcome(reservation_json(reservation))

        result = await self._request(
            key, "reserve", [account_id, amount, timeout], body, "reservations"
        )
        return reservation_from(result)

    async def post(
        self,
        reservation_id: str,
        amount: int | None = None,
        *,
        key: str,
        conn: Connection | None = None,
    ) -> Reservation:
        """Charge ``amount`` (default: all) of the reservation and release the rest.

        With ``conn`` the charge joins the caller's transaction (e.g. with the outbox
        item that tells the user), committing or rolling back with it."""
        if amount is not None:
            check_amount(amount)

        async def body(conn: Connection, now: float) -> Outcome:
            row = await lock_pending(conn, reservation_id, now)
            if isinstance(row, Outcome):
                return row
            charged = row["amount"] if amount is None else amount
            if charged > row["amount"]:
                raise ExceedsReservation(reservation_id, row["amount"], charged)
            return await resolve(conn, row, ReservationState.POSTED, charged, key, now)

        result = await self._request(
            key, "post", [reservation_id, amount], body, "posts", conn=conn
        )
        return reservation_from(result)

    async def void(self, reservation_id: str, *, key: str) -> Reservation:
        """Release the whole reservation."""

        async def body(conn: Connection, now: float) -> Outcome:
            row = await lock_pending(conn, reservation_id, now)
            if isinstance(row, Outcome):
                return row
            return await resolve(conn, row, ReservationState.VOIDED, 0, key, now)

        result = await self._request(key, "void", [reservation_id], body, "voids")
        return reservation_from(result)

    async def expire_due(self) -> int:
        """Expire every pending reservation whose deadline passed; returns how many."""
        total = 0
        while True:
            now = self._clock.time()

            async def sweep(conn: Connection, now: float = now) -> tuple[int, int]:
                rows = await conn.fetch(
                    "SELECT * FROM credit_reservations WHERE state = $1 AND deadline <= $2 "
                    "ORDER BY account_id, id LIMIT $3",
                    str(ReservationState.PENDING),
                    now,
                    self._expire_batch,
                )
                for account_id in sorted({row["account_id"] for row in rows}):
                    await lock_account(conn, account_id)
                expired = 0
                for row in rows:
                    with contextlib.suppress(AlreadyResolved):  # resolved before our lock
                        await resolve(conn, row, ReservationState.EXPIRED, 0, None, now)
                        expired += 1
                return len(rows), expired

            fetched, expired = await self._database.run_transaction(sweep)
            total += expired
            if fetched < self._expire_batch:
                break
        self._counts["expired"] += total
        return total

    async def reconcile(self, *, overdue_grace: float | None = None) -> ReconcileReport:
        """Recompute every balance from the entries; list every disagreement."""
        grace = self._overdue_grace if overdue_grace is None else overdue_grace
        return await reconcile(self._database, now=self._clock.time(), overdue_grace=grace)

    # --- sweeper -----------------------------------------------------------------------
    async def start(self) -> None:
        """Run :meth:`expire_due` every ``sweep_interval`` seconds until :meth:`close`."""
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(
                self._sweep_forever(), name="steadybot-credits-sweeper"
            )

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None

    async def _sweep_forever(self) -> None:
        while True:
            await self._clock.sleep(self._sweep_interval)
            try:
                expired = await self.expire_due()
            except Exception as exc:  # keep sweeping: the next pass may succeed
                self._sweep_failures += 1
                log.warning("credits sweeper failed: %s: %s", type(exc).__name__, exc)
                continue
            self._sweeps += 1
            if expired:
                log.info("credits sweeper expired %d reservations", expired)

    def statistics(self) -> LedgerStatistics:
        return LedgerStatistics(
            **self._counts, sweeps=self._sweeps, sweep_failures=self._sweep_failures
        )

    # --- inside --------------------------------------------------------------------------
    async def _request(
        self,
        key: str,
        operation: str,
        arguments: list[object],
        body: Callable[[Connection, float], Awaitable[Outcome]],
        counter: str,
        *,
        conn: Connection | None = None,
    ) -> dict[str, Any]:
        check_key(key)
        fingerprint = json.dumps([operation, *arguments])
        replayed = False

        async def attempt(conn: Connection) -> Outcome:
            nonlocal replayed
            stored = await conn.fetchrow(
                "SELECT fingerprint, result FROM credit_requests WHERE key = $1", key
            )
            if stored is not None:
                if stored["fingerprint"] != fingerprint:
                    raise IdempotencyConflict(key, stored["fingerprint"], fingerprint)
                replayed = True
                return Outcome(json.loads(stored["result"]))
            replayed = False
            now = self._clock.time()
            # Claim the key first: a concurrent twin blocks on this row until we commit,
            # then fails with DuplicateKey and re-runs into the replay above.
            await conn.execute(
                "INSERT INTO credit_requests (key, operation, fingerprint, result, at) "
                "VALUES ($1, $2, $3, $4, $5)",
                key,
                operation,
                fingerprint,
                "{}",
                now,
            )
            outcome = await body(conn, now)
            if outcome.error is None:
                await conn.execute(
                    "UPDATE credit_requests SET result = $1 WHERE key = $2",
                    json.dumps(outcome.result),
                    key,
                )
            else:  # refused, but an expiry on the way is committed: the key stays free
                await conn.execute("DELETE FROM credit_requests WHERE key = $1", key)
            return outcome

        try:
            if conn is not None:
                # In the caller's transaction: no re-run here; a racing twin's
                # DuplicateKey aborts it, and the caller's retry replays the result.
                # A savepoint: a refused request must not leave its claimed key (with
                # an empty result) behind when the caller catches it and commits.
                async with conn.savepoint():
                    outcome = await attempt(conn)
            else:
                outcome = await self._run(attempt)
        except LedgerError:
            self._counts["refused"] += 1
            raise
        if outcome.error is not None:
            self._counts["refused"] += 1
            self._counts["expired"] += 1
            raise outcome.error
        self._counts["replays" if replayed else counter] += 1
        return outcome.result

    async def _run(self, attempt: Callable[[Connection], Awaitable[Outcome]]) -> Outcome:
        try:
            return await self._database.run_transaction(attempt)
        except DuplicateKey:
            # A concurrent request with this key committed first: replay its result.
            return await self._database.run_transaction(attempt)
