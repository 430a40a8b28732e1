"""The storage layer's error types, the same on SQLite and PostgreSQL.

Callers branch on these, never on a driver's exceptions: a unique violation is a
:class:`DuplicateKey` whether ``sqlite3`` or ``asyncpg`` raised it, and a transaction
that lost a race (PostgreSQL 40001/40P01, SQLite "database is locked") is a
:class:`TransactionConflict`, which :meth:`Database.run_transaction` retries.
"""

from __future__ import annotations

from steadybot.errors import SteadybotError

__all__ = [
    "ConstraintViolation",
    "DuplicateKey",
    "MigrationError",
    "StorageError",
    "StorageUnavailable",
    "TransactionAborted",
    "TransactionConflict",
]


class StorageError(SteadybotError):
    """A database operation failed (bad SQL, bad URL, closed database, ...)."""


class StorageUnavailable(StorageError):
    """The database cannot be reached or the connection was lost.

    Not retried by :meth:`Database.run_transaction`: when a connection drops during
    ``COMMIT`` nobody knows whether the transaction committed, so only the caller (with
    an idempotency key) can decide to try again.
    """


class ConstraintViolation(StorageError):
    """A write broke a constraint (unique, foreign key, check, not null)."""


class DuplicateKey(ConstraintViolation):
    """A write broke a unique constraint or primary key: the row already exists."""


class TransactionConflict(StorageError):
    """The transaction lost a race and was rolled back; running it again may succeed.

    PostgreSQL serialization failures (40001) and deadlocks (40P01), SQLite's
    "database is locked"/"busy" once ``busy_timeout`` ran out.
    """


class TransactionAborted(StorageError):
    """A statement ran in a transaction that an earlier error already doomed.

    PostgreSQL refuses every statement after an error until the transaction ends;
    SQLite would carry on. steadybot makes SQLite refuse too, so code behaves the same
    on both backends. Catch the first error outside the transaction, or run the risky
    statement in :meth:`Connection.savepoint`.
    """


class MigrationError(StorageError):
    """The migrations cannot be applied as given (duplicate versions, renamed ones...)."""
