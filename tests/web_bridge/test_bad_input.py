"""Hostile HTTP input gets a clear 4xx (or BOSH's terminal condition), never a 500."""

from __future__ import annotations

import logging

import aiohttp
import pytest
import sqlalchemy as sa
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


async def test_unexpected_failure_is_a_plain_500(server: Server,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    """The database loses a table under the server: the client gets a 500 with a request id
    and no details; the log has the traceback under that id. The server goes on."""
    assert server.host is not None
    alice = await uploader(server)
    _, get_url = await slot(alice, "a.txt", 5, "text/plain")
    engine = server.host.storage._engine
    async with engine.begin() as conn:
        await conn.execute(sa.text("DROP TABLE uploads"))
    with caplog.at_level(logging.ERROR, logger="web_bridge.errors"):
        async with aiohttp.ClientSession() as http, http.get(get_url) as response:
            text = await response.text()
    assert response.status == 500
    assert text.startswith("internal server error (request id ")
    assert "Traceback" not in text and "uploads" not in text and "sql" not in text.lower()
    request_id = text.split("request id ")[1].split(")")[0]
    assert any(request_id in r.getMessage() and r.exc_info for r in caplog.records)
    async with aiohttp.ClientSession() as http, http.get(base_url(server) + "/healthz") as r:
        assert r.status == 200
    await alice.plugin["xep_0199"].ping(jid=None, timeout=10)  # XMPP goes on
    await alice.close()
