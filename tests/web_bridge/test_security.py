"""Response headers, the web app's Content-Security-Policy and CORS."""

from __future__ import annotations

import logging

import aiohttp
import pytest

from tests.support.server import ServerFactory
from tests.web_bridge.clients import BoshClient, WsClient, base_url
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


async def test_origins_come_from_the_configuration_not_the_host_header(
        servers: ServerFactory) -> None:
    """DNS rebinding: a page of rebound.example, whose name now resolves to us, sends Host and
    Origin that match each other. Neither is one of our configured origins: refused."""
    server = await servers.start(http={"public_url": "https://chat.example.org:443/xmpp"})
    port = server.http.port  # type: ignore[attr-defined]
    rebound = {"Host": f"rebound.example:{port}", "Origin": f"http://rebound.example:{port}"}
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await WsClient.open(server, headers=rebound)
    assert info.value.status == 403
    bosh = BoshClient(server, aiohttp.ClientSession())
    try:
        response = await bosh.post_raw(bosh.body(to="localhost"), headers=rebound)
        assert response.status == 403
        async with bosh.http.get(base_url(server) + "/healthz", headers=rebound) as response:
            assert "Access-Control-Allow-Origin" not in response.headers
            assert "rebound.example" not in response.headers["Content-Security-Policy"]
        async with bosh.http.options(bosh.url, headers={
                **rebound, "Access-Control-Request-Method": "POST"}) as response:
            assert response.status == 403
    finally:
        await bosh.close()
    # ours: the public URL (its default port left out, as browsers do), the domain and the
    # bind address on our port, whatever Host the request carries
    for origin in ("https://chat.example.org", f"http://localhost:{port}",
                   f"http://127.0.0.1:{port}"):
        ws = await WsClient.open(server, headers={"Origin": origin, "Host": "other.example"})
        await ws.open_stream()
        await ws.close()


async def test_a_refused_origin_is_logged_once_naming_the_setting(
        servers: ServerFactory, caplog: pytest.LogCaptureFixture) -> None:
    """A web client hosted on another site (Converse.js) that is not in http.origins only
    sees failing connections: the operator's log says which origin to add, once."""
    server = await servers.start()
    site = {"Origin": "https://chat.example.org"}
    caplog.set_level(logging.WARNING, logger="web_bridge.security")
    for _ in range(2):
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await WsClient.open(server, headers=site)
        assert info.value.status == 403
    bosh = BoshClient(server, aiohttp.ClientSession())
    try:
        response = await bosh.post_raw(bosh.body(to="localhost"),
                                       headers={"Origin": "http://other.example:8080"})
        assert response.status == 403
    finally:
        await bosh.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "web_bridge.security"]
    assert lines == [
        "refused WebSocket for the web page origin 'https://chat.example.org': add it to "
        "http.origins to let a web client served there connect",
        "refused BOSH for the web page origin 'http://other.example:8080': add it to "
        "http.origins to let a web client served there connect",
    ]
