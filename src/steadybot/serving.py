"""Serve an ASGI app (a bot) with uvicorn inside the running event loop.

Used by ``steadybot demo`` and by tests that put a real bot behind a real socket next
to the emulator, in one process. ``steadybot serve`` is the production way.
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass
from typing import Any

import uvicorn

__all__ = ["InProcessServer", "serve_in_process"]

STARTUP_POLL = 0.02  # seconds between checks that uvicorn has started


@dataclass
class InProcessServer:
    server: uvicorn.Server
    task: asyncio.Task[None]
    url: str  # the interactions endpoint

    async def stop(self) -> None:
        """Ask uvicorn to exit (lifespan shutdown runs) and wait for it."""
        self.server.should_exit = True
        await self.task


async def serve_in_process(
    app: Any, *, host: str = "127.0.0.1", path: str = "/interactions"
) -> InProcessServer:
    """Start uvicorn on a free port of ``host``; return once it accepts connections."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="error", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            sock.close()
            raise RuntimeError("the server did not start")
        await asyncio.sleep(STARTUP_POLL)
    return InProcessServer(server, task, f"http://{host}:{port}{path}")
