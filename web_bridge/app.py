"""The HTTP side: one aiohttp application on the same event loop as the XMPP listeners.

=====================================  ===================================================
path                                   what
=====================================  ===================================================
``/``, ``/static/``                    the browser app (strict CSP, ``security.py``)
``/xmpp-websocket``                    RFC 7395 XMPP over WebSocket (``websocket.py``)
``/http-bind``                         XEP-0124/0206 BOSH (``bosh.py``)
``/.well-known/host-meta[.json]``      XEP-0156 discovery (``discovery.py``)
``/upload/<id>/<name>``                XEP-0363 PUT and GET (``upload.py``)
``/metrics``, ``/healthz``             operations (``admin.py``), each configurable
=====================================  ===================================================

WebSocket and BOSH streams are Sessions like TCP ones: same negotiation, routing,
stream management and limits. The listener is plain HTTP (by default on loopback, behind a
TLS proxy); ``http.consider_secure`` says whether its streams count as encrypted.
Origins are checked against our configured ones (``security.py``); a handler that fails
unexpectedly answers a plain 500 with a request id (``errors.py``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from web_bridge import admin, discovery, errors, security, upload, websocket
from web_bridge.bosh import BoshHub
from xmpp_server.listening import cannot_listen
from xmpp_server.modules.http_upload import HttpUpload

if TYPE_CHECKING:
    from xmpp_server.host import Host
    from xmpp_server.stream.c2s import C2SListener

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
HOST_KEY: web.AppKey[Host] = web.AppKey("host")
SERVICE_KEY: web.AppKey[HttpService] = web.AppKey("service")


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html")


def make_app(service: HttpService) -> web.Application:
    host = service.host
    app = web.Application(client_max_size=1024 * 1024)
    app[HOST_KEY] = host
    app[SERVICE_KEY] = service
    security.install(app, service.origins)
    errors.install(app)
    app.router.add_get("/", index)
    app.router.add_static("/static/", STATIC)
    app.router.add_get("/xmpp-websocket", websocket.handle)
    app.router.add_post("/http-bind", service.bosh.handle)
    discovery.add_routes(app)
    upload.add_routes(app)
    admin.add_routes(app, service)
    return app


class HttpService:
    """The HTTP listener and the streams it carries; ``port`` is the one really bound."""

    def __init__(self, host: Host, c2s: Sequence[C2SListener] = ()) -> None:
        self.host = host
        self.c2s = c2s  # the TCP listeners, for the connection gauges
        self.secure = host.config.http.is_secure()
        self.websockets: set[websocket.WebSocketTransport] = set()
        self.bosh = BoshHub(self)
        self.origins = security.Origins(host.config.http, host.domain)
        self.metrics: admin.Metrics | None = None
        self.runner: web.AppRunner | None = None
        self.port = 0

    def connection_count(self) -> int:
        return len(self.websockets) + len(self.bosh.sessions)

    def connections_by_transport(self) -> dict[str, int]:
        tcp = tls = 0
        for listener in self.c2s:
            for conn in listener.connections:
                if conn.secure:
                    tls += 1
                else:
                    tcp += 1
        return {"tcp": tcp, "tls": tls, "websocket": len(self.websockets),
                "bosh": len(self.bosh.sessions)}

    async def start(self) -> None:
        config = self.host.config.http
        if config.metrics:
            self.metrics = admin.Metrics(self)
        self.runner = web.AppRunner(make_app(self), access_log=None, shutdown_timeout=5.0)
        await self.runner.setup()
        site = web.TCPSite(self.runner, config.bind, config.port, backlog=1024,
                           reuse_port=self.host.reuse_port or None)
        try:
            await site.start()
        except OSError as exc:
            raise cannot_listen("http", config.bind, config.port, "http.port", exc) from exc
        sockets = getattr(site._server, "sockets", None)
        if sockets:
            self.port = sockets[0].getsockname()[1]
        self.origins.bound(self.port)
        uploads = self.host.modules.get(HttpUpload.name)
        if isinstance(uploads, HttpUpload) and not config.public_url:
            uploads.base_url = f"http://{self.host.domain}:{self.port}"
        log.info("http listening on %s:%d", config.bind, self.port)

    async def stop(self) -> None:
        """Streams get a system-shutdown stream error, then the listener closes."""
        for transport in list(self.websockets):
            if transport.session is not None:
                transport.session.stream_error("system-shutdown", "the server is shutting down")
        self.bosh.close_all("system-shutdown")
        await asyncio.sleep(0)  # let the held BOSH requests be answered
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None
        self.bosh.stop()
        if self.metrics is not None:
            self.metrics.close()
            self.metrics = None
