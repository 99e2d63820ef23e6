"""The HTTP endpoints (web_bridge) with generated requests: BOSH bodies, upload PUT/GET paths,
queries and headers, WebSocket handshakes and frames. Whatever arrives, the answer is never a
5xx or a traceback, and the server logs no error; WebSocket frames out are one well-formed
element each (RFC 7395 §3.3.3)."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import quoteattr

import aiohttp
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from lxml import etree

from tests.fuzz.conftest import SHARED_SERVER, scaled
from tests.fuzz.strategies import stanzas, xml_text
from tests.fuzz.test_routing import login
from tests.web_bridge.clients import HTTPBIND, OPEN, auth_plain, base_url
from xmpp_server.server import Server

UPLOAD = "urn:xmpp:http:upload:0"


def no_server_error(status: int, text: str) -> None:
    assert status < 500, (status, text[:500])
    assert "Traceback" not in text, text[:2000]


def ascii_digits_only(value: str) -> bool:
    """Numbers written with other digits ('²') are a known defect, tested on their own."""
    return not any(c.isdigit() and not c.isascii() for c in value)


numbers = st.one_of(st.integers(-3, 2**60).map(str), st.sampled_from(["", " 1", "1.5", "0x10"]))
attr_values = st.one_of(numbers, xml_text.filter(ascii_digits_only),
                        st.sampled_from(["localhost", "true", "terminate", "1", "en"]))
BOSH_ATTRS = st.sampled_from(["rid", "sid", "to", "wait", "hold", "ver", "xml:lang",
                              "xmpp:version", "xmpp:restart", "type", "key", "newkey", "ack",
                              "content", "route", "secure", "polling", "inactivity"])
bosh_payloads = st.one_of(
    st.just(""), stanzas().map(lambda e: etree.tostring(e).decode()),
    st.sampled_from([auth_plain("alice", "secret"), auth_plain("alice", "wrong"),
                     "<iq xmlns='jabber:client' type='set' id='b'><bind xmlns="
                     "'urn:ietf:params:xml:ns:xmpp-bind'/></iq>", OPEN,
                     "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>"]))


@st.composite
def bosh_bodies(draw: st.DrawFn) -> dict[str, Any]:
    attrs = draw(st.dictionaries(BOSH_ATTRS, attr_values, max_size=6))
    return {"attrs": attrs, "payload": draw(bosh_payloads),
            "keep_sid": draw(st.booleans()), "next_rid": draw(st.booleans())}


def body_xml(attrs: dict[str, str], payload: str) -> str:
    text = "".join(f" {k}={quoteattr(v)}" for k, v in attrs.items())
    return (f"<body xmlns='{HTTPBIND}' xmlns:xmpp='urn:xmpp:xbosh'{text}>{payload}</body>")


async def post(http: aiohttp.ClientSession, server: Server, data: bytes | str,
               headers: dict[str, str] | None = None) -> tuple[int, str]:
    async with http.post(base_url(server) + "/http-bind", data=data, headers={
            "Content-Type": "text/xml; charset=utf-8", **(headers or {})}) as response:
        text = await response.text(errors="replace")
        no_server_error(response.status, text)
        return response.status, text


@settings(suppress_health_check=SHARED_SERVER, max_examples=scaled(40))
@given(st.lists(bosh_bodies(), min_size=1, max_size=4))
async def test_bosh_bodies_never_a_server_error(fuzz_server: Server,
                                                server_errors: list[logging.LogRecord],
                                                bodies: list[dict[str, Any]]) -> None:
    """A session is created (polling, so requests are answered at once), then generated
    bodies follow: with its sid or not, the next rid or not, any attributes and payload."""
    assert fuzz_server.host is not None
    if not await fuzz_server.host.accounts.exists("alice"):
        await fuzz_server.host.accounts.create("alice", "secret")
    async with aiohttp.ClientSession() as http:
        rid = 5000
        status, text = await post(http, fuzz_server, body_xml(
            {"rid": str(rid), "to": "localhost", "wait": "1", "hold": "0", "ver": "1.11",
             "xmpp:version": "1.0"}, ""))
        assert status == 200
        sid = etree.fromstring(text.encode()).get("sid")
        for body in bodies:
            attrs = dict(body["attrs"])
            if body["keep_sid"] and sid:
                attrs.setdefault("sid", sid)
            if body["next_rid"]:
                rid += 1
                attrs["rid"] = str(rid)
            status, text = await post(http, fuzz_server, body_xml(attrs, body["payload"]))
            if status == 200:
                assert etree.fromstring(text.encode()).tag == f"{{{HTTPBIND}}}body"


@settings(suppress_health_check=SHARED_SERVER, max_examples=scaled(30))
@given(st.binary(max_size=300), st.sampled_from(["text/xml; charset=utf-8", "text/plain",
                                                 "application/octet-stream", ""]))
@example(b"<body xmlns='http://jabber.org/protocol/httpbind' rid='1' to='localhost'>"
         b"<!-- x --></body>", "text/xml")
async def test_bosh_arbitrary_bytes_never_a_server_error(
        fuzz_server: Server, server_errors: list[logging.LogRecord], data: bytes,
        content_type: str) -> None:
    async with aiohttp.ClientSession() as http:
        await post(http, fuzz_server, data, {"Content-Type": content_type})


@pytest.mark.parametrize("attr", ["rid", "wait", "hold"])
async def test_bosh_non_ascii_digits_are_a_bad_request(fuzz_server: Server, attr: str) -> None:
    attrs = {"rid": "100", "to": "localhost", "wait": "1", "hold": "0", attr: "\u00b2"}
    async with aiohttp.ClientSession() as http:
        await post(http, fuzz_server, body_xml(attrs, ""))


# -- uploads ----------------------------------------------------------------------------------

async def upload_slot(server: Server) -> tuple[str, str]:
    """A real slot, requested over XMPP: (put URL, get URL)."""
    alice = await login(server, "alice")
    try:
        await alice.send(f"<iq type='get' id='slot' to='upload.localhost'><request xmlns="
                         f"'{UPLOAD}' filename='a b.txt' size='5' content-type='text/plain'/>"
                         "</iq>")
        reply = await alice.next(lambda e: e.get("id") == "slot")
        put = reply.find(f"{{{UPLOAD}}}slot/{{{UPLOAD}}}put")
        get = reply.find(f"{{{UPLOAD}}}slot/{{{UPLOAD}}}get")
        assert put is not None and get is not None, etree.tostring(reply)
        return str(put.get("url")), str(get.get("url"))
    finally:
        await alice.close()


segments = st.one_of(st.text(max_size=40), st.from_regex(r"[A-Za-z0-9_-]{32}", fullmatch=True),
                     st.sampled_from(["", ".", "..", "%2e%2e", "a b.txt", "a%20b.txt"]))
header_values = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30)


@st.composite
def upload_requests(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "method": draw(st.sampled_from(["PUT", "GET", "HEAD", "OPTIONS"])),
        "use_slot_path": draw(st.booleans()),
        "id": draw(segments), "name": draw(segments),
        "query": draw(st.one_of(st.none(), st.dictionaries(
            st.sampled_from(["e", "s", "x"]),
            st.one_of(numbers, st.text(max_size=20).filter(ascii_digits_only)), max_size=3))),
        "headers": draw(st.dictionaries(
            st.sampled_from(["Content-Type", "Origin", "Range", "If-Modified-Since",
                             "Access-Control-Request-Method", "Accept-Encoding"]),
            header_values, max_size=3)),
        "body": draw(st.one_of(st.just(b"hello"), st.binary(max_size=12))),
    }


@settings(suppress_health_check=SHARED_SERVER, max_examples=scaled(40))
@given(st.lists(upload_requests(), min_size=1, max_size=4))
async def test_upload_requests_never_a_server_error(fuzz_server: Server,
                                                   server_errors: list[logging.LogRecord],
                                                   requests: list[dict[str, Any]]) -> None:
    put_url, get_url = await upload_slot(fuzz_server)
    slot_path, _, slot_query = put_url.partition("?")
    origin = base_url(fuzz_server)
    async with aiohttp.ClientSession() as http:
        for req in requests:
            if req["use_slot_path"]:
                path = slot_path.split(":", 2)[2].split("/", 1)[1]  # after host:port
                url = f"{origin}/{path}"
            else:
                url = f"{origin}/upload/{quote(req['id'], safe='')}/{quote(req['name'], safe='')}"
            params = (dict(p.split("=", 1) for p in slot_query.split("&"))
                      if req["query"] is None else req["query"])
            async with http.request(req["method"], url, params=params, headers=req["headers"],
                                    data=req["body"] if req["method"] == "PUT" else None,
                                    ) as response:
                no_server_error(response.status, await response.text(errors="replace"))
        async with http.get(get_url) as response:
            no_server_error(response.status, await response.text(errors="replace"))


async def test_upload_expiry_with_non_ascii_digits_is_forbidden(fuzz_server: Server) -> None:
    put_url, _ = await upload_slot(fuzz_server)
    async with aiohttp.ClientSession() as http, http.put(
            put_url.partition("?")[0], params={"e": "\u00b2", "s": "x"}, data=b"hello",
            headers={"Content-Type": "text/plain"}) as response:
        assert response.status == 403


# -- WebSocket --------------------------------------------------------------------------------

ws_frames = st.one_of(
    stanzas().map(lambda e: etree.tostring(e).decode()),
    st.text(max_size=60),
    st.sampled_from([OPEN, auth_plain("alice", "secret"), "<close xmlns="
                     "'urn:ietf:params:xml:ns:xmpp-framing'/>", "<open/>", "",
                     "<?xml version='1.0'?>" + OPEN, "<a/><b/>", " ",
                     "<iq xmlns='jabber:client' type='set' id='b'><bind xmlns="
                     "'urn:ietf:params:xml:ns:xmpp-bind'/></iq>"]),
    st.binary(max_size=20),
)


@settings(suppress_health_check=SHARED_SERVER, max_examples=scaled(40))
@given(st.lists(ws_frames, min_size=1, max_size=6),
       st.dictionaries(st.sampled_from(["Origin", "Sec-WebSocket-Protocol"]), header_values,
                       max_size=2))
async def test_websocket_frames_never_a_server_error(
        fuzz_server: Server, server_errors: list[logging.LogRecord], frames: list[str | bytes],
        headers: dict[str, str]) -> None:
    assert fuzz_server.host is not None
    if not await fuzz_server.host.accounts.exists("alice"):
        await fuzz_server.host.accounts.create("alice", "secret")
    async with aiohttp.ClientSession() as http:
        try:
            ws = await http.ws_connect(base_url(fuzz_server) + "/xmpp-websocket",
                                       protocols=("xmpp",), headers=headers)
        except aiohttp.WSServerHandshakeError as exc:
            assert exc.status < 500, exc
            return
        try:
            for frame in frames:
                if ws.closed:
                    break
                if isinstance(frame, bytes):
                    await ws.send_bytes(frame)
                else:
                    await ws.send_str(frame)
            if not ws.closed:
                await ws.send_str("<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>")
            while True:
                msg = await ws.receive(timeout=5)
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    break
                etree.fromstring(msg.data.encode())  # one well-formed element per frame
        finally:
            await ws.close()
