"""The credits ledger on SQLite and PostgreSQL: the rules one by one."""

from __future__ import annotations

import asyncio

import pytest

from steadybot.clock import ManualClock
from steadybot.credits import (
    AccountConflict,
    AlreadyResolved,
    ExceedsReservation,
    IdempotencyConflict,
    InsufficientCredits,
    Ledger,
    ReservationExpired,
    ReservationState,
    UnknownAccount,
    UnknownReservation,
)
from steadybot.storage import Database, StorageError

pytestmark = pytest.mark.services


@pytest.fixture
async def ledger(database: Database) -> Ledger:
    ledger = Ledger(database, sweep_interval=5.0)
    await ledger.migrate()
    return ledger


def clock_of(database: Database) -> ManualClock:
    clock = database.clock
    assert isinstance(clock, ManualClock)
    return clock


async def test_deposit_reserve_post_moves_credits(ledger: Ledger) -> None:
    await ledger.open_account("user:1")
    balance = await ledger.deposit("user:1", 100, key="d1")
    assert (balance.posted, balance.pending, balance.available) == (100, 0, 100)
    held = await ledger.reserve("user:1", 30, timeout=60, key="r1")
    assert held.state is ReservationState.PENDING
    assert (await ledger.balance("user:1")).available == 70
    posted = await ledger.post(held.id, 20, key="p1")
    assert posted.state is ReservationState.POSTED
    assert posted.posted_amount == 20
    balance = await ledger.balance("user:1")
    assert (balance.posted, balance.pending, balance.available) == (80, 0, 80)
    assert (await ledger.reconcile()).ok


async def test_void_releases_everything(ledger: Ledger) -> None:
    await ledger.open_account("user:1")
    await ledger.deposit("user:1", 50, key="d")
    held = await ledger.reserve("user:1", 50, timeout=60, key="r")
    voided = await ledger.void(held.id, key="v")
    assert voided.state is ReservationState.VOIDED
    assert (await ledger.balance("user:1")).available == 50


async def test_insufficient_credits_unless_the_account_allows_negative(ledger: Ledger) -> None:
    await ledger.open_account("user:1")
    await ledger.deposit("user:1", 10, key="d")
    with pytest.raises(InsufficientCredits) as info:
        await ledger.reserve("user:1", 11, timeout=60, key="r")
    assert (info.value.available, info.value.requested) == (10, 11)
    # The refused request stored nothing: the same key may be retried after a deposit.
    await ledger.deposit("user:1", 1, key="d2")
    assert (await ledger.reserve("user:1", 11, timeout=60, key="r")).amount == 11
    await ledger.open_account("guild:9", allow_negative=True)
    overdraft = await ledger.reserve("guild:9", 500, timeout=60, key="g")
    await ledger.post(overdraft.id, key="gp")
    assert (await ledger.balance("guild:9")).available == -500
    assert (await ledger.reconcile()).ok


async def test_a_reservation_resolves_once(ledger: Ledger) -> None:
    await ledger.open_account("user:1")
    await ledger.deposit("user:1", 10, key="d")
    held = await ledger.reserve("user:1", 10, timeout=60, key="r")
    await ledger.post(held.id, key="p")
    with pytest.raises(AlreadyResolved, match="posted"):
        await ledger.void(held.id, key="v")
    with pytest.raises(AlreadyResolved):
        await ledger.post(held.id, key="p-again")
    assert (await ledger.balance("user:1")).posted == 0


async def test_replaying_a_key_returns_the_original_and_charges_once(ledger: Ledger) -> None:
    await ledger.open_account("user:1")
    first = await ledger.deposit("user:1", 10, key="d")
    again = await ledger.deposit("user:1", 10, key="d")
    assert again == first
    held = await ledger.reserve("user:1", 4, timeout=60, key="r")
    assert await ledger.reserve("user:1", 4, timeout=60, key="r") == held
    posted = await ledger.post(held.id, 3, key="p")
    assert await ledger.post(held.id, 3, key="p") == posted  # not AlreadyResolved
    balance = await ledger.balance("user:1")
    assert (balance.posted, balance.pending) == (7, 0)
    assert ledger.statistics().replays == 3


async def test_a_reused_key_for_another_request_is_a_conflict(ledger: Ledger) -> None:
    await ledger.open_account("user:1")
    await ledger.deposit("user:1", 10, key="k")
    with pytest.raises(IdempotencyConflict):
        await ledger.deposit("user:1", 11, key="k")
    with pytest.raises(IdempotencyConflict):
        await ledger.reserve("user:1", 10, timeout=60, key="k")
    assert (await ledger.balance("user:1")).posted == 10


async def test_concurrent_twins_with_one_key_charge_once(ledger: Ledger) -> None:
    await ledger.open_account("user:1")
    await ledger.deposit("user:1", 100, key="d")
    results = await asyncio.gather(
        *(ledger.reserve("user:1", 60, timeout=60, key="same") for _ in range(5))
    )
    assert len({r.id for r in results}) == 1
    assert (await ledger.balance("user:1")).pending == 60


async def test_expiry_on_the_clock_releases_the_hold(database: Database, ledger: Ledger) -> None:
    clock = clock_of(database)
    await ledger.open_account("user:1")
    await ledger.deposit("user:1", 10, key="d")
    held = await ledger.reserve("user:1", 10, timeout=30, key="r")
    assert held.deadline == clock.time() + 30
    await clock.advance(29)
    assert await ledger.expire_due() == 0
    await clock.advance(1)
    assert await ledger.expire_due() == 1
    assert (await ledger.reservation(held.id)).state is ReservationState.EXPIRED
    assert (await ledger.balance("user:1")).available == 10
    with pytest.raises(AlreadyResolved, match="expired"):
        await ledger.post(held.id, key="late")


async def test_posting_an_overdue_reservation_expires_it(
    database: Database, ledger: Ledger
) -> None:
    await ledger.open_account("user:1")
    await ledger.deposit("user:1", 10, key="d")
    held = await ledger.reserve("user:1", 10, timeout=5, key="r")
    await clock_of(database).advance(5)
    with pytest.raises(ReservationExpired):
        await ledger.post(held.id, key="p")
    # The expiry was committed although the post was refused.
    assert (await ledger.reservation(held.id)).state is ReservationState.EXPIRED
    assert (await ledger.balance("user:1")).pending == 0
    assert await ledger.expire_due() == 0


async def test_the_sweeper_expires_on_its_interval(database: Database, ledger: Ledger) -> None:
    clock = clock_of(database)
    await ledger.open_account("user:1")
    await ledger.deposit("user:1", 10, key="d")
    held = await ledger.reserve("user:1", 10, timeout=1, key="r")
    await ledger.start()
    try:
        await clock.advance(5)  # the sweep runs now; its database I/O takes real time
        for _ in range(500):
            if ledger.statistics().sweeps:
                break
            await asyncio.sleep(0.005)
        assert (await ledger.reservation(held.id)).state is ReservationState.EXPIRED
    finally:
        await ledger.close()


async def test_bad_requests_are_refused_clearly(ledger: Ledger) -> None:
    await ledger.open_account("user:1")
    with pytest.raises(ValueError, match="between 1"):
        await ledger.deposit("user:1", 0, key="d")
    with pytest.raises(TypeError):
        await ledger.deposit("user:1", 1.5, key="d")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="idempotency key"):
        await ledger.deposit("user:1", 1, key="")
    with pytest.raises(ValueError, match="timeout"):
        await ledger.reserve("user:1", 1, timeout=0, key="r")
    with pytest.raises(UnknownAccount):
        await ledger.deposit("user:2", 1, key="d")
    with pytest.raises(UnknownReservation):
        await ledger.void("nope", key="v")
    with pytest.raises(AccountConflict):
        await ledger.open_account("user:1", allow_negative=True)
    await ledger.deposit("user:1", 5, key="d5")
    held = await ledger.reserve("user:1", 5, timeout=60, key="r5")
    with pytest.raises(ExceedsReservation):
        await ledger.post(held.id, 6, key="p6")


async def test_reconcile_finds_a_tampered_balance(database: Database, ledger: Ledger) -> None:
    await ledger.open_account("user:1")
    await ledger.deposit("user:1", 10, key="d")
    assert (await ledger.reconcile()).ok
    await database.execute("UPDATE credit_accounts SET posted = 1000 WHERE id = $1", "user:1")
    report = await ledger.reconcile()
    assert not report.ok
    (found,) = report.discrepancies
    assert (found.kind, found.account_id, found.expected, found.actual) == (
        "posted",
        "user:1",
        10,
        1000,
    )


async def test_reconcile_flags_overdue_reservations(database: Database, ledger: Ledger) -> None:
    await ledger.open_account("user:1")
    await ledger.deposit("user:1", 10, key="d")
    await ledger.reserve("user:1", 10, timeout=1, key="r")
    await clock_of(database).advance(30)
    assert (await ledger.reconcile(overdue_grace=60)).ok
    report = await ledger.reconcile(overdue_grace=10)
    assert [d.kind for d in report.discrepancies] == ["overdue"]


async def test_entries_are_append_only(database: Database, ledger: Ledger) -> None:
    await ledger.open_account("user:1")
    await ledger.deposit("user:1", 10, key="d")
    with pytest.raises(StorageError, match="append-only"):
        await database.execute("UPDATE credit_entries SET posted_delta = 99")
    with pytest.raises(StorageError, match="append-only"):
        await database.execute("DELETE FROM credit_entries")


async def test_a_refused_post_in_the_callers_transaction_leaves_its_key_free(
    ledger: Ledger, database: Database
) -> None:
    # A handler may catch the refusal and commit the rest of its transaction (say, an
    # outbox message "that was too much"); the refused request must not commit its key.
    await ledger.open_account("user:1")
    await ledger.deposit("user:1", 100, key="d")
    held = await ledger.reserve("user:1", 30, timeout=60, key="r")
    async with database.transaction() as conn:
        with pytest.raises(ExceedsReservation):
            await ledger.post(held.id, 40, key="p", conn=conn)
    # The same request, retried, is refused again (not replayed as an empty result)...
    with pytest.raises(ExceedsReservation):
        await ledger.post(held.id, 40, key="p")
    # ...and the key is free for the request that is right.
    async with database.transaction() as conn:
        await ledger.post(held.id, 40 - 10, key="p2", conn=conn)
    posted = await ledger.post(held.id, 30, key="p2")
    assert posted.state is ReservationState.POSTED
    assert (await ledger.balance("user:1")).posted == 70
    assert (await ledger.reconcile()).ok
