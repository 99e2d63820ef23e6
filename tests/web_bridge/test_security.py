"""Response headers, the web app's Content-Security-Policy and CORS."""

from __future__ import annotations

import aiohttp

from tests.support.server import ServerFactory
from tests.web_bridge.clients import base_url
from xmpp_server.server import Server


async def test_app_page_has_strict_headers(server: Server) -> None:
    async with aiohttp.ClientSession() as http, http.get(base_url(server) + "/") as response:
        assert response.status == 200
        assert "xmppd" in await response.text()
        headers = response.headers
    csp = dict(part.strip().split(" ", 1) for part in headers["Content-Security-Policy"]
               .split(";"))
    assert csp["script-src"] == "'self'" and csp["style-src"] == "'self'"
    assert "unsafe-inline" not in headers["Content-Security-Policy"]
    assert "unsafe-eval" not in headers["Content-Security-Policy"]
    assert csp["object-src"] == "'none'" and csp["frame-ancestors"] == "'none'"
    assert f"ws://127.0.0.1:{server.http.port}" in csp["connect-src"]  # type: ignore[attr-defined]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["X-Frame-Options"] == "DENY"
    assert "Access-Control-Allow-Origin" not in headers


async def test_cors_only_for_configured_origins(servers: ServerFactory) -> None:
    server = await servers.start(http={"origins": ["https://app.example"]})
    url = base_url(server) + "/healthz"
    async with aiohttp.ClientSession() as http:
        async with http.get(url, headers={"Origin": "https://app.example"}) as response:
            assert response.headers["Access-Control-Allow-Origin"] == "https://app.example"
        async with http.get(url, headers={"Origin": "https://evil.example"}) as response:
            assert "Access-Control-Allow-Origin" not in response.headers
    default = await servers.start()  # no origins configured: none but our own
    async with aiohttp.ClientSession() as http, http.get(
            base_url(default) + "/healthz", headers={"Origin": "https://app.example"}) as r:
        assert "Access-Control-Allow-Origin" not in r.headers
