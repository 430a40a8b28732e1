"""The ledger's tables, as migrations of scope ``credits``.

- ``credit_accounts``: one row per account; ``posted``/``pending`` are a **cache** of the
  sums over the account's entries, updated in the same transaction as each entry.
- ``credit_entries``: the append-only journal; every change of a balance is one row
  (``posted_delta``, ``pending_delta``). Triggers refuse UPDATE and DELETE.
- ``credit_reservations``: two-phase charges and their state (pending, posted, voided,
  expired), deadline in wall-clock seconds.
- ``credit_requests``: idempotency keys with the request's fingerprint and its result.
"""

from __future__ import annotations

from typing import Final

from steadybot.storage import Migration

__all__ = ["LEDGER_MIGRATIONS", "LEDGER_SCOPE"]

LEDGER_SCOPE: Final = "credits"

_TABLES: Final = """
CREATE TABLE credit_accounts (
    id TEXT PRIMARY KEY,
    allow_negative BOOLEAN NOT NULL,
    posted BIGINT NOT NULL DEFAULT 0,
    pending BIGINT NOT NULL DEFAULT 0 CHECK (pending >= 0),
    created_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE credit_entries (
    id {serial},
    account_id TEXT NOT NULL REFERENCES credit_accounts (id),
    kind TEXT NOT NULL CHECK (kind IN ('deposit', 'reserve', 'post', 'void', 'expire')),
    posted_delta BIGINT NOT NULL,
    pending_delta BIGINT NOT NULL,
    reservation_id TEXT,
    request_key TEXT,
    at DOUBLE PRECISION NOT NULL
);
CREATE INDEX credit_entries_by_account ON credit_entries (account_id);
CREATE INDEX credit_entries_by_reservation ON credit_entries (reservation_id);
CREATE TABLE credit_reservations (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES credit_accounts (id),
    amount BIGINT NOT NULL CHECK (amount > 0),
    state TEXT NOT NULL CHECK (state IN ('pending', 'posted', 'voided', 'expired')),
    posted_amount BIGINT NOT NULL DEFAULT 0 CHECK (posted_amount >= 0),
    deadline DOUBLE PRECISION NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    resolved_at DOUBLE PRECISION
);
CREATE INDEX credit_reservations_due ON credit_reservations (deadline)
    WHERE state = 'pending';
CREATE TABLE credit_requests (
    key TEXT PRIMARY KEY,
    operation TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    result TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL
);
"""

_SQLITE_APPEND_ONLY: Final = """
CREATE TRIGGER credit_entries_no_update BEFORE UPDATE ON credit_entries
BEGIN SELECT RAISE(ABORT, 'credit_entries is append-only'); END;
CREATE TRIGGER credit_entries_no_delete BEFORE DELETE ON credit_entries
BEGIN SELECT RAISE(ABORT, 'credit_entries is append-only'); END;
"""

_POSTGRES_APPEND_ONLY: Final = """
CREATE FUNCTION credit_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $body$
BEGIN
    RAISE EXCEPTION 'credit_entries is append-only';
END
$body$;
CREATE TRIGGER credit_entries_append_only BEFORE UPDATE OR DELETE ON credit_entries
FOR EACH ROW EXECUTE FUNCTION credit_entries_append_only();
"""

LEDGER_MIGRATIONS: Final = (
    Migration(
        1,
        "credit ledger tables",
        {
            "sqlite": _TABLES.format(serial="INTEGER PRIMARY KEY AUTOINCREMENT")
            + _SQLITE_APPEND_ONLY,
            "postgresql": _TABLES.format(serial="BIGSERIAL PRIMARY KEY") + _POSTGRES_APPEND_ONLY,
        },
        scope=LEDGER_SCOPE,
    ),
)
"""Pass to ``open_database(..., migrations=...)`` (with the app's own), or call
:meth:`Ledger.migrate`."""
