"""Reconciliation: recompute the ledger from its journal and list every disagreement.

Each check is one SQL statement, so it sees one consistent snapshot even while
requests run (READ COMMITTED gives each statement its own). What is checked:

- ``posted``/``pending``: an account's cached balance differs from the sums of its
  entries (a write outside the ledger, a lost update, a bug);
- ``pending``: the cached ``pending`` differs from the held amounts of the account's
  pending reservations;
- ``negative``: available below zero on an account that does not allow it;
- ``resolution``: a reservation with other than one ``reserve`` entry, or resolved
  more or less than once (pending with a resolving entry, resolved without one, or
  twice);
- ``overdue``: still pending more than ``overdue_grace`` seconds past its deadline (the
  sweeper is not running).
"""

from __future__ import annotations

from steadybot.credits.models import Discrepancy, ReconcileReport
from steadybot.storage import Database

__all__ = ["reconcile"]

_BALANCES = """
SELECT a.id, a.posted, a.pending, a.allow_negative,
    CAST(COALESCE((SELECT SUM(e.posted_delta) FROM credit_entries e
                   WHERE e.account_id = a.id), 0) AS BIGINT) AS entry_posted,
    CAST(COALESCE((SELECT SUM(e.pending_delta) FROM credit_entries e
                   WHERE e.account_id = a.id), 0) AS BIGINT) AS entry_pending,
    CAST(COALESCE((SELECT SUM(r.amount) FROM credit_reservations r
                   WHERE r.account_id = a.id AND r.state = 'pending'), 0) AS BIGINT) AS held
FROM credit_accounts a
ORDER BY a.id
"""

_RESOLUTIONS = """
SELECT r.id, r.account_id, r.state,
    SUM(CASE WHEN e.kind = 'reserve' THEN 1 ELSE 0 END) AS reserves,
    SUM(CASE WHEN e.kind IN ('post', 'void', 'expire') THEN 1 ELSE 0 END) AS resolutions
FROM credit_reservations r LEFT JOIN credit_entries e ON e.reservation_id = r.id
GROUP BY r.id, r.account_id, r.state
HAVING SUM(CASE WHEN e.kind = 'reserve' THEN 1 ELSE 0 END) <> 1
    OR SUM(CASE WHEN e.kind IN ('post', 'void', 'expire') THEN 1 ELSE 0 END)
       <> (CASE WHEN r.state = 'pending' THEN 0 ELSE 1 END)
ORDER BY r.id
"""

_OVERDUE = """
SELECT id, account_id, deadline FROM credit_reservations
WHERE state = 'pending' AND deadline < $1 ORDER BY deadline LIMIT 1000
"""


async def reconcile(database: Database, *, now: float, overdue_grace: float) -> ReconcileReport:
    """Check the ledger in ``database`` (see the module docstring)."""
    found: list[Discrepancy] = []
    rows = await database.fetch(_BALANCES)
    for row in rows:
        account = row["id"]
        if row["posted"] != row["entry_posted"]:
            found.append(Discrepancy("posted", account, row["entry_posted"], row["posted"]))
        if row["pending"] != row["entry_pending"]:
            found.append(Discrepancy("pending", account, row["entry_pending"], row["pending"]))
        elif row["pending"] != row["held"]:
            found.append(
                Discrepancy(
                    "pending",
                    account,
                    row["held"],
                    row["pending"],
                    detail="differs from the pending reservations' amounts",
                )
            )
        available = row["posted"] - row["pending"]
        if available < 0 and not row["allow_negative"]:
            found.append(Discrepancy("negative", account, 0, available))
    for row in await database.fetch(_RESOLUTIONS):
        found.append(
            Discrepancy(
                "resolution",
                row["account_id"],
                0 if row["state"] == "pending" else 1,
                row["resolutions"],
                reservation_id=row["id"],
                detail=f"state {row['state']}, {row['reserves']} reserve entries, "
                f"{row['resolutions']} resolving entries",
            )
        )
    for row in await database.fetch(_OVERDUE, now - overdue_grace):
        found.append(
            Discrepancy(
                "overdue",
                row["account_id"],
                row["deadline"],
                now,
                reservation_id=row["id"],
                detail=f"pending {now - row['deadline']:.0f}s past its deadline",
            )
        )
    entries = await database.fetchval("SELECT COUNT(*) FROM credit_entries")
    reservations = await database.fetchval("SELECT COUNT(*) FROM credit_reservations")
    return ReconcileReport(
        accounts=len(rows),
        entries=int(entries),
        reservations=int(reservations),
        discrepancies=tuple(found),
    )
