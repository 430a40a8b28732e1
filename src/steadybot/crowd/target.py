"""What a crowd drives: the emulator in this process, or a standalone one over HTTP.

:class:`~steadybot.emulator.Emulator` satisfies :class:`CrowdTarget` directly;
:class:`RemoteEmulator` speaks the emulator's control API (``/_emulator/act``,
``/_emulator/snapshot``) and its REST API for the scenario's setup, so
``steadybot crowd --emulator URL`` runs the same scenarios against an emulator that
``steadybot emulate`` started elsewhere.
"""

from __future__ import annotations

from collections.abc import Awaitable
from types import TracebackType
from typing import Any, Protocol

import aiohttp
import msgspec

from steadybot.emulator.views import Action, InteractionView, Snapshot

__all__ = ["CrowdTarget", "RemoteEmulator", "RemoteEmulatorError"]

JSON = dict[str, Any]
REQUEST_TIMEOUT = 30.0  # seconds; an act waits for the bot's HTTP reply


class CrowdTarget(Protocol):
    """The emulator operations a crowd and its scenarios use."""

    @property
    def user_ids(self) -> list[str]: ...

    @property
    def channel_ids(self) -> list[str]: ...

    def info(self) -> JSON: ...

    async def act(self, action: Action) -> InteractionView: ...

    def snapshot(
        self, ids: list[str] | None = None, full: bool = True
    ) -> Snapshot | Awaitable[Snapshot]: ...

    async def post_message(self, channel_id: str, body: JSON) -> JSON: ...


class RemoteEmulatorError(Exception):
    """The standalone emulator refused a control request or could not be reached."""


class RemoteEmulator:
    """A standalone emulator, reached at ``url`` (e.g. ``http://127.0.0.1:8090``)."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self._session: aiohttp.ClientSession | None = None
        self._info: JSON = {}

    async def __aenter__(self) -> RemoteEmulator:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT))
        try:
            self._info = await self._call("GET", "/_emulator/info", None, dict)
        except BaseException:
            await self._session.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()

    @property
    def user_ids(self) -> list[str]:
        return list(self._info["user_ids"])

    @property
    def channel_ids(self) -> list[str]:
        return list(self._info["channel_ids"])

    def info(self) -> JSON:
        return dict(self._info)

    async def act(self, action: Action) -> InteractionView:
        view: InteractionView = await self._call("POST", "/_emulator/act", action, InteractionView)
        return view

    async def snapshot(self, ids: list[str] | None = None, full: bool = True) -> Snapshot:
        body = {"ids": ids, "full": full}
        snapshot: Snapshot = await self._call("POST", "/_emulator/snapshot", body, Snapshot)
        return snapshot

    async def set_interactions_endpoint(self, url: str) -> None:
        await self._call("PUT", "/_emulator/endpoint", {"url": url}, None)

    async def post_message(self, channel_id: str, body: JSON) -> JSON:
        path = f"{self._info['api_base'].removeprefix(self.url)}/channels/{channel_id}/messages"
        headers = {"Authorization": f"Bot {self._info['bot_token']}"}
        message: JSON = await self._call("POST", path, body, dict, headers=headers)
        return message

    async def _call(
        self,
        method: str,
        path: str,
        body: object,
        type_: type[Any] | None,
        *,
        headers: dict[str, str] | None = None,
    ) -> Any:
        if self._session is None:
            raise RemoteEmulatorError("use RemoteEmulator as an async context manager")
        data = msgspec.json.encode(body) if body is not None else None
        sent = {"Content-Type": "application/json", **(headers or {})}
        try:
            async with self._session.request(
                method, self.url + path, data=data, headers=sent
            ) as reply:
                raw = await reply.read()
                if reply.status >= 400:
                    detail = raw[:200].decode(errors="replace")
                    raise RemoteEmulatorError(f"{method} {path}: HTTP {reply.status}: {detail}")
        except aiohttp.ClientError as exc:
            raise RemoteEmulatorError(f"{method} {path}: {type(exc).__name__}") from None
        if type_ is None:
            return None
        return msgspec.json.decode(raw, type=type_)
