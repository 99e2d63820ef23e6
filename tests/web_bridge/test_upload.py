"""XEP-0363 HTTP File Upload: slots over XMPP (slixmpp's xep_0363), PUT and GET over HTTP."""

from __future__ import annotations

import asyncio
import time
from io import BytesIO
from typing import Any

import aiohttp
import pytest
from lxml import etree
from slixmpp import JID as SlixJID
from slixmpp.exceptions import IqError

from tests.support.clients import Client, connect
from tests.support.server import ServerFactory
from xmpp_server.jid import JID
from xmpp_server.modules.http_upload import HttpUpload
from xmpp_server.server import Server
from xmpp_server.stanza import Stanza, element, sub

UPLOAD = "upload.localhost"
NS = "urn:xmpp:http:upload:0"
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 56


def module(server: Server) -> HttpUpload:
    assert server.host is not None
    upload = server.host.modules["http_upload"]
    assert isinstance(upload, HttpUpload)
    return upload


async def uploader(server: Server, user: str = "alice") -> Client:
    return await connect(server, user, plugins=("xep_0030", "xep_0363"))


async def slot(client: Client, filename: str, size: int, content_type: str) -> tuple[str, str]:
    iq = await client.plugin["xep_0363"].request_slot(SlixJID(UPLOAD), filename, size,
                                                      content_type)
    return iq["http_upload_slot"]["put"]["url"], iq["http_upload_slot"]["get"]["url"]


async def test_service_discovery(server: Server) -> None:
    alice = await uploader(server)
    try:
        items = await alice.plugin["xep_0030"].get_items(jid=SlixJID("localhost"))
        assert (UPLOAD, None, "HTTP File Upload") in items["disco_items"]["items"]
        info = await alice.plugin["xep_0363"].find_upload_service()
        assert info is not None and info["from"] == UPLOAD  # identity store/file, feature
        form = info["disco_info"].iterables[0]["values"]
        assert form["FORM_TYPE"] == [NS] and form["max-file-size"] == "10485760"
    finally:
        await alice.close()


async def test_upload_and_download(server: Server) -> None:
    alice = await uploader(server)
    try:
        url = await alice.plugin["xep_0363"].upload_file(
            "photo.png", input_file=BytesIO(PNG), content_type="image/png")
        assert url.startswith("http://localhost:") and url.endswith("/photo.png")
        async with aiohttp.ClientSession() as http, http.get(url) as response:
            assert response.status == 200
            assert await response.read() == PNG
            headers = response.headers
            assert headers["Content-Type"] == "image/png"
            assert headers["X-Content-Type-Options"] == "nosniff"
            assert headers["Content-Disposition"].startswith("inline")
            assert "sandbox" in headers["Content-Security-Policy"]
    finally:
        await alice.close()


async def test_put_rules(server: Server) -> None:
    alice = await uploader(server)
    put_url, get_url = await slot(alice, "notes <1>.html", 5, "text/html")
    await alice.close()
    assert put_url.startswith(get_url + "?")
    async with aiohttp.ClientSession() as http:
        async def put(url: str, data: bytes = b"hello", content_type: str = "text/html") -> int:
            headers = {"Content-Type": content_type}
            async with http.put(url, data=data, headers=headers) as response:
                return response.status

        assert (await http.get(get_url)).status == 404  # nothing stored yet
        assert await put(get_url) == 403  # no signature
        assert await put(put_url[:-3] + "AAA") == 403  # wrong signature
        query = put_url.partition("?")[2]
        other = get_url.rsplit("/", 1)[0] + "/other.html?" + query
        assert await put(other) == 403  # the signature is for its own path only
        assert await put(put_url, content_type="text/plain") == 400
        assert await put(put_url, b"hello!") == 413
        assert await put(put_url, b"hell") == 400
        assert await put(put_url) == 201
        assert await put(put_url) == 409  # one PUT per slot

        async with http.get(get_url) as response:
            assert response.status == 200 and await response.read() == b"hello"
            # not an image: a download, never a page of our origin
            assert response.headers["Content-Type"].startswith("text/html")
            assert response.headers["Content-Disposition"] == (
                "attachment; filename*=UTF-8''notes%20%3C1%3E.html")
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert response.headers["Content-Security-Policy"].endswith("sandbox")
        assert (await http.get(other.partition("?")[0])).status == 404


async def test_expired_put_url(server: Server) -> None:
    alice = await uploader(server)
    put_url, _ = await slot(alice, "late.txt", 3, "text/plain")
    await alice.close()
    upload_id = put_url.split("/")[-2]
    stored = await server.host.storage.uploads.get(upload_id)  # type: ignore[union-attr]
    assert stored is not None
    past = int(time.time()) - 10
    # a correctly signed URL whose time is over
    late = f"{put_url.partition('?')[0]}?e={past}&s={module(server).signature(stored, past)}"
    async with aiohttp.ClientSession() as http, http.put(
            late, data=b"abc", headers={"Content-Type": "text/plain"}) as response:
        assert response.status == 410


async def test_too_large_and_quota(servers: ServerFactory) -> None:
    server = await servers.start(upload={"max_size": 100, "quota": 150})
    alice = await uploader(server)
    try:
        with pytest.raises(IqError) as info:
            await slot(alice, "big.bin", 101, "application/octet-stream")
        error = info.value.iq.xml.find("{jabber:client}error")
        assert error.get("type") == "modify"
        assert error.find("{urn:ietf:params:xml:ns:xmpp-stanzas}not-acceptable") is not None
        assert error.findtext(f"{{{NS}}}file-too-large/{{{NS}}}max-file-size") == "100"

        await slot(alice, "a.bin", 100, "application/octet-stream")
        with pytest.raises(IqError) as info:
            await slot(alice, "b.bin", 51, "application/octet-stream")
        assert info.value.condition == "resource-constraint"
        assert info.value.etype == "wait"
        await slot(alice, "c.bin", 50, "application/octet-stream")  # what is left
        with pytest.raises(IqError) as info:
            await slot(alice, "", 5, "text/plain")
        assert info.value.condition == "bad-request"
    finally:
        await alice.close()


async def test_quota_holds_under_concurrent_requests(servers: ServerFactory) -> None:
    """80 slot requests at once from 4 clients of one account, room for 10: 10 slots."""
    server = await servers.start(upload={"max_size": 100, "quota": 1000})
    clients = [await connect(server, "alice", resource=f"r{i}", plugins=("xep_0363",))
               for i in range(4)]
    try:
        async def request(client: Client, i: int) -> bool:
            try:
                await slot(client, f"f{i}.bin", 100, "application/octet-stream")
            except IqError as exc:
                assert exc.condition == "resource-constraint", exc.condition
                return False
            return True

        granted = await asyncio.gather(*(request(clients[i % 4], i) for i in range(80)))
        assert sum(granted) == 10
        assert server.host is not None
        assert await server.host.storage.uploads.used("alice", _now()) == 1000
    finally:
        for client in clients:
            await client.close()


async def test_only_local_users(server: Server) -> None:
    """A slot request arriving from another domain (over s2s) is forbidden."""
    assert server.host is not None
    replies: asyncio.Queue[Any] = asyncio.Queue()

    def remote(stanza: Stanza) -> bool:
        replies.put_nowait(stanza)
        return True

    server.host.events.on("route/remote", remote)
    iq = element("iq", type="get", id="s1", to=UPLOAD, from_="eve@evil.example/x")
    sub(iq, f"{{{NS}}}request", filename="a.txt", size="3", content_type="text/plain")
    await server.host.router.route(Stanza(iq, "iq", JID.parse("eve@evil.example/x"),
                                          JID.parse(UPLOAD)))
    reply = (await asyncio.wait_for(replies.get(), 5)).el
    assert reply.get("type") == "error" and reply.get("to") == "eve@evil.example/x"
    assert reply.find("{jabber:client}error/{urn:ietf:params:xml:ns:xmpp-stanzas}forbidden") \
        is not None, etree.tostring(reply)


async def test_cleanup(server: Server) -> None:
    alice = await uploader(server)
    try:
        unused_put, _ = await slot(alice, "never.txt", 3, "text/plain")
        url = await alice.plugin["xep_0363"].upload_file(
            "kept.txt", input_file=BytesIO(b"abc"), content_type="text/plain")
    finally:
        await alice.close()
    uploads = module(server)
    repo = server.host.storage.uploads  # type: ignore[union-attr]
    unused_id, kept_id = unused_put.split("/")[-2], url.split("/")[-2]
    assert await repo.used("alice", _now()) == 6
    # after the slot expiry: the unused slot goes, the file stays
    assert await uploads.cleanup(time.time() + uploads.config.slot_expiry + 1) == 1
    assert await repo.get(unused_id) is None and await repo.get(kept_id) is not None
    assert uploads.file(kept_id).is_file()
    # after the retention: the file goes too, and with it the user's quota use
    assert await uploads.cleanup(time.time() + uploads.config.retention + 1) == 1
    assert not uploads.file(kept_id).exists()
    assert await repo.used("alice", _now()) == 0
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        assert response.status == 404


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)
