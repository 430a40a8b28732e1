"""Session-wide guard: no secret in any log record steadybot emits during the run.

A handler on the root logger sees every record that any test lets through (warnings
and above by default, everything a test lowers the level for). Records from steadybot's
own loggers are checked for the secrets tests use: the emulator's bot tokens, the
support module's tokens, and anything shaped like an interaction token (a run of 100+
URL-safe characters). Any hit fails the session, naming the logger and the test.
"""

from __future__ import annotations

import logging
import re

import pytest
from support import BOT_TOKEN, TOKEN

_PATTERNS = (
    re.compile(r"emulator\.\d{6,}\.[A-Za-z0-9]{38}"),  # the emulator's bot tokens
    re.compile(r"[A-Za-z0-9_\-]{100,}"),  # interaction tokens are long
    re.compile(re.escape(BOT_TOKEN)),
    re.compile(re.escape(TOKEN)),
)


class _SecretWatch(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.current_test = ""
        self.leaks: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not record.name.startswith("steadybot"):
            return
        try:
            text = record.getMessage()
        except Exception:  # a malformed record is not this guard's business
            return
        if record.exc_info and record.exc_info[1] is not None:
            text += f" {record.exc_info[1]!r}"
        for pattern in _PATTERNS:
            if pattern.search(text):
                self.leaks.append(f"{self.current_test}: {record.name}: {text[:200]}")
                return


_watch = _SecretWatch()


def pytest_configure(config: pytest.Config) -> None:
    logging.getLogger().addHandler(_watch)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item):  # type: ignore[no-untyped-def]
    _watch.current_test = item.nodeid
    yield


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    logging.getLogger().removeHandler(_watch)
    if _watch.leaks:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        lines = ["secrets found in steadybot's log records:", *_watch.leaks[:20]]
        if reporter is not None:
            reporter.write_line("\n".join(lines), red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
