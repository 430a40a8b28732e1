"""The storage contract: a :class:`Database` of short transactions over a :class:`Connection`.

One API on two backends. SQLite (the default: a file, zero setup) and PostgreSQL (when
``STEADYBOT_DATABASE_URL`` says so) differ in ways that break code written against one
and run on the other; this layer removes the differences that matter and makes the rest
explicit:

- **One SQL text.** Statements use ``$1, $2`` placeholders everywhere; the SQLite
  backend rewrites them to ``?1, ?2``. Dialect-specific snippets are named, not hidden:
  :attr:`Connection.for_update` is ``" FOR UPDATE"`` on PostgreSQL and empty on SQLite
  (whose ``BEGIN IMMEDIATE`` already serializes writers).
- **One row type.** Rows are plain mappings of column name to value on both.
- **One failure model.** Driver exceptions become :mod:`steadybot.storage.errors`
  types. After an error inside a transaction PostgreSQL refuses further statements;
  SQLite is made to refuse too (:class:`TransactionAborted`), and a transaction whose
  body swallowed an error is rolled back and reported, never half-committed.
- **Transactions are the unit.** ``async with db.transaction() as conn`` commits on
  exit and rolls back on an exception; :meth:`Database.run_transaction` runs a function
  in a transaction and re-runs it when it lost a race (:class:`TransactionConflict`),
  with jittered backoff on the injected clock.

Isolation: SQLite transactions start with ``BEGIN IMMEDIATE`` on the one connection
(serializable in effect). PostgreSQL transactions run at READ COMMITTED, and code that
does read-modify-write locks the rows it reads (``SELECT ... FOR UPDATE``, in a fixed
order): writers on one hot row queue behind each other instead of failing and retrying
as they would under SERIALIZABLE. Deadlocks (40P01) and serialization failures (40001)
are still mapped to :class:`TransactionConflict` and retried.
"""

from __future__ import annotations

import abc
import enum
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

from steadybot.clock import Clock
from steadybot.resilience.retry import backoff_ceiling
from steadybot.storage.errors import (
    StorageError,
    TransactionAborted,
    TransactionConflict,
)

if TYPE_CHECKING:
    from steadybot.config import Settings
    from steadybot.storage.migrations import Migration

__all__ = [
    "Connection",
    "Database",
    "DatabaseStatistics",
    "Dialect",
    "Row",
    "StorageOptions",
]

T = TypeVar("T")

Row: TypeAlias = Mapping[str, Any]
"""A result row: column name to value (the same on both backends)."""


class Dialect(enum.StrEnum):
    """Which database a :class:`Database` talks to; compares equal to its string."""

    SQLITE = "sqlite"
    POSTGRESQL = "postgresql"


@dataclass(frozen=True, slots=True)
class StorageOptions:
    """The storage layer's limits; :meth:`from_settings` reads them from :class:`Settings`."""

    pool_size: int = 10
    acquire_timeout: float = 10.0
    command_timeout: float = 30.0
    busy_timeout: float = 5.0
    transaction_retries: int = 5
    retry_backoff_base: float = 0.02
    retry_backoff_cap: float = 1.0
    sqlite_synchronous: str = "FULL"

    @classmethod
    def from_settings(cls, settings: Settings) -> StorageOptions:
        return cls(
            pool_size=settings.database_pool_size,
            acquire_timeout=settings.database_acquire_timeout,
            command_timeout=settings.database_command_timeout,
            busy_timeout=settings.database_busy_timeout,
            transaction_retries=settings.database_transaction_retries,
            retry_backoff_base=settings.database_retry_backoff_base,
            retry_backoff_cap=settings.database_retry_backoff_cap,
            sqlite_synchronous=settings.database_sqlite_synchronous,
        )


@dataclass(frozen=True, slots=True)
class DatabaseStatistics:
    """What a :class:`Database` has done since it was opened."""

    dialect: str
    transactions: int  # started
    committed: int
    rolled_back: int
    active: int  # open right now
    conflicts: int  # TransactionConflict raised by a transaction
    retries: int  # re-runs by run_transaction
    errors: int  # transactions that ended in any StorageError
    pool_size: int  # connections the backend may open (1 for SQLite)


class Connection(abc.ABC):
    """One open transaction. Use it only inside its ``async with db.transaction()``."""

    dialect: Dialect

    def __init__(self) -> None:
        self._failed: StorageError | None = None
        self._savepoints = 0

    @property
    def for_update(self) -> str:
        """``" FOR UPDATE"`` on PostgreSQL, ``""`` on SQLite: append to a locking SELECT."""
        return " FOR UPDATE" if self.dialect is Dialect.POSTGRESQL else ""

    async def execute(self, sql: str, *args: object) -> int:
        """Run one statement; returns the number of rows it changed (0 for DDL)."""
        return await self._guard(self._execute(sql, args))

    async def executemany(self, sql: str, rows: Iterable[Sequence[object]]) -> None:
        """Run one statement once per row of arguments."""
        await self._guard(self._executemany(sql, [tuple(row) for row in rows]))

    async def fetch(self, sql: str, *args: object) -> list[Row]:
        """Run a query; every row."""
        return await self._guard(self._fetch(sql, args))

    async def fetchrow(self, sql: str, *args: object) -> Row | None:
        """Run a query; its first row, or ``None``."""
        return await self._guard(self._fetchrow(sql, args))

    async def fetchval(self, sql: str, *args: object) -> Any:
        """Run a query; the first column of its first row, or ``None``."""
        row = await self.fetchrow(sql, *args)
        return None if row is None else next(iter(row.values()), None)

    async def execute_script(self, script: str) -> None:
        """Run several ``;``-separated statements without parameters (migrations)."""
        await self._guard(self._script(script))

    def savepoint(self) -> AbstractAsyncContextManager[None]:
        """A nested transaction: an error inside rolls back only the block's writes,
        and the transaction stays usable (on both backends)."""
        return self._savepoint()

    @asynccontextmanager
    async def _savepoint(self) -> AsyncIterator[None]:
        self._savepoints += 1
        name = f"steadybot_sp_{self._savepoints}"
        await self.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            self._failed = None  # rolling back to the savepoint clears the error
            await self.execute(f"ROLLBACK TO SAVEPOINT {name}")
            await self.execute(f"RELEASE SAVEPOINT {name}")
            raise
        await self.execute(f"RELEASE SAVEPOINT {name}")

    async def _guard(self, operation: Awaitable[T]) -> T:
        if self._failed is not None:
            close = getattr(operation, "close", None)
            if close is not None:
                close()  # never awaited: do not leave a "never awaited" warning
            raise TransactionAborted(
                f"the transaction is aborted by an earlier error ({self._failed}); "
                "statements are refused until it ends"
            )
        try:
            return await operation
        except StorageError as exc:
            self._failed = exc
            raise

    # --- what a backend implements; each raises only StorageError types ---------------
    @abc.abstractmethod
    async def _execute(self, sql: str, args: tuple[object, ...]) -> int: ...

    @abc.abstractmethod
    async def _executemany(self, sql: str, rows: list[tuple[object, ...]]) -> None: ...

    @abc.abstractmethod
    async def _fetch(self, sql: str, args: tuple[object, ...]) -> list[Row]: ...

    @abc.abstractmethod
    async def _fetchrow(self, sql: str, args: tuple[object, ...]) -> Row | None: ...

    @abc.abstractmethod
    async def _script(self, script: str) -> None: ...


class Database(abc.ABC):
    """An open database: transactions, shortcuts, migrations, statistics.

    Get one from :func:`steadybot.storage.open_database`; close it with :meth:`close`.
    """

    dialect: Dialect

    def __init__(self, *, clock: Clock, options: StorageOptions) -> None:
        self._clock = clock
        self._options = options
        self._random = random.Random()
        self._closed = False
        self._transactions = 0
        self._committed = 0
        self._rolled_back = 0
        self._conflicts = 0
        self._retries = 0
        self._errors = 0

    @property
    def options(self) -> StorageOptions:
        return self._options

    @property
    def clock(self) -> Clock:
        return self._clock

    @property
    def closed(self) -> bool:
        return self._closed

    def transaction(self) -> AbstractAsyncContextManager[Connection]:
        """One transaction: committed when the block exits, rolled back on an exception.

        A body that swallowed a statement's error cannot commit: the transaction is
        rolled back and :class:`TransactionAborted` raised.
        """
        return self._counted_transaction()

    @asynccontextmanager
    async def _counted_transaction(self) -> AsyncIterator[Connection]:
        if self._closed:
            raise StorageError("the database is closed")
        self._transactions += 1
        committed = False
        try:
            async with self._transaction() as connection:
                yield connection
                if connection._failed is not None:
                    raise TransactionAborted(
                        f"rolled back: a statement in the transaction failed ({connection._failed})"
                    )
            committed = True
        except StorageError as exc:
            self._errors += 1
            if isinstance(exc, TransactionConflict):
                self._conflicts += 1
            raise
        finally:
            if committed:
                self._committed += 1
            else:
                self._rolled_back += 1

    async def run_transaction(
        self, fn: Callable[[Connection], Awaitable[T]], *, retries: int | None = None
    ) -> T:
        """Run ``fn`` in a transaction; re-run it (up to ``retries`` more times) when the
        transaction lost a race. ``fn`` must therefore be safe to run again: it sees a
        rolled-back database each time. The first re-run is immediate; later ones wait
        a jittered, doubling backoff on the clock."""
        limit = self._options.transaction_retries if retries is None else retries
        if limit < 0:
            raise ValueError(f"retries must be >= 0, got {limit}")
        attempt = 0
        while True:
            try:
                async with self.transaction() as connection:
                    return await fn(connection)
            except TransactionConflict:
                if attempt >= limit:
                    raise
                attempt += 1
                self._retries += 1
                await self._clock.sleep(self._backoff(attempt))

    def _backoff(self, attempt: int) -> float:
        if attempt <= 1:
            return 0.0
        options = self._options
        ceiling = backoff_ceiling(
            attempt - 2, base=options.retry_backoff_base, cap=options.retry_backoff_cap
        )
        return self._random.uniform(0, ceiling)  # full jitter: racers spread out

    # --- one-statement shortcuts, each in its own transaction -------------------------
    async def execute(self, sql: str, *args: object) -> int:
        async with self.transaction() as connection:
            return await connection.execute(sql, *args)

    async def executemany(self, sql: str, rows: Iterable[Sequence[object]]) -> None:
        async with self.transaction() as connection:
            await connection.executemany(sql, rows)

    async def fetch(self, sql: str, *args: object) -> list[Row]:
        async with self.transaction() as connection:
            return await connection.fetch(sql, *args)

    async def fetchrow(self, sql: str, *args: object) -> Row | None:
        async with self.transaction() as connection:
            return await connection.fetchrow(sql, *args)

    async def fetchval(self, sql: str, *args: object) -> Any:
        async with self.transaction() as connection:
            return await connection.fetchval(sql, *args)

    async def migrate(self, migrations: Sequence[Migration]) -> list[int]:
        """Apply the migrations not applied yet, each in its own transaction; returns
        the versions applied now (empty when the schema was up to date)."""
        from steadybot.storage.migrations import apply_migrations

        return await apply_migrations(self, migrations)

    async def close(self) -> None:
        """Close the connection(s). Idempotent."""
        if self._closed:
            return
        self._closed = True
        await self._close()

    def statistics(self) -> DatabaseStatistics:
        return DatabaseStatistics(
            dialect=str(self.dialect),
            transactions=self._transactions,
            committed=self._committed,
            rolled_back=self._rolled_back,
            active=self._transactions - self._committed - self._rolled_back,
            conflicts=self._conflicts,
            retries=self._retries,
            errors=self._errors,
            pool_size=self._pool_size(),
        )

    async def __aenter__(self) -> Database:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # --- what a backend implements -----------------------------------------------------
    @abc.abstractmethod
    def _transaction(self) -> AbstractAsyncContextManager[Connection]:
        """Begin; yield the connection; commit, or roll back on an exception."""

    @abc.abstractmethod
    async def _close(self) -> None: ...

    @abc.abstractmethod
    def _pool_size(self) -> int: ...
