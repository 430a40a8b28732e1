"""The storage layer, the same tests on SQLite and PostgreSQL (the `database` fixture)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from support import drive

from steadybot.clock import ManualClock
from steadybot.storage import (
    Connection,
    ConstraintViolation,
    Database,
    Dialect,
    DuplicateKey,
    Migration,
    MigrationError,
    StorageError,
    StorageOptions,
    TransactionAborted,
    TransactionConflict,
    open_database,
)

pytestmark = pytest.mark.services

ITEMS = Migration(
    1,
    "items",
    """
    CREATE TABLE items (
        id BIGINT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        amount BIGINT NOT NULL DEFAULT 0 CHECK (amount >= 0),
        price DOUBLE PRECISION,
        active BOOLEAN NOT NULL DEFAULT TRUE
    );
    CREATE INDEX items_by_amount ON items (amount);
    """,
)


async def with_items(database: Database) -> Database:
    assert await database.migrate([ITEMS]) == [1]
    return database


async def test_dialect_matches_the_url(database: Database, database_url: str) -> None:
    expected = Dialect.SQLITE if database_url.startswith("sqlite") else Dialect.POSTGRESQL
    assert database.dialect is expected
    assert database.dialect == expected.value


async def test_rows_round_trip_with_dollar_placeholders(database: Database) -> None:
    await with_items(database)
    big = 2**62
    assert (
        await database.execute(
            "INSERT INTO items (id, name, amount, price, active) VALUES ($1, $2, $3, $4, $5)",
            big,
            "it's $1 '$2'",
            7,
            1.5,
            False,
        )
        == 1
    )
    row = await database.fetchrow("SELECT * FROM items WHERE id = $1 AND id = $1", big)
    assert row is not None
    assert row["id"] == big
    assert row["name"] == "it's $1 '$2'"  # a placeholder inside a value is just text
    assert row["amount"] == 7
    assert row["price"] == 1.5
    assert not row["active"]
    assert dict(row) == {
        "id": big,
        "name": "it's $1 '$2'",
        "amount": 7,
        "price": 1.5,
        "active": row["active"],
    }
    # A literal containing $1 is left alone by the SQLite rewrite.
    assert await database.fetchval("SELECT '$1' || $1", "x") == "$1x"
    assert await database.fetchrow("SELECT * FROM items WHERE id = $1", 0) is None
    assert await database.fetchval("SELECT name FROM items WHERE id = $1", 0) is None


async def test_execute_counts_rows_and_executemany_inserts_all(database: Database) -> None:
    await with_items(database)
    await database.executemany(
        "INSERT INTO items (id, name, amount) VALUES ($1, $2, $3)",
        [(i, f"item{i}", i) for i in range(1, 11)],
    )
    assert await database.fetchval("SELECT COUNT(*) FROM items") == 10
    assert await database.execute("UPDATE items SET amount = amount + 1 WHERE id <= $1", 4) == 4
    assert await database.execute("DELETE FROM items WHERE amount > $1", 8) == 2
    rows = await database.fetch("SELECT id, amount FROM items ORDER BY id")
    assert [(r["id"], r["amount"]) for r in rows] == [
        (1, 2),
        (2, 3),
        (3, 4),
        (4, 5),
        (5, 5),
        (6, 6),
        (7, 7),
        (8, 8),
    ]


async def test_transaction_commits_on_exit_and_rolls_back_on_error(database: Database) -> None:
    await with_items(database)
    async with database.transaction() as conn:
        await conn.execute("INSERT INTO items (id, name) VALUES ($1, $2)", 1, "kept")
        await conn.execute("INSERT INTO items (id, name) VALUES ($1, $2)", 2, "kept too")

    async def fail_after_a_write() -> None:
        async with database.transaction() as conn:
            await conn.execute("INSERT INTO items (id, name) VALUES ($1, $2)", 3, "lost")
            assert await conn.fetchval("SELECT COUNT(*) FROM items") == 3  # sees its own write
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await fail_after_a_write()
    names = [r["name"] for r in await database.fetch("SELECT name FROM items ORDER BY id")]
    assert names == ["kept", "kept too"]
    stats = database.statistics()
    assert stats.rolled_back >= 1
    assert stats.active == 0


async def test_unique_violation_is_duplicate_key_on_both(database: Database) -> None:
    await with_items(database)
    await database.execute("INSERT INTO items (id, name) VALUES ($1, $2)", 1, "one")
    with pytest.raises(DuplicateKey):
        await database.execute("INSERT INTO items (id, name) VALUES ($1, $2)", 1, "other")
    with pytest.raises(DuplicateKey):
        await database.execute("INSERT INTO items (id, name) VALUES ($1, $2)", 2, "one")
    # ON CONFLICT DO NOTHING works on both and reports 0 rows.
    assert (
        await database.execute(
            "INSERT INTO items (id, name) VALUES ($1, $2) ON CONFLICT DO NOTHING", 1, "x"
        )
        == 0
    )


async def test_other_constraints_are_constraint_violations(database: Database) -> None:
    await with_items(database)
    with pytest.raises(ConstraintViolation) as check:
        await database.execute(
            "INSERT INTO items (id, name, amount) VALUES ($1, $2, $3)", 1, "a", -1
        )
    assert not isinstance(check.value, DuplicateKey)
    with pytest.raises(ConstraintViolation):
        await database.execute("INSERT INTO items (id, name) VALUES ($1, $2)", 2, None)


async def test_a_swallowed_error_dooms_the_transaction_on_both(database: Database) -> None:
    await with_items(database)
    await database.execute("INSERT INTO items (id, name) VALUES ($1, $2)", 1, "one")

    async def swallow_an_error() -> None:
        async with database.transaction() as conn:
            await conn.execute("INSERT INTO items (id, name) VALUES ($1, $2)", 2, "two")
            with pytest.raises(DuplicateKey):
                await conn.execute("INSERT INTO items (id, name) VALUES ($1, $2)", 1, "dup")
            with pytest.raises(TransactionAborted):
                await conn.fetchval("SELECT COUNT(*) FROM items")

    with pytest.raises(TransactionAborted):
        await swallow_an_error()
    # Nothing of it was committed: not the write before the error either.
    assert await database.fetchval("SELECT COUNT(*) FROM items") == 1


async def test_a_savepoint_keeps_the_transaction_usable(database: Database) -> None:
    await with_items(database)
    await database.execute("INSERT INTO items (id, name) VALUES ($1, $2)", 1, "one")
    async with database.transaction() as conn:
        await conn.execute("INSERT INTO items (id, name) VALUES ($1, $2)", 2, "two")

        async def in_savepoint() -> None:
            async with conn.savepoint():
                await conn.execute("INSERT INTO items (id, name) VALUES ($1, $2)", 3, "three")
                await conn.execute("INSERT INTO items (id, name) VALUES ($1, $2)", 1, "dup")

        with pytest.raises(DuplicateKey):
            await in_savepoint()
        await conn.execute("INSERT INTO items (id, name) VALUES ($1, $2)", 4, "four")
    ids = [r["id"] for r in await database.fetch("SELECT id FROM items ORDER BY id")]
    assert ids == [1, 2, 4]


async def test_migrations_apply_once_in_order_and_are_recorded(database: Database) -> None:
    second = Migration(2, "items.note", "ALTER TABLE items ADD COLUMN note TEXT")
    assert await database.migrate([second, ITEMS]) == [1, 2]
    assert await database.migrate([ITEMS, second]) == []
    third = Migration(3, "widgets", "CREATE TABLE widgets (id BIGINT PRIMARY KEY)")
    assert await database.migrate([ITEMS, second, third]) == [3]
    rows = await database.fetch(
        "SELECT scope, version, name FROM schema_migrations ORDER BY version"
    )
    assert [(r["scope"], r["version"], r["name"]) for r in rows] == [
        ("app", 1, "items"),
        ("app", 2, "items.note"),
        ("app", 3, "widgets"),
    ]
    await database.execute("INSERT INTO items (id, name, note) VALUES ($1, $2, $3)", 1, "a", "n")


async def test_scopes_number_their_migrations_independently(database: Database) -> None:
    other = Migration(1, "other things", "CREATE TABLE other_things (id BIGINT)", scope="other")
    assert await database.migrate([ITEMS, other]) == [1, 1]
    assert await database.fetchval("SELECT COUNT(*) FROM schema_migrations") == 2


async def test_dialect_specific_migration_sql(database: Database) -> None:
    sequence = Migration(
        1,
        "events",
        {
            "sqlite": "CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT)",
            "postgresql": "CREATE TABLE events (id BIGSERIAL PRIMARY KEY, body TEXT)",
        },
    )
    await database.migrate([sequence])
    first = await database.fetchval("INSERT INTO events (body) VALUES ($1) RETURNING id", "a")
    second = await database.fetchval("INSERT INTO events (body) VALUES ($1) RETURNING id", "b")
    assert second == first + 1


async def test_a_failing_migration_leaves_no_trace(database: Database) -> None:
    broken = Migration(2, "broken", "CREATE TABLE half (id BIGINT); CREATE TABLE nonsense (")
    with pytest.raises(StorageError):
        await database.migrate([ITEMS, broken])
    assert await database.fetchval("SELECT MAX(version) FROM schema_migrations") == 1
    # The first statement of the broken migration was rolled back with it.
    fixed = Migration(2, "broken", "CREATE TABLE half (id BIGINT)")
    assert await database.migrate([ITEMS, fixed]) == [2]


async def test_bad_migration_lists_are_refused(database: Database) -> None:
    with pytest.raises(MigrationError, match="duplicate"):
        await database.migrate([ITEMS, Migration(1, "again", "SELECT 1")])
    with pytest.raises(MigrationError, match="start at 1"):
        await database.migrate([Migration(0, "zero", "SELECT 1")])
    with pytest.raises(MigrationError, match="no SQL for"):
        await database.migrate([Migration(1, "x", {"mysql": "SELECT 1"})])
    await database.migrate([ITEMS])
    with pytest.raises(MigrationError, match="applied as 'items'"):
        await database.migrate([Migration(1, "renamed", ITEMS.sql)])


async def test_open_database_applies_migrations_at_start(database_url: str) -> None:
    db = await open_database(database_url, clock=ManualClock(), migrations=[ITEMS])
    try:
        assert await db.execute("INSERT INTO items (id, name) VALUES ($1, $2)", 1, "a") == 1
    finally:
        await db.close()
    again = await open_database(database_url, clock=ManualClock(), migrations=[ITEMS])
    try:
        assert await again.fetchval("SELECT COUNT(*) FROM items") == 1
    finally:
        await again.close()


async def test_concurrent_read_modify_write_loses_no_update(database: Database) -> None:
    await with_items(database)
    await database.execute("INSERT INTO items (id, name, amount) VALUES ($1, $2, $3)", 1, "c", 0)

    async def increment(conn: Connection) -> None:
        amount = await conn.fetchval("SELECT amount FROM items WHERE id = $1" + conn.for_update, 1)
        await asyncio.sleep(0)  # invite another transaction in between
        await conn.execute("UPDATE items SET amount = $1 WHERE id = $2", amount + 1, 1)

    await asyncio.gather(*(database.run_transaction(increment) for _ in range(40)))
    assert await database.fetchval("SELECT amount FROM items WHERE id = $1", 1) == 40


async def test_run_transaction_retries_conflicts_then_gives_up(database: Database) -> None:
    await with_items(database)
    attempts = 0

    async def flaky(conn: Connection) -> int:
        nonlocal attempts
        attempts += 1
        await conn.execute("INSERT INTO items (id, name) VALUES ($1, $2)", attempts, "x")
        if attempts < 3:
            raise TransactionConflict("lost a race (simulated)")
        return attempts

    # The first re-run is immediate, the second waits a backoff on the manual clock.
    task = asyncio.ensure_future(database.run_transaction(flaky, retries=5))
    clock = database.clock
    assert isinstance(clock, ManualClock)
    while not task.done():
        await clock.advance(1.0)
    assert await task == 3
    # Only the successful attempt's write is there.
    assert [r["id"] for r in await database.fetch("SELECT id FROM items")] == [3]
    assert database.statistics().retries == 2

    async def always(conn: Connection) -> None:
        raise TransactionConflict("never wins")

    with pytest.raises(TransactionConflict):
        await database.run_transaction(always, retries=0)


async def test_a_cancelled_transaction_rolls_back_and_frees_the_database(
    database: Database,
) -> None:
    await with_items(database)
    inside = asyncio.Event()

    async def stuck() -> None:
        async with database.transaction() as conn:
            await conn.execute("INSERT INTO items (id, name) VALUES ($1, $2)", 1, "lost")
            inside.set()
            await asyncio.Event().wait()

    task = asyncio.ensure_future(stuck())
    await inside.wait()
    assert database.statistics().active == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await database.fetchval("SELECT COUNT(*) FROM items") == 0
    assert database.statistics().active == 0


async def test_a_closed_database_refuses_work(database: Database) -> None:
    await database.close()
    await database.close()  # idempotent
    with pytest.raises(StorageError, match="closed"):
        await database.fetchval("SELECT 1")


async def test_statistics_count_transactions(database: Database) -> None:
    await with_items(database)
    before = database.statistics()
    await database.fetchval("SELECT 1")

    async def insert_twice() -> None:
        async with database.transaction() as conn:
            await conn.execute("INSERT INTO items (id, name) VALUES ($1, $2)", 1, "a")
            await conn.execute("INSERT INTO items (id, name) VALUES ($1, $2)", 1, "a")

    with pytest.raises(DuplicateKey):
        await insert_twice()
    after = database.statistics()
    assert after.transactions == before.transactions + 2
    assert after.committed == before.committed + 1
    assert after.rolled_back == before.rolled_back + 1
    assert after.errors == before.errors + 1
    assert after.pool_size >= 1


async def test_sqlite_busy_file_is_a_conflict(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'busy.sqlite3'}"
    options = StorageOptions(busy_timeout=0.0)
    first = await open_database(url, clock=ManualClock(), options=options, migrations=[ITEMS])
    second = await open_database(url, clock=ManualClock(), options=options)
    try:
        async with first.transaction() as conn:
            await conn.execute("INSERT INTO items (id, name) VALUES ($1, $2)", 1, "a")
            with pytest.raises(TransactionConflict):
                await second.execute("INSERT INTO items (id, name) VALUES ($1, $2)", 2, "b")
        assert await second.execute("INSERT INTO items (id, name) VALUES ($1, $2)", 2, "b") == 1
    finally:
        await first.close()
        await second.close()


# Deadlocks need two connections at once: PostgreSQL only.
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_postgres_deadlock_is_a_conflict_and_retried(database: Database) -> None:
    assert database.dialect is Dialect.POSTGRESQL
    await with_items(database)
    await database.executemany("INSERT INTO items (id, name) VALUES ($1, $2)", [(1, "a"), (2, "b")])
    both_hold_one = asyncio.Barrier(2)
    runs = 0

    async def lock_in_order(first: int, second: int) -> None:
        async def body(conn: Connection) -> None:
            nonlocal runs
            runs += 1
            await conn.execute("SET LOCAL deadlock_timeout = '50ms'")
            await conn.execute("UPDATE items SET amount = amount + 1 WHERE id = $1", first)
            if runs <= 2:
                await both_hold_one.wait()
            await conn.execute("UPDATE items SET amount = amount + 1 WHERE id = $1", second)

        await database.run_transaction(body)

    clock = database.clock
    assert isinstance(clock, ManualClock)
    # A loaded machine can make the re-run lose once more: its backoff waits on the clock.
    both = asyncio.gather(lock_in_order(1, 2), lock_in_order(2, 1))
    await asyncio.wait_for(drive(clock, both), 20)
    assert runs >= 3  # one of the two was the deadlock victim and ran again
    assert database.statistics().conflicts == runs - 2
    amounts = [r["amount"] for r in await database.fetch("SELECT amount FROM items")]
    assert amounts == [2, 2]
