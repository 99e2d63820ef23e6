"""A client that logs in with XEP-0388 SASL2 by hand, over TCP or direct TLS (XEP-0368).

slixmpp speaks no SASL2, so ``Sasl2Client`` does what Conversations, Monal or Dino do: one
<authenticate/> with SCRAM or a FAST token (XEP-0484), Bind 2 (XEP-0386) and inline features,
and it checks what a careful client checks (the SCRAM server signature, XEP-0474's 'h', the
FAST responder hash). It is a ``StreamClient``: every element received is parsed (lxml) and
queued; ``next(pred)`` takes the first that matches.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ssl
import uuid
from xml.sax.saxutils import quoteattr

from lxml import etree

from tests.support.clients import Pred, StreamClient
from tests.support.scram_client import ScramClient
from xmpp_server.server import Server
from xmpp_server.stream.channel_binding import channel_binding

SASL2 = "urn:xmpp:sasl:2"
S = "{" + SASL2 + "}"
B = "{urn:xmpp:bind:0}"
F = "{urn:xmpp:fast:0}"
SM = "urn:xmpp:sm:3"
C = "{jabber:client}"
STREAM = "{http://etherx.jabber.org/streams}"
CB = "{urn:xmpp:sasl-cb:0}"


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


class Sasl2Client(StreamClient):
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        super().__init__(reader, writer)
        self.client_id = str(uuid.uuid4())

    @classmethod
    async def connect(cls, server: Server, secure: bool = True) -> Sasl2Client:
        """Direct TLS (``secure``), else plain TCP on the STARTTLS port."""
        return await (cls.open_tls(server) if secure else cls.open(server))

    def binding(self, kind: str) -> bytes:
        """The channel-binding data of this connection, as the client computes it."""
        obj = self.writer.get_extra_info("ssl_object")
        assert isinstance(obj, ssl.SSLObject)
        data = channel_binding(obj, kind)
        assert data
        return data

    async def open_stream(self, frm: str | None = "alice@localhost") -> etree._Element:
        """As a client that knows its account names it (RFC 6120 §4.7.1)."""
        return await super().open_stream(frm)

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
