"""The HTTP side: aiohttp application on the same event loop as the XMPP listeners.

For now it serves the browser app's static files at ``/`` and ``/healthz``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from xmpp_server.host import Host

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
HOST_KEY: web.AppKey[Host] = web.AppKey("host")


async def healthz(request: web.Request) -> web.Response:
    host = request.app[HOST_KEY]
    return web.json_response({"status": "ok", "domain": host.domain,
                              "sessions": len(host.sessions)})


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html")


def make_app(host: Host) -> web.Application:
    app = web.Application(client_max_size=1024 * 1024)
    app[HOST_KEY] = host
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/", index)
    app.router.add_static("/static/", STATIC)
    return app


class HttpService:
    def __init__(self, host: Host) -> None:
        self.host = host
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> None:
        config = self.host.config.http
        self.runner = web.AppRunner(make_app(self.host), access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, config.bind, config.port, backlog=1024)
        await site.start()
        sockets = getattr(site._server, "sockets", None)
        if sockets:
            self.port = sockets[0].getsockname()[1]
        log.info("http listening on %s:%d", config.bind, self.port)

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None
