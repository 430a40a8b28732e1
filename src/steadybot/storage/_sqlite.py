"""The SQLite backend: one aiosqlite connection, transactions serialized in-process.

SQLite allows one writer at a time per file. Within the process an asyncio lock hands
the single connection to one transaction at a time (a connection cannot hold two
transactions anyway); ``BEGIN IMMEDIATE`` takes the file's write lock at the start, so
a read-modify-write never discovers half-way that another process wrote first, and
``busy_timeout`` makes SQLite wait for such a process instead of failing at once. WAL
mode lets other processes read while we write.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from steadybot.clock import Clock
from steadybot.storage._sql import split_script, to_sqlite_placeholders
from steadybot.storage.database import Connection, Database, Dialect, Row, StorageOptions
from steadybot.storage.errors import (
    ConstraintViolation,
    DuplicateKey,
    StorageError,
    StorageUnavailable,
    TransactionConflict,
)

__all__ = ["SqliteDatabase", "open_sqlite"]

_SYNCHRONOUS = frozenset({"OFF", "NORMAL", "FULL", "EXTRA"})


def _translate(exc: Exception) -> StorageError:
    message = str(exc)
    if isinstance(exc, sqlite3.IntegrityError):
        if "UNIQUE constraint failed" in message or "PRIMARY KEY" in message:
            return DuplicateKey(message)
        return ConstraintViolation(message)
    if isinstance(exc, sqlite3.OperationalError) and (
        "database is locked" in message or "database is busy" in message
    ):
        return TransactionConflict(message)
    if isinstance(exc, sqlite3.Error | ValueError):
        return StorageError(f"sqlite: {message}")
    raise exc


def _dict_row(cursor: sqlite3.Cursor, values: tuple[Any, ...]) -> dict[str, Any]:
    return {column[0]: value for column, value in zip(cursor.description, values, strict=True)}


class _SqliteConnection(Connection):
    dialect = Dialect.SQLITE

    def __init__(self, connection: aiosqlite.Connection) -> None:
        super().__init__()
        self._connection = connection

    async def _execute(self, sql: str, args: tuple[object, ...]) -> int:
        try:
            cursor = await self._connection.execute(to_sqlite_placeholders(sql), args)
            count = cursor.rowcount
            await cursor.close()
        except Exception as exc:
            raise _translate(exc) from exc
        return max(count, 0)

    async def _executemany(self, sql: str, rows: list[tuple[object, ...]]) -> None:
        try:
            await self._connection.executemany(to_sqlite_placeholders(sql), rows)
        except Exception as exc:
            raise _translate(exc) from exc

    async def _fetch(self, sql: str, args: tuple[object, ...]) -> list[Row]:
        try:
            rows = await self._connection.execute_fetchall(to_sqlite_placeholders(sql), args)
        except Exception as exc:
            raise _translate(exc) from exc
        return list(rows)  # type: ignore[arg-type]  # the row factory makes dicts

    async def _fetchrow(self, sql: str, args: tuple[object, ...]) -> Row | None:
        try:
            async with self._connection.execute(to_sqlite_placeholders(sql), args) as cursor:
                row: Row | None = await cursor.fetchone()  # type: ignore[assignment]
        except Exception as exc:
            raise _translate(exc) from exc
        return row

    async def _script(self, script: str) -> None:
        for statement in split_script(script):
            await self._execute(statement, ())


class SqliteDatabase(Database):
    """A :class:`Database` on one SQLite file (or ``:memory:``)."""

    dialect = Dialect.SQLITE

    def __init__(
        self, connection: aiosqlite.Connection, *, clock: Clock, options: StorageOptions
    ) -> None:
        super().__init__(clock=clock, options=options)
        self._connection = connection
        self._lock: asyncio.Lock | None = None  # made inside the running loop

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Connection]:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._connection.in_transaction:  # left open by a cancelled rollback
                await self._rollback()
            try:
                await self._connection.execute("BEGIN IMMEDIATE")
            except Exception as exc:
                raise _translate(exc) from exc
            connection = _SqliteConnection(self._connection)
            try:
                yield connection
            except BaseException:
                await self._rollback()
                raise
            try:
                await self._connection.execute("COMMIT")
            except Exception as exc:
                await self._rollback()
                raise _translate(exc) from exc

    async def _rollback(self) -> None:
        # Shielded: a second cancellation must not leave the transaction open. An error
        # means nothing to roll back or a lost connection; the next BEGIN tells.
        with contextlib.suppress(sqlite3.Error):
            await asyncio.shield(self._connection.rollback())

    async def _close(self) -> None:
        await self._connection.close()

    def _pool_size(self) -> int:
        return 1


async def open_sqlite(path: str, *, clock: Clock, options: StorageOptions) -> SqliteDatabase:
    """Open (creating it if needed) the SQLite database at ``path``."""
    synchronous = options.sqlite_synchronous.upper()
    if synchronous not in _SYNCHRONOUS:
        raise StorageError(f"sqlite synchronous must be one of {sorted(_SYNCHRONOUS)}")
    if path != ":memory:" and not Path(path).parent.is_dir():
        raise StorageUnavailable(
            f"cannot open SQLite database {path!r}: directory {str(Path(path).parent)!r} "
            "does not exist"
        )
    pending = aiosqlite.connect(path, isolation_level=None)
    try:
        connection = await pending
    except sqlite3.Error as exc:
        # aiosqlite stops its worker thread after a failed connect and answers on this
        # loop: wait for the thread, or it may answer a loop that is closed by then.
        worker = getattr(pending, "_thread", None)
        if worker is not None:
            await asyncio.to_thread(worker.join, 1.0)
        raise StorageUnavailable(f"cannot open SQLite database {path!r}: {exc}") from exc
    try:
        connection.row_factory = _dict_row  # type: ignore[assignment]
        if path != ":memory:":
            await connection.execute("PRAGMA journal_mode=WAL")
        await connection.execute(f"PRAGMA busy_timeout={int(options.busy_timeout * 1000)}")
        await connection.execute("PRAGMA foreign_keys=ON")
        await connection.execute(f"PRAGMA synchronous={synchronous}")
    except sqlite3.Error as exc:
        await connection.close()
        raise StorageUnavailable(f"cannot set up SQLite database {path!r}: {exc}") from exc
    return SqliteDatabase(connection, clock=clock, options=options)
