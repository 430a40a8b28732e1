"""Storage helpers that need no database: placeholders, scripts, URLs and their errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from steadybot.clock import ManualClock
from steadybot.storage import StorageError, StorageUnavailable, open_database
from steadybot.storage._sql import redact_url, split_script, to_sqlite_placeholders


def test_placeholders_become_numbered_sqlite_parameters() -> None:
    assert to_sqlite_placeholders("SELECT $1, $2, $1, $10") == "SELECT ?1, ?2, ?1, ?10"


def test_placeholders_in_literals_identifiers_and_comments_stay() -> None:
    sql = """SELECT '$1', 'it''s $2', "col$3", $4 -- $5\n/* $6 */ FROM t"""
    assert to_sqlite_placeholders(sql) == (
        """SELECT '$1', 'it''s $2', "col$3", ?4 -- $5\n/* $6 */ FROM t"""
    )


def test_scripts_split_on_statement_ends_only() -> None:
    script = """
    CREATE TABLE a (x TEXT DEFAULT 'a;b');
    CREATE TRIGGER t AFTER INSERT ON a BEGIN UPDATE a SET x = 'c'; END;
    ;
    CREATE INDEX i ON a (x)
    """
    statements = split_script(script)
    assert len(statements) == 3
    assert statements[0].startswith("CREATE TABLE a")
    assert "END;" in statements[1]
    assert statements[2].startswith("CREATE INDEX")


def test_redact_url_hides_the_password_only() -> None:
    assert redact_url("postgresql://bot:hunter2@db:5432/x") == "postgresql://bot:***@db:5432/x"
    assert redact_url("postgresql://bot@db/x") == "postgresql://bot@db/x"
    # libpq also takes the password as a query parameter.
    assert (
        redact_url("postgresql://bot@db/x?sslmode=require&password=hunter2")
        == "postgresql://bot@db/x?sslmode=require&password=***"
    )


async def test_unknown_scheme_is_named_and_the_password_never_shown() -> None:
    with pytest.raises(StorageError, match="'mysql'") as info:
        await open_database("mysql://root:hunter2@localhost/db", clock=ManualClock())
    assert "hunter2" not in str(info.value)
    with pytest.raises(StorageError, match="no scheme"):
        await open_database("just-a-file.db", clock=ManualClock())
    with pytest.raises(StorageError, match="needs a path"):
        await open_database("sqlite:///", clock=ManualClock())


async def test_unreachable_postgres_is_unavailable_without_the_password() -> None:
    # Port 1 on localhost refuses at once; no server is involved.
    with pytest.raises(StorageUnavailable) as info:
        await open_database("postgresql://bot:hunter2@127.0.0.1:1/db", clock=ManualClock())
    assert "hunter2" not in str(info.value)
    assert "***" in str(info.value)


async def test_sqlite_in_a_missing_directory_is_unavailable() -> None:
    with pytest.raises(StorageUnavailable, match="does not exist"):
        await open_database("sqlite:////nonexistent/dir/x.db", clock=ManualClock())


async def test_sqlite_file_that_cannot_be_opened_is_unavailable(tmp_path: Path) -> None:
    # A directory where the file should be: sqlite3 cannot open it.
    with pytest.raises(StorageUnavailable, match="cannot open"):
        await open_database(f"sqlite:///{tmp_path}", clock=ManualClock())


async def test_sqlite_in_memory_works() -> None:
    db = await open_database("sqlite:///:memory:", clock=ManualClock())
    try:
        assert await db.fetchval("SELECT $1 + $2", 2, 3) == 5
    finally:
        await db.close()
