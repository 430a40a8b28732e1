"""The ledger against a model, in random order and concurrently, on SQLite and PostgreSQL.

A hypothesis state machine opens accounts, deposits, reserves, posts, voids, lets time
pass (a ManualClock), expires, replays earlier requests by their idempotency key, reuses
keys for other requests, and fires concurrent requests at one account with
``asyncio.gather``. After every step it checks: balances equal the model's; available is
never negative on an account that does not allow it; ``reconcile`` finds nothing (cached
balances equal the sums of entries, every reservation resolved at most once); every
reservation's state equals the model's.

The machine runs its own event loop (hypothesis calls rules synchronously); one
database (a fresh SQLite file or PostgreSQL schema) serves every example of a run, each
example with accounts of its own. ``STEADYBOT_LEDGER_EXAMPLES`` raises the number of
examples for a longer hunt; a failure prints the blob to replay it.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import uuid
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from storage_fixtures import BACKENDS, fresh_database_url

from steadybot.clock import ManualClock
from steadybot.credits import (
    LEDGER_MIGRATIONS,
    AlreadyResolved,
    Balance,
    IdempotencyConflict,
    InsufficientCredits,
    Ledger,
    Reservation,
    ReservationExpired,
    ReservationState,
)
from steadybot.storage import Database, open_database

pytestmark = pytest.mark.services

T = TypeVar("T")

EXAMPLES = int(os.environ.get("STEADYBOT_LEDGER_EXAMPLES", "12"))
STEPS = 25


@dataclass
class ModelAccount:
    allow_negative: bool
    posted: int = 0
    pending: int = 0

    @property
    def available(self) -> int:
        return self.posted - self.pending


@dataclass
class ModelReservation:
    account: str
    amount: int
    deadline: float
    state: ReservationState = ReservationState.PENDING
    posted_amount: int = 0


@dataclass
class Request:
    operation: str  # deposit | reserve | post | void
    arguments: tuple[Any, ...]
    key: str
    result: Balance | Reservation


@dataclass
class World:
    loop: asyncio.AbstractEventLoop
    database: Database
    clock: ManualClock
    examples: int = 0


class LedgerMachine(RuleBasedStateMachine):
    world: World  # set by machine_for

    def __init__(self) -> None:
        super().__init__()
        self.world.examples += 1
        self.prefix = uuid.uuid4().hex[:10]
        self.ledger = Ledger(self.world.database, clock=self.world.clock)
        self.accounts: dict[str, ModelAccount] = {}
        self.reservations: dict[str, ModelReservation] = {}
        self.requests: list[Request] = []
        self.keys = itertools.count()

    # --- helpers ---------------------------------------------------------------------
    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.world.loop.run_until_complete(coroutine)

    @staticmethod
    def pick(data: st.DataObject, items: Sequence[T] | Mapping[T, object]) -> T:
        """An item by position: the draw's shape never depends on what the database
        did (which of concurrent requests won), so hypothesis can replay and shrink."""
        index = data.draw(st.integers(0, 63))
        return list(items)[index % len(items)]

    def key(self) -> str:
        return f"{self.prefix}:k{next(self.keys)}"

    def now(self) -> float:
        return self.world.clock.time()

    def expire_in_model(self, reservation_id: str) -> None:
        reservation = self.reservations[reservation_id]
        reservation.state = ReservationState.EXPIRED
        self.accounts[reservation.account].pending -= reservation.amount

    def expected_resolution_error(self, reservation_id: str) -> type[Exception] | None:
        """What a post/void must raise now, per the model (None: it succeeds)."""
        reservation = self.reservations[reservation_id]
        if reservation.state is not ReservationState.PENDING:
            return AlreadyResolved
        if reservation.deadline <= self.now():
            return ReservationExpired
        return None

    # --- rules -----------------------------------------------------------------------
    @rule(allow_negative=st.booleans(), deposit=st.integers(0, 300))
    def open_account(self, allow_negative: bool, deposit: int) -> None:
        account = f"{self.prefix}:user{len(self.accounts)}"
        self.run(self.ledger.open_account(account, allow_negative=allow_negative))
        self.accounts[account] = ModelAccount(allow_negative)
        if deposit:
            self.deposit_into(account, deposit)

    def deposit_into(self, account: str, amount: int) -> None:
        key = self.key()
        balance = self.run(self.ledger.deposit(account, amount, key=key))
        self.accounts[account].posted += amount
        model = self.accounts[account]
        assert (balance.posted, balance.pending) == (model.posted, model.pending)
        self.requests.append(Request("deposit", (account, amount), key, balance))

    @precondition(lambda self: self.accounts)
    @rule(data=st.data(), amount=st.integers(1, 300))
    def deposit(self, data: st.DataObject, amount: int) -> None:
        self.deposit_into(self.pick(data, self.accounts), amount)

    @precondition(lambda self: self.accounts)
    @rule(data=st.data(), amount=st.integers(1, 400), timeout=st.sampled_from([1, 5, 30]))
    def reserve(self, data: st.DataObject, amount: int, timeout: int) -> None:
        self.reserve_in(self.pick(data, self.accounts), amount, timeout)

    def reserve_in(self, account: str, amount: int, timeout: int) -> None:
        model = self.accounts[account]
        key = self.key()
        if model.available < amount and not model.allow_negative:
            with pytest.raises(InsufficientCredits):
                self.run(self.ledger.reserve(account, amount, timeout=timeout, key=key))
            return
        held = self.run(self.ledger.reserve(account, amount, timeout=timeout, key=key))
        assert held.deadline == self.now() + timeout
        model.pending += amount
        self.reservations[held.id] = ModelReservation(account, amount, held.deadline)
        self.requests.append(Request("reserve", (account, amount, timeout), key, held))

    @precondition(lambda self: self.accounts)
    @rule(data=st.data(), delta=st.sampled_from([-1, 0, 1]))
    def reserve_at_the_limit(self, data: st.DataObject, delta: int) -> None:
        """Reserve one less, exactly, or one more than available: the boundary."""
        account = self.pick(data, self.accounts)
        self.reserve_in(account, max(1, self.accounts[account].available + delta), 5)

    @precondition(lambda self: self.reservations)
    @rule(data=st.data())
    def post(self, data: st.DataObject) -> None:
        reservation_id = self.pick(data, self.reservations)
        model = self.reservations[reservation_id]
        drawn = data.draw(st.none() | st.integers(1, 400))
        amount = None if drawn is None else min(drawn, model.amount)
        self.resolve(reservation_id, "post", amount)

    @precondition(lambda self: self.reservations)
    @rule(data=st.data())
    def void(self, data: st.DataObject) -> None:
        self.resolve(self.pick(data, self.reservations), "void", None)

    def resolve(self, reservation_id: str, operation: str, amount: int | None) -> None:
        key = self.key()
        request = (
            self.ledger.post(reservation_id, amount, key=key)
            if operation == "post"
            else self.ledger.void(reservation_id, key=key)
        )
        expected = self.expected_resolution_error(reservation_id)
        if expected is not None:
            with pytest.raises(expected):
                self.run(request)
            if expected is ReservationExpired:
                self.expire_in_model(reservation_id)
            return
        result = self.run(request)
        model = self.reservations[reservation_id]
        charged = (model.amount if amount is None else amount) if operation == "post" else 0
        model.state = ReservationState.POSTED if operation == "post" else ReservationState.VOIDED
        model.posted_amount = charged
        self.accounts[model.account].posted -= charged
        self.accounts[model.account].pending -= model.amount
        assert (result.state, result.posted_amount) == (model.state, charged)
        arguments = (reservation_id, amount) if operation == "post" else (reservation_id,)
        self.requests.append(Request(operation, arguments, key, result))

    @rule(seconds=st.sampled_from([0.5, 1.0, 4.0, 30.0]))
    def time_passes(self, seconds: float) -> None:
        self.run(self.world.clock.advance(seconds))

    @rule()
    def expire_due(self) -> None:
        now = self.now()
        due = [
            rid
            for rid, r in self.reservations.items()
            if r.state is ReservationState.PENDING and r.deadline <= now
        ]
        expired = self.run(self.ledger.expire_due())
        # Other examples' leftovers may expire too (one database serves them all).
        assert expired >= len(due)
        for reservation_id in due:
            self.expire_in_model(reservation_id)

    @precondition(lambda self: self.requests)
    @rule(data=st.data())
    def replay(self, data: st.DataObject) -> None:
        request = self.pick(data, self.requests)
        assert self.run(self.send(request.operation, request.arguments, request.key)) == (
            request.result
        )

    @precondition(lambda self: self.requests)
    @rule(data=st.data())
    def reuse_a_key_for_another_request(self, data: st.DataObject) -> None:
        request = self.pick(data, self.requests)
        account = next(iter(self.accounts))
        # A timeout no other request uses: never the same request as the key's.
        with pytest.raises(IdempotencyConflict):
            self.run(self.ledger.reserve(account, 1, timeout=12345, key=request.key))

    def send(self, operation: str, arguments: tuple[Any, ...], key: str) -> Any:
        if operation == "deposit":
            return self.ledger.deposit(*arguments, key=key)
        if operation == "reserve":
            account, amount, timeout = arguments
            return self.ledger.reserve(account, amount, timeout=timeout, key=key)
        if operation == "post":
            return self.ledger.post(*arguments, key=key)
        return self.ledger.void(*arguments, key=key)

    @precondition(lambda self: self.accounts)
    @rule(data=st.data(), amounts=st.lists(st.integers(1, 200), min_size=2, max_size=6))
    def concurrent_reserves(self, data: st.DataObject, amounts: list[int]) -> None:
        """Many reserves (one sent twice with one key) at once: the sum granted never
        exceeds what was available, and a refused one really did not fit."""
        account = self.pick(data, self.accounts)
        model = self.accounts[account]
        keys = [self.key() for _ in amounts]
        calls = [
            self.ledger.reserve(account, amount, timeout=30, key=key)
            for amount, key in zip(amounts, keys, strict=True)
        ]
        calls.append(self.ledger.reserve(account, amounts[0], timeout=30, key=keys[0]))

        async def together() -> list[Reservation | BaseException]:
            return await asyncio.gather(*calls, return_exceptions=True)

        results = self.run(together())
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, InsufficientCredits):
                raise result
        first, twin = results[0], results[-1]
        assert type(first) is type(twin)
        if isinstance(first, Reservation):
            assert first == twin  # charged once
        granted = [r for r in results[:-1] if isinstance(r, Reservation)]
        total = sum(r.amount for r in granted)
        if model.allow_negative:
            assert len(granted) == len(amounts)
        else:
            assert total <= model.available
            left = model.available - total
            refused = [
                a for a, r in zip(amounts, results, strict=False) if not isinstance(r, Reservation)
            ]
            assert all(amount > left for amount in refused)
        model.pending += total
        for reservation, key in zip(results[:-1], keys, strict=True):
            if isinstance(reservation, Reservation):
                self.reservations[reservation.id] = ModelReservation(
                    account, reservation.amount, reservation.deadline
                )
                self.requests.append(
                    Request("reserve", (account, reservation.amount, 30), key, reservation)
                )

    @precondition(lambda self: self.reservations)
    @rule(data=st.data())
    def concurrent_post_and_void(self, data: st.DataObject) -> None:
        """A post and a void race for one reservation: at most one wins."""
        reservation_id = self.pick(data, self.reservations)
        expected = self.expected_resolution_error(reservation_id)
        post_key, void_key = self.key(), self.key()

        async def race() -> list[Reservation | BaseException]:
            return await asyncio.gather(
                self.ledger.post(reservation_id, key=post_key),
                self.ledger.void(reservation_id, key=void_key),
                return_exceptions=True,
            )

        results = self.run(race())
        winners = [r for r in results if isinstance(r, Reservation)]
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, AlreadyResolved):
                raise result
        model = self.reservations[reservation_id]
        if expected is AlreadyResolved:
            assert not winners
            return
        if expected is ReservationExpired:
            assert not winners
            assert any(isinstance(r, ReservationExpired) for r in results)
            self.expire_in_model(reservation_id)
            return
        assert len(winners) == 1
        (winner,) = winners
        model.state = winner.state
        model.posted_amount = winner.posted_amount
        self.accounts[model.account].posted -= winner.posted_amount
        self.accounts[model.account].pending -= model.amount

    # --- invariants ------------------------------------------------------------------
    @invariant()
    def balances_match_the_model(self) -> None:
        rows = self.run(
            self.world.database.fetch(
                "SELECT id, posted, pending, allow_negative FROM credit_accounts WHERE id LIKE $1",
                f"{self.prefix}:%",
            )
        )
        actual = {row["id"]: (row["posted"], row["pending"]) for row in rows}
        expected = {a: (m.posted, m.pending) for a, m in self.accounts.items()}
        assert actual == expected
        for account, model in self.accounts.items():
            if not model.allow_negative:
                assert model.available >= 0, account

    @invariant()
    def reservations_match_the_model(self) -> None:
        rows = self.run(
            self.world.database.fetch(
                "SELECT id, state, posted_amount FROM credit_reservations WHERE account_id LIKE $1",
                f"{self.prefix}:%",
            )
        )
        actual = {row["id"]: (row["state"], row["posted_amount"]) for row in rows}
        expected = {rid: (str(r.state), r.posted_amount) for rid, r in self.reservations.items()}
        assert actual == expected

    @invariant()
    def reconcile_finds_nothing(self) -> None:
        report = self.run(self.ledger.reconcile(overdue_grace=float("inf")))
        # Only this example's accounts: a failed example must not fail the next ones.
        mine = [d for d in report.discrepancies if d.account_id.startswith(self.prefix)]
        assert not mine, mine


def machine_for(world: World) -> type[LedgerMachine]:
    return type("BoundLedgerMachine", (LedgerMachine,), {"world": world})


@pytest.mark.timeout(120)
@pytest.mark.parametrize("backend", BACKENDS)
def test_ledger_holds_its_invariants(backend: str, tmp_path: Path) -> None:
    loop = asyncio.new_event_loop()
    clock = ManualClock()
    location = fresh_database_url(backend, tmp_path)
    try:
        url = loop.run_until_complete(location.__aenter__())
        try:
            database = loop.run_until_complete(
                open_database(url, clock=clock, migrations=LEDGER_MIGRATIONS)
            )
            world = World(loop, database, clock)
            try:
                run_state_machine_as_test(
                    machine_for(world),
                    settings=settings(
                        max_examples=EXAMPLES,
                        stateful_step_count=STEPS,
                        deadline=None,
                        print_blob=True,
                        # No "explain" phase: its tracer is slow on Python 3.11 and would
                        # push a failure past the test's timeout, hiding it.
                        phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
                        suppress_health_check=[HealthCheck.too_slow],
                    ),
                )
            finally:
                loop.run_until_complete(database.close())
            assert world.examples >= min(EXAMPLES, 5)
        finally:
            loop.run_until_complete(location.__aexit__(None, None, None))
    finally:
        loop.close()
