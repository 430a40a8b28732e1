"""Discord-shaped error answers for the emulator's routes.

A route raises :class:`EmulatedError`; the server turns it into the JSON body Discord
sends (``{"code", "message", "errors"}``) with the status clients observe for that code
(see ``shared/discord-facts.md``).
"""

from __future__ import annotations

from typing import Any

from steadybot.constants import ErrorCode

__all__ = [
    "CANNOT_EXECUTE_ON_DM",
    "UNKNOWN_APPLICATION",
    "UNKNOWN_APPLICATION_COMMAND",
    "EmulatedError",
    "invalid_form",
    "unknown",
]

# Short names for codes only the emulator answers (the values live in ErrorCode).
UNKNOWN_APPLICATION = ErrorCode.UNKNOWN_APPLICATION
UNKNOWN_APPLICATION_COMMAND = ErrorCode.UNKNOWN_APPLICATION_COMMAND
CANNOT_EXECUTE_ON_DM = ErrorCode.CANNOT_EXECUTE_ON_DM


class EmulatedError(Exception):
    """An error answer: HTTP status, Discord code, message and optional field errors."""

    def __init__(
        self, status: int, code: int, message: str, errors: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.errors:
            body["errors"] = self.errors
        return body


_UNKNOWN_MESSAGES: dict[int, str] = {
    UNKNOWN_APPLICATION: "Unknown Application",
    ErrorCode.UNKNOWN_CHANNEL: "Unknown Channel",
    ErrorCode.UNKNOWN_GUILD: "Unknown Guild",
    ErrorCode.UNKNOWN_MEMBER: "Unknown Member",
    ErrorCode.UNKNOWN_MESSAGE: "Unknown Message",
    ErrorCode.UNKNOWN_ROLE: "Unknown Role",
    ErrorCode.UNKNOWN_WEBHOOK: "Unknown Webhook",
    ErrorCode.UNKNOWN_INTERACTION: "Unknown interaction",
    UNKNOWN_APPLICATION_COMMAND: "Unknown application command",
}


def unknown(code: int) -> EmulatedError:
    """A 404 for an unknown resource."""
    return EmulatedError(404, code, _UNKNOWN_MESSAGES[code])


def invalid_form(field_errors: dict[str, tuple[str, str]]) -> EmulatedError:
    """50035 with errors nested as Discord does: ``errors.<field>._errors[]``.

    ``field_errors`` maps a dotted field path to (error code, message); list items are
    numbered (``options.3.name``), and the empty path is the body itself (``errors._errors``).
    """
    errors: dict[str, Any] = {}
    for path, (code, message) in field_errors.items():
        node = errors
        for part in filter(None, path.split(".")):
            node = node.setdefault(part, {})
        node.setdefault("_errors", []).append({"code": code, "message": message})
    return EmulatedError(400, ErrorCode.INVALID_FORM_BODY, "Invalid Form Body", errors)
