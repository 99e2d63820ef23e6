"""Hostile HTTP input gets a clear 4xx (or BOSH's terminal condition), never a 500."""

from __future__ import annotations

import aiohttp
from lxml import etree

from tests.web_bridge.clients import HTTPBIND, BoshClient, base_url
from tests.web_bridge.test_upload import slot, uploader
from xmpp_server.server import Server

NOT_NUMBERS = ("\u00b2", "\u0661", "1_0", "0x5", "", "99999999999999999999999")


async def test_bosh_numbers(server: Server) -> None:
    """XEP-0124 rid, wait, hold: a malformed one is a bad-request, as any malformed body."""
    async with aiohttp.ClientSession() as http:
        url = base_url(server) + "/http-bind"
        for value in NOT_NUMBERS:
            for attrs in (f"rid='{value}'", f"rid='7' wait='{value}'",
                          f"rid='7' hold='{value}'"):
                data = (f"<body xmlns='{HTTPBIND}' to='localhost' {attrs} "
                        f"xmlns:xmpp='urn:xmpp:xbosh' xmpp:version='1.0'/>")
                async with http.post(url, data=data.encode()) as response:
                    text = await response.text()
                    assert response.status in (200, 400), (attrs, response.status, text)
                    body = etree.fromstring(text.encode())
                    assert (body.get("type"), body.get("condition")) == (
                        "terminate", "bad-request"), attrs
    bosh, body = await BoshClient.create(server, wait="01")  # leading zeros are digits
    await bosh.close()
    assert body.get("wait") == "1" and body.get("sid")


async def test_upload_put_with_malformed_expiry(server: Server) -> None:
    alice = await uploader(server)
    put_url, _ = await slot(alice, "a.txt", 5, "text/plain")
    await alice.close()
    base, _, query = put_url.partition("?")
    signature = dict(part.split("=", 1) for part in query.split("&"))["s"]
    async with aiohttp.ClientSession() as http:
        for value in ("%C2%B2", "%D9%A1", "1_0", ""):
            url = f"{base}?e={value}&s={signature}"
            async with http.put(url, data=b"hello",
                                headers={"Content-Type": "text/plain"}) as response:
                assert response.status == 403, (value, response.status)
                assert "Traceback" not in await response.text()
