"""Converse.js as a site would run it: its own web server, our server's WebSocket or BOSH.

``ConverseSite`` serves Converse's ``dist/`` (the npm package ``converse.js`` that
``npm ci --prefix tests/clients`` installs) and a page that calls ``converse.initialize()``,
on its own port: a third-party origin for our server, as when ``https://chat.example.org``
hosts Converse for ``example.org``. That origin must be in our ``http.origins``.

The page adds one plugin, ``xmppd-test``: it keeps ``_converse`` as ``window.conv`` (its
``api`` is what tests script) and records every element the connection receives as
``window.received`` (XML strings; over BOSH each is a ``<body/>``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web

from tests.clients.conftest import require_node_modules

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Converse</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/dist/converse.min.css">
<script type="module" src="/dist/converse.min.js"></script>
</head><body class="converse-fullscreen">
<script id="settings" type="application/json">{settings}</script>
<script type="module">
window.received = [];
converse.plugins.add('xmppd-test', {{
  initialize() {{
    const _converse = this._converse;
    window.conv = _converse;
    _converse.api.listen.on('connectionInitialized', () => {{
      const connection = _converse.api.connection.get();
      const input = connection.xmlInput.bind(connection);
      connection.xmlInput = (el) => {{ window.received.push(el.outerHTML); input(el); }};
    }});
  }}
}});
const settings = JSON.parse(document.getElementById('settings').textContent);
converse.initialize({{...settings, whitelisted_plugins: ['xmppd-test']}});
</script>
</body></html>
"""


class ConverseSite:
    """``await site.start()``; ``site.origin``; ``site.url(**settings)``; ``await site.close()``."""

    def __init__(self) -> None:
        self.dist: Path = require_node_modules("converse.js") / "dist"
        self.runner: web.AppRunner | None = None
        self.port = 0

    @property
    def origin(self) -> str:
        return f"http://localhost:{self.port}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/", self._page)
        app.router.add_static("/dist/", self.dist)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        self.port = self.runner.addresses[0][1]

    async def _page(self, request: web.Request) -> web.Response:
        settings = json.loads(request.query["settings"])
        # JSON in a script element: only "</script" could end it early
        body = PAGE.format(settings=json.dumps(settings).replace("<", "\\u003c"))
        return web.Response(text=body, content_type="text/html")

    def url(self, **settings: Any) -> str:
        return f"{self.origin}/?settings={quote(json.dumps(settings))}"

    async def close(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
