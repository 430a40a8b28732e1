"""The emulator's control API: act as users and read state over HTTP.

``POST /_emulator/act`` performs one :class:`~steadybot.emulator.views.Action` (the
emulator signs and delivers the interaction) and returns its
:class:`~steadybot.emulator.views.InteractionView`; ``POST /_emulator/snapshot`` with
``{"ids": [...]}`` returns a :class:`~steadybot.emulator.views.Snapshot` (``"full":
false`` leaves channels and messages out, for cheap polling);
``PUT /_emulator/endpoint`` sets the interactions endpoint URL without the PING check
(``{"url": ...}``), or several to deliver to in turn, like a load balancer in front of
several bot processes (``{"urls": [...]}``).
These routes are the emulator's own, outside ``/api/v10``: no rate limits, no faults.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from aiohttp import web

from steadybot.emulator.views import Action, InteractionView, Snapshot

__all__ = ["ControlRoutes"]


class _SnapshotQuery(msgspec.Struct, kw_only=True):
    ids: list[str] | None = None
    full: bool = True


class _Endpoint(msgspec.Struct, kw_only=True):
    url: str = ""
    urls: list[str] = msgspec.field(default_factory=list)


class ControlRoutes:
    """Handlers bound to one emulator's act/snapshot/endpoint functions."""

    def __init__(
        self,
        *,
        act: Callable[[Action], Awaitable[InteractionView]],
        snapshot: Callable[[list[str] | None, bool], Snapshot],
        set_endpoint: Callable[[str], None],
        set_endpoints: Callable[[list[str]], None] | None = None,
    ) -> None:
        self._act = act
        self._snapshot = snapshot
        self._set_endpoint = set_endpoint
        self._set_endpoints = set_endpoints

    def register(self, app: web.Application) -> None:
        app.router.add_post("/_emulator/act", self._post_act)
        app.router.add_post("/_emulator/snapshot", self._post_snapshot)
        app.router.add_put("/_emulator/endpoint", self._put_endpoint)

    @staticmethod
    def _decode(raw: bytes, type_: type[Any]) -> Any:
        try:
            return msgspec.json.decode(raw, type=type_)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise web.HTTPBadRequest(
                text=msgspec.json.encode({"code": 50035, "message": str(exc)}).decode(),
                content_type="application/json",
            ) from None

    async def _post_act(self, request: web.Request) -> web.Response:
        action: Action = self._decode(await request.read(), Action)
        try:
            view = await self._act(action)
        except (ValueError, KeyError) as exc:  # no such message, component, user, channel
            return web.json_response({"code": 50035, "message": str(exc)}, status=400)
        return web.Response(body=msgspec.json.encode(view), content_type="application/json")

    async def _post_snapshot(self, request: web.Request) -> web.Response:
        raw = await request.read()
        query: _SnapshotQuery = self._decode(raw or b"{}", _SnapshotQuery)
        snapshot = self._snapshot(query.ids, query.full)
        return web.Response(body=msgspec.json.encode(snapshot), content_type="application/json")

    async def _put_endpoint(self, request: web.Request) -> web.Response:
        endpoint: _Endpoint = self._decode(await request.read(), _Endpoint)
        if endpoint.urls and self._set_endpoints is not None:
            self._set_endpoints(endpoint.urls)
        elif endpoint.url:
            self._set_endpoint(endpoint.url)
        else:
            return web.json_response(
                {"code": 50035, "message": "give url (or urls, a non-empty list)"}, status=400
            )
        return web.Response(status=204)
