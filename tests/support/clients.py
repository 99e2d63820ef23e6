"""Real XMPP clients for tests: slixmpp over real sockets, and raw socket clients.

``await connect(server, "alice", "pw")`` logs in (creating the account first unless
``create=False``), waits for the session to start and returns a ``Client`` whose queues
collect what arrives, so a test reads the conversation in order::

    msg = await alice.next("message")
    pres = await bob.next("presence", lambda p: p["type"] == "unavailable")

Where a test writes the XML itself, ``RawClient`` reads bytes and ``StreamClient`` parses what
arrives into elements (``await raw.next(pred)``).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import Any, Self

import slixmpp
from lxml import etree
from slixmpp.stanza import Iq

from xmpp_server.server import Server

TIMEOUT = 10.0
C = "{jabber:client}"
STREAM = "{http://etherx.jabber.org/streams}"
STANZAS = {C + "message", C + "presence", C + "iq"}

Pred = Callable[[etree._Element], bool]


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid: str, password: str, plugins: tuple[str, ...] = ()) -> None:
        super().__init__(jid, password)
        self.queues: dict[str, asyncio.Queue[Any]] = {
            "message": asyncio.Queue(), "presence": asyncio.Queue(), "roster_push": asyncio.Queue()
        }
        for plugin in ("xep_0199", *plugins):
            self.register_plugin(plugin)
        self.add_event_handler("message", lambda m: self.queues["message"].put_nowait(m))
        self.add_event_handler("presence", lambda p: self.queues["presence"].put_nowait(p))
        self.add_event_handler("roster_update",
                               lambda iq: self.queues["roster_push"].put_nowait(iq))
        self.started: asyncio.Future[bool] = asyncio.get_event_loop().create_future()
        self.add_event_handler("session_start", self._on_start)
        self.add_event_handler("failed_all_auth", self._on_failed)
        self.add_event_handler("connection_failed", self._on_failed)
        self.ssl_context.check_hostname = False
        self.ssl_context.verify_mode = ssl.CERT_NONE
        self.enable_direct_tls = False

    def _on_start(self, _event: Any) -> None:
        if not self.started.done():
            self.started.set_result(True)

    def _on_failed(self, event: Any) -> None:
        if not self.started.done():
            self.started.set_exception(ConnectionError(f"login failed: {event}"))

    async def next(self, kind: str, pred: Callable[[Any], bool] | None = None,
                   timeout: float = TIMEOUT) -> Any:
        """The next stanza of ``kind`` that satisfies ``pred`` (earlier ones are dropped)."""
        queue = self.queues[kind]
        async with asyncio.timeout(timeout):
            while True:
                item = await queue.get()
                if pred is None or pred(item):
                    return item

    async def nothing(self, kind: str, pred: Callable[[Any], bool] | None = None,
                      wait: float = 0.5) -> None:
        """Assert that no matching stanza arrives within ``wait`` seconds."""
        try:
            item = await self.next(kind, pred, timeout=wait)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected {kind}: {item}")

    async def query(self, iq: Iq, timeout: float = TIMEOUT) -> Iq:
        return await iq.send(timeout=timeout)

    async def close(self) -> None:
        if self.is_connected():
            self.disconnect()
            try:
                await asyncio.wait_for(self.disconnected, TIMEOUT)
            except TimeoutError:
                pass


async def connect(server: Server, user: str, password: str = "secret", *,
                  resource: str = "test", create: bool = True,
                  plugins: tuple[str, ...] = (), send_presence: bool = False,
                  get_roster: bool = False, direct_tls: bool = False) -> Client:
    """A logged-in slixmpp client of ``user`` on ``server``."""
    assert server.host is not None
    domain = server.host.domain
    if create and not await server.host.accounts.exists(user):
        await server.host.accounts.create(user, password)
    client = Client(f"{user}@{domain}/{resource}", password, plugins)
    client.enable_direct_tls = direct_tls
    port = server.direct_tls_port if direct_tls else server.c2s_port
    client.connect("127.0.0.1", port)
    await asyncio.wait_for(client.started, TIMEOUT)
    if get_roster:
        await client.get_roster()
    if send_presence:
        client.send_presence()
    return client


class RawClient:
    """A plain TCP connection speaking bytes, for what no well-behaved client would send."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.buffer = b""

    @classmethod
    async def open(cls, server: Server, port: int | None = None) -> Self:
        reader, writer = await asyncio.open_connection("127.0.0.1", port or server.c2s_port)
        return cls(reader, writer)

    @classmethod
    async def open_tls(cls, server: Server, source: str = "127.0.0.1") -> Self:
        """Direct TLS (XEP-0368), the server's certificate unchecked; from the loopback
        address ``source`` (the server tells clients apart by address)."""
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", server.direct_tls_port, ssl=ctx, server_hostname="localhost",
            local_addr=(source, 0))
        return cls(reader, writer)

    def header(self, domain: str = "localhost", frm: str | None = None) -> bytes:
        attr = f" from='{frm}'" if frm else ""
        return (f"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                f"xmlns:stream='http://etherx.jabber.org/streams' to='{domain}'{attr} "
                f"version='1.0'>").encode()

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def login(self, user: str, password: str, resource: str = "raw",
                    domain: str = "localhost") -> None:
        """SASL PLAIN (the server must allow it: ``c2s.require_tls = false``), then bind."""
        import base64

        await self.send(self.header(domain))
        await self.expect(b"</stream:features>")
        cred = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        await self.send(f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"
                        f"{cred}</auth>".encode())
        await self.expect(b"<success")
        self.buffer = b""
        await self.send(self.header(domain))
        await self.expect(b"</stream:features>")
        await self.send(f"<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                        f"<resource>{resource}</resource></bind></iq>".encode())
        await self.expect(b"</bind>")
        self.buffer = b""

    async def expect(self, token: bytes, timeout: float = TIMEOUT) -> bytes:
        """Read until ``token`` has arrived; returns everything read so far."""
        async with asyncio.timeout(timeout):
            while token not in self.buffer:
                chunk = await self.reader.read(65536)
                if not chunk:
                    raise ConnectionError(f"closed before {token!r}; got {self.buffer!r}")
                self.buffer += chunk
        return self.buffer

    async def read_until_closed(self, timeout: float = TIMEOUT) -> bytes:
        async with asyncio.timeout(timeout):
            while True:
                chunk = await self.reader.read(65536)
                if not chunk:
                    return self.buffer
                self.buffer += chunk

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass


class StreamClient(RawClient):
    """A RawClient that parses what arrives (lxml, incrementally): each top-level element is
    queued, and ``next(pred)`` takes the first that matches. Read it with ``next``/``nothing``
    only, not with RawClient's byte reads."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        super().__init__(reader, writer)
        self.items: list[etree._Element] = []
        self.stanzas: list[etree._Element] = []  # every stanza received, in order (for 'h')
        self.features: etree._Element | None = None  # of the last stream opened
        self.headers = 0  # stream headers received
        self.ended = False  # the server's closing tag arrived
        self.restart()

    def restart(self) -> None:
        """A new stream on the same connection (after SASL): a new parser."""
        self.parser = etree.XMLPullParser(events=("start", "end"))
        self.depth = 0

    async def send(self, data: str | bytes) -> None:
        await super().send(data.encode() if isinstance(data, str) else data)

    async def open_stream(self, frm: str | None = None) -> etree._Element:
        """Send a stream header; returns the stream features."""
        await self.send(self.header(frm=frm))
        self.features = await self.next(lambda e: e.tag == STREAM + "features")
        return self.features

    async def login(self, user: str, password: str, resource: str = "raw",
                    domain: str = "localhost") -> None:
        """SASL PLAIN (the server must allow it: ``c2s.require_tls = false``), then bind;
        what arrives afterwards is parsed for ``next``."""
        import base64

        await self.open_stream()
        cred = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        await self.send(f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"
                        f"{cred}</auth>")
        await self.next(lambda e: e.tag.endswith("}success"))
        self.restart()
        await self.open_stream()
        await self.send(f"<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:"
                        f"xmpp-bind'><resource>{resource}</resource></bind></iq>")
        await self.next(lambda e: e.get("id") == "bind" and e.get("type") == "result")

    async def next(self, pred: Pred, timeout: float = TIMEOUT) -> etree._Element:
        """The first element received (or still to come) that matches; others stay queued."""
        async with asyncio.timeout(timeout):
            while True:
                for i, el in enumerate(self.items):
                    if pred(el):
                        return self.items.pop(i)
                if not await self._read():
                    raise ConnectionError(f"closed; got {[e.tag for e in self.items]}")

    async def nothing(self, pred: Pred, wait: float = 0.3) -> None:
        try:
            el = await self.next(pred, timeout=wait)
        except (TimeoutError, ConnectionError):
            return
        raise AssertionError(f"unexpected {etree.tostring(el)!r}")

    async def _read(self) -> bool:
        data = await self.reader.read(65536)
        if not data:
            return False
        self.parser.feed(data)
        for event, el in self.parser.read_events():
            if event == "start":
                self.depth += 1
                if self.depth == 1:
                    self.headers += 1
            else:
                self.depth -= 1
                if self.depth == 1:
                    self.items.append(el)
                    if el.tag in STANZAS:
                        self.stanzas.append(el)
                elif self.depth == 0:
                    self.ended = True
        return True

    async def until_closed(self) -> None:
        async with asyncio.timeout(TIMEOUT):
            while await self._read():
                pass

    def abort(self) -> None:
        """The network goes away: no closing tag, no FIN handshake."""
        self.writer.transport.abort()
