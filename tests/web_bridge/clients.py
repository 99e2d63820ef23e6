"""Browser-side XMPP clients for tests, over aiohttp's real HTTP client.

slixmpp speaks neither WebSocket nor BOSH, so these small clients do it by hand, the way a
web client (Converse.js, Strophe.js) does: ``WsClient`` frames one element per text message
(RFC 7395); ``BoshClient`` wraps elements in <body/> with increasing rids (XEP-0124/0206).
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from typing import Any

import aiohttp
from lxml import etree

from tests.support.clients import TIMEOUT
from xmpp_server.server import Server

FRAMING = "urn:ietf:params:xml:ns:xmpp-framing"
HTTPBIND = "http://jabber.org/protocol/httpbind"
STREAM = "http://etherx.jabber.org/streams"
SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
BIND = "urn:ietf:params:xml:ns:xmpp-bind"
C = "{jabber:client}"
OPEN = f"<open xmlns='{FRAMING}' to='localhost' version='1.0'/>"

Pred = Callable[[etree._Element], bool]


def base_url(server: Server) -> str:
    http: Any = server.http
    return f"http://127.0.0.1:{http.port}"


def auth_plain(user: str, password: str) -> str:
    token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
    return f"<auth xmlns='{SASL}' mechanism='PLAIN'>{token}</auth>"


def bind(resource: str) -> str:
    return (f"<iq xmlns='jabber:client' type='set' id='bind'><bind xmlns='{BIND}'>"
            f"<resource>{resource}</resource></bind></iq>")


def tag(name: str) -> Pred:
    """Matches elements whose local name is ``name``."""
    return lambda el: etree.QName(el).localname == name


class WsClient:
    """An RFC 7395 client: every frame received is kept raw and parsed."""

    def __init__(self, http: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.http = http
        self.ws = ws
        self.frames: list[str] = []
        self.closed = False

    @classmethod
    async def open(cls, server: Server, headers: dict[str, str] | None = None,
                   protocols: tuple[str, ...] = ("xmpp",)) -> WsClient:
        http = aiohttp.ClientSession()
        try:
            ws = await http.ws_connect(base_url(server) + "/xmpp-websocket",
                                       protocols=protocols, headers=headers)
        except BaseException:
            await http.close()
            raise
        return cls(http, ws)

    async def send(self, xml: str) -> None:
        await self.ws.send_str(xml)

    async def recv(self, timeout: float = TIMEOUT) -> etree._Element:
        """The next frame, parsed (one element per frame, RFC 7395 §3.3.3)."""
        msg = await self.ws.receive(timeout)
        if msg.type is not aiohttp.WSMsgType.TEXT:
            self.closed = True
            raise ConnectionError(f"websocket closed: {msg.type} {msg.data}")
        self.frames.append(msg.data)
        return etree.fromstring(msg.data.encode())

    async def next(self, pred: Pred, timeout: float = TIMEOUT) -> etree._Element:
        """The next element that matches (earlier ones are dropped)."""
        async with asyncio.timeout(timeout):
            while True:
                el = await self.recv()
                if pred(el):
                    return el

    async def open_stream(self) -> etree._Element:
        """<open/>, then our <open/> and the features; returns the features."""
        await self.send(OPEN)
        opened = await self.recv()
        assert opened.tag == f"{{{FRAMING}}}open", opened.tag
        features = await self.recv()
        assert features.tag == f"{{{STREAM}}}features", features.tag
        return features

    async def login(self, user: str, password: str = "secret", resource: str = "web") -> str:
        """SASL PLAIN, stream restart and bind; returns the bound JID."""
        await self.open_stream()
        await self.send(auth_plain(user, password))
        success = await self.recv()
        assert success.tag == f"{{{SASL}}}success", etree.tostring(success)
        await self.open_stream()
        await self.send(bind(resource))
        result = await self.next(lambda e: e.get("id") == "bind")
        assert result.get("type") == "result"
        return str(result.findtext(f"{{{BIND}}}bind/{{{BIND}}}jid"))

    async def wait_closed(self, timeout: float = TIMEOUT) -> list[etree._Element]:
        """Everything until the server closes the WebSocket."""
        out = []
        async with asyncio.timeout(timeout):
            while True:
                try:
                    out.append(await self.recv())
                except ConnectionError:
                    return out

    async def close(self) -> None:
        await self.ws.close()
        await self.http.close()


class BoshClient:
    """A XEP-0206 client: ``post`` sends one <body/> and returns the response's <body/>."""

    def __init__(self, server: Server, http: aiohttp.ClientSession, rid: int = 1000) -> None:
        self.server = server
        self.http = http
        self.url = base_url(server) + "/http-bind"
        self.rid = rid
        self.sid: str | None = None

    @classmethod
    async def create(cls, server: Server, **attrs: str) -> tuple[BoshClient, etree._Element]:
        """A new BOSH session; returns the client and the session creation response."""
        client = cls(server, aiohttp.ClientSession())
        try:
            body = await client.post(**{"to": "localhost", "wait": "2", "hold": "1",
                                        "ver": "1.11", "xml:lang": "en", "xmpp:version": "1.0",
                                        **attrs})
        except BaseException:
            await client.close()
            raise
        client.sid = body.get("sid")
        return client, body

    def body(self, payload: str = "", **attrs: str) -> str:
        self.rid += 1
        attrs = {"rid": str(self.rid), **attrs}
        if self.sid is not None:
            attrs.setdefault("sid", self.sid)
        text = " ".join(f"{k}='{v}'" for k, v in attrs.items())
        return (f"<body xmlns='{HTTPBIND}' xmlns:xmpp='urn:xmpp:xbosh' {text}>"
                f"{payload}</body>")

    async def post_raw(self, data: str | bytes, headers: dict[str, str] | None = None,
                       ) -> aiohttp.ClientResponse:
        response = await self.http.post(self.url, data=data, headers={
            "Content-Type": "text/xml; charset=utf-8", **(headers or {})})
        await response.read()
        return response

    async def post(self, payload: str = "", **attrs: str) -> etree._Element:
        response = await self.post_raw(self.body(payload, **attrs))
        assert response.status == 200, response.status
        return etree.fromstring(await response.read())

    async def until(self, pred: Pred, timeout: float = TIMEOUT) -> etree._Element:
        """Poll (empty held requests) until a child of a response matches."""
        async with asyncio.timeout(timeout):
            while True:
                body = await self.post()
                for child in body:
                    if pred(child):
                        return child
                assert body.get("type") != "terminate", etree.tostring(body)

    async def login(self, user: str, password: str = "secret", resource: str = "bosh") -> str:
        """From a fresh session: features, SASL PLAIN, restart, bind; returns the JID."""
        body = await self.post(auth_plain(user, password))
        success = body[0] if len(body) else await self.until(tag("success"))
        assert success.tag == f"{{{SASL}}}success", etree.tostring(body)
        body = await self.post(**{"xmpp:restart": "true"})
        assert body.find(f"{{{STREAM}}}features/{{{BIND}}}bind") is not None
        body = await self.post(bind(resource))
        result = body[0] if len(body) else await self.until(tag("iq"))
        assert result.get("type") == "result", etree.tostring(result)
        return str(result.findtext(f"{{{BIND}}}bind/{{{BIND}}}jid"))

    async def close(self) -> None:
        await self.http.close()
