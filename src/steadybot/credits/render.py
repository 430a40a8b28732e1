"""A reconciliation report as a rich table (``steadybot credits reconcile``)."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from steadybot.credits.models import ReconcileReport

__all__ = ["reconcile_table"]


def reconcile_table(report: ReconcileReport) -> Group:
    """A summary line and, when something is wrong, one row per discrepancy."""
    verdict = (
        Text("✓ ledger consistent", style="bold green")
        if report.ok
        else Text(f"✗ {len(report.discrepancies)} discrepancies", style="bold red")
    )
    summary = Text.assemble(
        verdict,
        f"  accounts {report.accounts}, entries {report.entries}, "
        f"reservations {report.reservations}",
    )
    if report.ok:
        return Group(summary)
    table = Table(title="discrepancies")
    for column in ("kind", "account", "reservation", "expected", "actual", "detail"):
        table.add_column(column)
    for found in report.discrepancies:
        table.add_row(
            found.kind,
            found.account_id,
            found.reservation_id or "",
            "" if found.expected is None else str(found.expected),
            "" if found.actual is None else str(found.actual),
            found.detail,
        )
    return Group(summary, table)
