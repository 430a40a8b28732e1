"""The PostgreSQL backend: an asyncpg pool, READ COMMITTED transactions.

Each transaction borrows a pooled connection (waiting at most ``acquire_timeout``),
runs at READ COMMITTED and returns the connection on exit; asyncpg resets it on
release. Code that reads a row to change it locks it with ``SELECT ... FOR UPDATE``
(:attr:`Connection.for_update`), which queues concurrent writers of that row instead
of failing them, as SERIALIZABLE would under contention on a hot account. Deadlocks and
serialization failures still surface as :class:`TransactionConflict`, for
:meth:`Database.run_transaction` to retry.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from steadybot.clock import Clock
from steadybot.storage._sql import redact_url
from steadybot.storage.database import Connection, Database, Dialect, Row, StorageOptions
from steadybot.storage.errors import (
    ConstraintViolation,
    DuplicateKey,
    StorageError,
    StorageUnavailable,
    TransactionAborted,
    TransactionConflict,
)

__all__ = ["PostgresDatabase", "open_postgres"]

_CONFLICT_STATES = frozenset({"40001", "40P01"})  # serialization failure, deadlock


def _translate(exc: BaseException) -> StorageError:
    if isinstance(exc, asyncpg.UniqueViolationError):
        return DuplicateKey(str(exc))
    if isinstance(exc, asyncpg.IntegrityConstraintViolationError):
        return ConstraintViolation(str(exc))
    if isinstance(exc, asyncpg.InFailedSQLTransactionError):
        return TransactionAborted(str(exc))
    if isinstance(exc, asyncpg.PostgresError):
        if getattr(exc, "sqlstate", None) in _CONFLICT_STATES:
            return TransactionConflict(str(exc))
        return StorageError(f"postgresql: {exc}")
    if isinstance(exc, asyncpg.InterfaceError | OSError | asyncio.TimeoutError):
        return StorageUnavailable(f"postgresql: {type(exc).__name__}: {exc}")
    if isinstance(exc, asyncpg.exceptions.DataError):  # bad argument types (client side)
        return StorageError(f"postgresql: {exc}")
    raise exc


def _count(status: str) -> int:
    """Rows affected, from a command tag such as ``INSERT 0 3`` or ``UPDATE 2``."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


class _PostgresConnection(Connection):
    dialect = Dialect.POSTGRESQL

    def __init__(self, connection: asyncpg.pool.PoolConnectionProxy[asyncpg.Record]) -> None:
        super().__init__()
        self._connection = connection

    async def _execute(self, sql: str, args: tuple[object, ...]) -> int:
        try:
            status = await self._connection.execute(sql, *args)
        except Exception as exc:
            raise _translate(exc) from exc
        return _count(status)

    async def _executemany(self, sql: str, rows: list[tuple[object, ...]]) -> None:
        try:
            await self._connection.executemany(sql, rows)
        except Exception as exc:
            raise _translate(exc) from exc

    async def _fetch(self, sql: str, args: tuple[object, ...]) -> list[Row]:
        try:
            records = await self._connection.fetch(sql, *args)
        except Exception as exc:
            raise _translate(exc) from exc
        return [dict(record.items()) for record in records]

    async def _fetchrow(self, sql: str, args: tuple[object, ...]) -> Row | None:
        try:
            record = await self._connection.fetchrow(sql, *args)
        except Exception as exc:
            raise _translate(exc) from exc
        return None if record is None else dict(record.items())

    async def _script(self, script: str) -> None:
        await self._execute(script, ())  # no arguments: the simple protocol takes many


class PostgresDatabase(Database):
    """A :class:`Database` on a PostgreSQL server, through an asyncpg pool."""

    dialect = Dialect.POSTGRESQL

    def __init__(
        self, pool: asyncpg.Pool[asyncpg.Record], *, clock: Clock, options: StorageOptions
    ) -> None:
        super().__init__(clock=clock, options=options)
        self._pool = pool

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Connection]:
        try:
            proxy = await self._pool.acquire(timeout=self._options.acquire_timeout)
        except Exception as exc:
            raise _translate(exc) from exc
        try:
            transaction = proxy.transaction(isolation="read_committed")
            try:
                await transaction.start()
            except Exception as exc:
                raise _translate(exc) from exc
            try:
                yield _PostgresConnection(proxy)
            except BaseException:
                # The pool discards a connection it cannot reset.
                with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                    await asyncio.shield(transaction.rollback())
                raise
            try:
                await transaction.commit()
            except Exception as exc:
                raise _translate(exc) from exc
        finally:
            await self._pool.release(proxy)

    async def _close(self) -> None:
        try:
            await asyncio.wait_for(self._pool.close(), self._options.command_timeout)
        except TimeoutError:
            self._pool.terminate()

    def _pool_size(self) -> int:
        return self._pool.get_max_size()


async def open_postgres(url: str, *, clock: Clock, options: StorageOptions) -> PostgresDatabase:
    """Connect a pool to the server at ``url`` (asyncpg DSN; extra query parameters
    such as ``?search_path=myschema`` become server settings)."""
    if options.pool_size < 1:
        raise StorageError(f"pool size must be >= 1, got {options.pool_size}")
    try:
        pool = await asyncpg.create_pool(
            url,
            min_size=1,
            max_size=options.pool_size,
            command_timeout=options.command_timeout,
            timeout=options.acquire_timeout,
        )
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
        raise StorageUnavailable(
            f"cannot connect to PostgreSQL at {redact_url(url)}: {type(exc).__name__}: {exc}"
        ) from None
    return PostgresDatabase(pool, clock=clock, options=options)
