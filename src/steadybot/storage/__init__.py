"""Storage: one async data layer on SQLite (default, a file) or PostgreSQL.

See ``docs/storage.md``. ``open_database(url)`` gives a :class:`Database`; work happens
in ``async with db.transaction() as conn`` blocks or :meth:`Database.run_transaction`.
"""

from steadybot.storage.connect import DEFAULT_DATABASE_URL, open_database
from steadybot.storage.database import (
    Connection,
    Database,
    DatabaseStatistics,
    Dialect,
    Row,
    StorageOptions,
)
from steadybot.storage.errors import (
    ConstraintViolation,
    DuplicateKey,
    MigrationError,
    StorageError,
    StorageUnavailable,
    TransactionAborted,
    TransactionConflict,
)
from steadybot.storage.migrations import Migration
from steadybot.storage.writer import BatchedWriter, WriterClosed, WriterStatistics

__all__ = [
    "DEFAULT_DATABASE_URL",
    "BatchedWriter",
    "Connection",
    "ConstraintViolation",
    "Database",
    "DatabaseStatistics",
    "Dialect",
    "DuplicateKey",
    "Migration",
    "MigrationError",
    "Row",
    "StorageError",
    "StorageOptions",
    "StorageUnavailable",
    "TransactionAborted",
    "TransactionConflict",
    "WriterClosed",
    "WriterStatistics",
    "open_database",
]
