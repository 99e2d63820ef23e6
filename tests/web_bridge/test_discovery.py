"""XEP-0156 discovery documents: host-meta (XRD) and host-meta.json."""

from __future__ import annotations

import aiohttp
from lxml import etree

from tests.support.server import ServerFactory
from tests.web_bridge.clients import base_url
from xmpp_server.server import Server

XRD = "{http://docs.oasis-open.org/ns/xri/xrd-1.0}"
BOSH = "urn:xmpp:alt-connections:xbosh"
WEBSOCKET = "urn:xmpp:alt-connections:websocket"


async def test_host_meta_from_the_request(server: Server) -> None:
    base = base_url(server)
    async with aiohttp.ClientSession() as http:
        async with http.get(base + "/.well-known/host-meta") as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("application/xrd+xml")
            assert response.headers["Access-Control-Allow-Origin"] == "*"
            xrd = etree.fromstring(await response.read())
        links = {link.get("rel"): link.get("href") for link in xrd.iter(XRD + "Link")}
        assert links == {BOSH: base + "/http-bind",
                         WEBSOCKET: base.replace("http:", "ws:") + "/xmpp-websocket"}
        async with http.get(base + "/.well-known/host-meta.json") as response:
            assert response.status == 200
            data = await response.json()
        assert {link["rel"]: link["href"] for link in data["links"]} == links
        # the advertised WebSocket really is one
        async with http.ws_connect(links[WEBSOCKET], protocols=("xmpp",)) as ws:
            assert ws.protocol == "xmpp"


async def test_host_meta_with_public_url(servers: ServerFactory) -> None:
    server = await servers.start(http={"public_url": "https://chat.example.org/xmpp/"})
    async with aiohttp.ClientSession() as http, http.get(
            base_url(server) + "/.well-known/host-meta.json") as response:
        data = await response.json()
    assert {link["rel"]: link["href"] for link in data["links"]} == {
        BOSH: "https://chat.example.org/xmpp/http-bind",
        WEBSOCKET: "wss://chat.example.org/xmpp/xmpp-websocket",
    }
