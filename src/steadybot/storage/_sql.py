"""SQL text helpers: one placeholder style for both backends, script splitting, URLs.

steadybot's SQL is written once, with asyncpg's ``$1, $2`` placeholders. SQLite accepts
numbered parameters as ``?1, ?2`` (``?NNN``), so translating is a textual rewrite that
must skip string literals, quoted identifiers and comments. Results are cached: the
same statements run again and again.
"""

from __future__ import annotations

import functools
import re
import sqlite3
from urllib.parse import parse_qsl, urlsplit, urlunsplit

__all__ = ["redact_url", "split_script", "to_sqlite_placeholders"]

# A literal, a quoted identifier or a comment (kept as is), or a $N placeholder.
_TOKENS = re.compile(
    r"""(?P<keep>'(?:[^']|'')*'|"(?:[^"]|"")*"|--[^\n]*|/\*.*?\*/)|\$(?P<number>\d+)""",
    re.DOTALL,
)


@functools.lru_cache(maxsize=1024)
def to_sqlite_placeholders(sql: str) -> str:
    """Rewrite ``$1`` placeholders as SQLite's ``?1``, leaving literals alone."""

    def replace(match: re.Match[str]) -> str:
        number = match.group("number")
        return match.group(0) if number is None else f"?{number}"

    return _TOKENS.sub(replace, sql)


def split_script(script: str) -> list[str]:
    """Split a multi-statement script into statements, SQLite's way.

    ``executescript`` would commit the surrounding transaction first, so migrations run
    statement by statement instead; ``sqlite3.complete_statement`` knows where a
    statement ends (semicolons inside literals or a trigger's ``BEGIN ... END`` do not).
    """
    statements: list[str] = []
    buffer = ""
    for piece in script.split(";"):
        buffer += piece + ";"
        if sqlite3.complete_statement(buffer):
            statement = buffer.strip()
            if statement.strip("; \n\t"):
                statements.append(statement)
            buffer = ""
    if buffer.strip("; \n\t"):
        statements.append(buffer.strip().rstrip(";"))
    return statements


def redact_url(url: str) -> str:
    """The URL with any password replaced by ``***``: safe for errors and logs. Both
    places libpq accepts one are covered: ``user:password@host`` and
    ``?password=...``."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if parts.password is not None:
            host = parts.hostname or ""
            port = f":{parts.port}" if parts.port is not None else ""
            netloc = f"{parts.username or ''}:***@{host}{port}"
        query = "&".join(
            f"{name}=***" if name.lower() == "password" else f"{name}={value}"
            for name, value in parse_qsl(parts.query, keep_blank_values=True)
        )
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        return "<unparseable URL>"
