"""Crowd reports as a terminal table (rich)."""

from __future__ import annotations

from collections.abc import Mapping

from rich.table import Table

from steadybot.crowd.report import CrowdReport

__all__ = ["report_table"]


def report_table(reports: Mapping[str, CrowdReport]) -> Table:
    """The reports side by side, one column each, checks last."""
    table = Table(title=f"the {next(iter(reports.values())).scenario} story, as Discord saw it")
    table.add_column("")
    for label in reports:
        table.add_column(label, justify="right")
    rows: list[tuple[str, list[str]]] = [
        ("interactions", [str(r.interactions) for r in reports.values()]),
        ("acknowledged in time", [str(r.acknowledged_in_time) for r in reports.values()]),
        ("failed (user saw an error)", [str(r.failed) for r in reports.values()]),
        ("double acknowledged", [str(r.double_acknowledged) for r in reports.values()]),
        (
            "ack p50 / p99 ms",
            [f"{r.ack_ms.p50:.0f} / {r.ack_ms.p99:.0f}" for r in reports.values()],
        ),
        ("ack max ms", [f"{r.ack_ms.max:.0f}" for r in reports.values()]),
        (
            "follow-ups sent / delivered",
            [f"{r.followups.sent} / {r.followups.delivered}" for r in reports.values()],
        ),
        ("429s answered", [str(r.rate_limited) for r in reports.values()]),
        ("faults injected", [str(r.faults_injected) for r in reports.values()]),
    ]
    names = list(dict.fromkeys(name for r in reports.values() for name in r.checks))
    for name in names:
        cells = []
        for report in reports.values():
            check = report.checks.get(name)
            cells.append(
                "-" if check is None else ("ok" if check.ok else "FAILED") + f": {check.detail}"
            )
        rows.append((name, cells))
    for label, cells in rows:
        table.add_row(label, *cells)
    return table
