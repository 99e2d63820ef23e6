"""A client that logs in with XEP-0388 SASL2 by hand, over TCP or direct TLS (XEP-0368).

slixmpp speaks no SASL2, so ``Sasl2Client`` does what Conversations, Monal or Dino do: one
<authenticate/> with SCRAM or a FAST token (XEP-0484), Bind 2 (XEP-0386) and inline features,
and it checks what a careful client checks (the SCRAM server signature, XEP-0474's 'h', the
FAST responder hash). Every element received is parsed (lxml) and queued; ``next(pred)`` takes
the first that matches.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ssl
import uuid
from collections.abc import Callable
from xml.sax.saxutils import quoteattr

from lxml import etree

from tests.support.clients import TIMEOUT
from tests.support.scram_client import ScramClient
from xmpp_server.server import Server
from xmpp_server.stream import tls

SASL2 = "urn:xmpp:sasl:2"
S = "{" + SASL2 + "}"
B = "{urn:xmpp:bind:0}"
F = "{urn:xmpp:fast:0}"
SM = "urn:xmpp:sm:3"
C = "{jabber:client}"
STREAM = "{http://etherx.jabber.org/streams}"
CB = "{urn:xmpp:sasl-cb:0}"
STANZAS = {C + "message", C + "presence", C + "iq"}

Pred = Callable[[etree._Element], bool]


def tag(name: str) -> Pred:
    """Matches elements whose local name is ``name``."""
    return lambda el: etree.QName(el).localname == name


def outcome(el: etree._Element) -> bool:
    """The server's next SASL2 step (or the stream error that ends it all)."""
    return el.tag in (S + "challenge", S + "success", S + "failure", STREAM + "error")


def ht_hash(token: str, label: bytes, cb: bytes = b"") -> bytes:
    """draft-schmaus-kitten-sasl-ht: HMAC-SHA-256(token, label || channel-binding data)."""
    return hmac.new(token.encode(), label + cb, hashlib.sha256).digest()


def agent(client_id: str) -> str:
    return (f"<user-agent id={quoteattr(client_id)}><software>xmppd tests</software>"
            f"<device>pytest</device></user-agent>")


class Sasl2Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.items: list[etree._Element] = []
        self.stanzas: list[etree._Element] = []  # every stanza received, in order (for 'h')
        self.features: etree._Element | None = None
        self.client_id = str(uuid.uuid4())
        self.parser = etree.XMLPullParser(events=("start", "end"))
        self.depth = 0
        self.headers = 0  # stream headers received

    @classmethod
    async def connect(cls, server: Server, secure: bool = True) -> Sasl2Client:
        """Direct TLS (``secure``), else plain TCP on the STARTTLS port."""
        if not secure:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.c2s_port)
            return cls(reader, writer)
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", server.direct_tls_port, ssl=ctx, server_hostname="localhost")
        return cls(reader, writer)

    def binding(self, kind: str) -> bytes:
        """The channel-binding data of this connection, as the client computes it."""
        obj = self.writer.get_extra_info("ssl_object")
        assert isinstance(obj, ssl.SSLObject)
        data = tls.channel_binding(obj, kind)
        assert data
        return data

    # -- the stream ---------------------------------------------------------------------------

    async def send(self, data: str) -> None:
        self.writer.write(data.encode())
        await self.writer.drain()

    async def open_stream(self, frm: str | None = "alice@localhost") -> etree._Element:
        attr = f" from='{frm}'" if frm else ""
        await self.send("<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                        "xmlns:stream='http://etherx.jabber.org/streams' to='localhost'"
                        f"{attr} version='1.0'>")
        self.features = await self.next(lambda e: e.tag == STREAM + "features")
        return self.features

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
        return True

    async def until_closed(self) -> None:
        async with asyncio.timeout(TIMEOUT):
            while await self._read():
                pass

    def abort(self) -> None:
        """The network goes away: no closing tag."""
        self.writer.transport.abort()

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass

    # -- SASL2 --------------------------------------------------------------------------------

    def advertised(self) -> tuple[list[str], list[str], list[str]]:
        """SASL2 mechanisms, XEP-0440 channel-binding types and FAST mechanisms offered."""
        assert self.features is not None
        auth = self.features.find(S + "authentication")
        assert auth is not None, etree.tostring(self.features)
        mechs = [str(m.text) for m in auth.findall(S + "mechanism")]
        kinds = [str(c.get("type")) for c in self.features.iter(CB + "channel-binding")]
        fast = [str(m.text) for m in auth.iterfind(f"{S}inline/{F}fast/{F}mechanism")]
        return mechs, kinds, fast

    async def authenticate(self, mechanism: str, initial: bytes | None, extra: str = "",
                           client_id: str | None = None) -> etree._Element:
        """<authenticate/>; returns the challenge, success or failure."""
        ir = ("" if initial is None else
              f"<initial-response>{base64.b64encode(initial).decode()}</initial-response>")
        ua = agent(client_id or self.client_id)
        await self.send(f"<authenticate xmlns='{SASL2}' mechanism='{mechanism}'>{ir}{ua}"
                        f"{extra}</authenticate>")
        return await self.next(outcome)

    async def respond(self, data: bytes) -> etree._Element:
        await self.send(f"<response xmlns='{SASL2}'>{base64.b64encode(data).decode()}"
                        "</response>")
        return await self.next(outcome)

    async def scram(self, user: str = "alice", password: str = "secret",
                    mechanism: str = "SCRAM-SHA-256", extra: str = "",
                    binding: str | None = None) -> etree._Element:
        """A SCRAM login; returns <success/> or <failure/> after checking what must be."""
        if self.features is None:
            await self.open_stream()
        cb = (binding, self.binding(binding)) if binding else None
        client = ScramClient(mechanism, user, password, cb)
        reply = await self.authenticate(mechanism, client.first(), extra)
        if reply.tag != S + "challenge":
            return reply
        server_first = base64.b64decode(reply.text or "")
        mechs, kinds, _ = self.advertised()
        assert client.downgrade_protected(server_first, mechs, kinds), server_first  # XEP-0474
        reply = await self.respond(client.final(server_first))
        if reply.tag == S + "success":
            data = base64.b64decode(reply.findtext(S + "additional-data") or "")
            assert client.verify(data), "the server proved it knows the keys"
        return reply

    async def fast(self, token: str, user: str = "alice", mechanism: str = "HT-SHA-256-NONE",
                   count: int | None = None, invalidate: bool = False, extra: str = "",
                   binding: str | None = None, client_id: str | None = None) -> etree._Element:
        """A FAST login; checks the responder hash of a success."""
        if self.features is None:
            await self.open_stream()
        cb = self.binding(binding) if binding else b""
        attrs = (f" count='{count}'" if count is not None else "") + (
            " invalidate='true'" if invalidate else "")
        reply = await self.authenticate(
            mechanism, user.encode() + b"\0" + ht_hash(token, b"Initiator", cb),
            f"<fast xmlns='urn:xmpp:fast:0'{attrs}/>{extra}", client_id)
        if reply.tag == S + "success":
            data = base64.b64decode(reply.findtext(S + "additional-data") or "")
            assert hmac.compare_digest(data, ht_hash(token, b"Responder", cb))
        return reply


def token_of(success: etree._Element) -> str | None:
    """The FAST token a <success/> hands out, if any."""
    token = success.find(F + "token")
    return None if token is None else token.get("token")


def condition(failure: etree._Element) -> str:
    """The RFC 6120 SASL condition of a SASL2 <failure/>."""
    for child in failure:
        if etree.QName(child).namespace == "urn:ietf:params:xml:ns:xmpp-sasl":
            return etree.QName(child).localname
    raise AssertionError(etree.tostring(failure))
