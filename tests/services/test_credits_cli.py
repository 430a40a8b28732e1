"""`steadybot credits reconcile` against a real database: exit 0 when consistent, 1 not."""

from __future__ import annotations

import asyncio

import pytest
from click.testing import CliRunner

from steadybot.cli import main
from steadybot.clock import ManualClock
from steadybot.credits import LEDGER_MIGRATIONS, Ledger
from steadybot.storage import open_database

pytestmark = pytest.mark.services


async def test_reconcile_command_reports_and_exits_by_verdict(database_url: str) -> None:
    database = await open_database(database_url, clock=ManualClock(), migrations=LEDGER_MIGRATIONS)
    try:
        ledger = Ledger(database)
        await ledger.open_account("user:1")
        await ledger.deposit("user:1", 10, key="d")
    finally:
        await database.close()
    runner = CliRunner()
    # The command runs its own event loop: call it from a thread.
    ok = await asyncio.to_thread(
        runner.invoke, main, ["credits", "reconcile", "--database-url", database_url]
    )
    assert ok.exit_code == 0, ok.output
    assert "consistent" in ok.output
    assert "accounts 1, entries 1" in ok.output

    database = await open_database(database_url, clock=ManualClock())
    try:
        await database.execute("UPDATE credit_accounts SET posted = 7 WHERE id = $1", "user:1")
    finally:
        await database.close()
    bad = await asyncio.to_thread(
        runner.invoke, main, ["credits", "reconcile", "--database-url", database_url]
    )
    assert bad.exit_code == 1, bad.output
    assert "1 discrepancies" in bad.output
    assert "user:1" in bad.output


def test_reconcile_command_explains_a_bad_url() -> None:
    result = CliRunner().invoke(main, ["credits", "reconcile", "--database-url", "mysql://x/y"])
    assert result.exit_code == 1
    assert "unsupported database scheme 'mysql'" in result.output


async def test_reconcile_command_says_when_a_database_has_no_ledger(database_url: str) -> None:
    result = await asyncio.to_thread(
        CliRunner().invoke, main, ["credits", "reconcile", "--database-url", database_url]
    )
    assert result.exit_code == 1
    assert "has no credits ledger" in result.output
    assert "Traceback" not in result.output
