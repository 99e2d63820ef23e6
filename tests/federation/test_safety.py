"""Limits and safety: a peer that misbehaves loses its stream, local users see nothing of it."""

from __future__ import annotations

import asyncio
import ssl

from tests.federation.helpers import body, chat, close, user


class RawPeer:
    """A hand-driven server-to-server connection, for what no well-behaved server sends."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer, self.buffer = reader, writer, b""

    @classmethod
    async def open(cls, peer) -> RawPeer:
        reader, writer = await asyncio.open_connection(peer.address, peer.port)
        return cls(reader, writer)

    async def send(self, data: str | bytes) -> None:
        self.writer.write(data.encode() if isinstance(data, str) else data)
        await self.writer.drain()

    async def header(self, frm: str = "a.test", to: str = "b.test") -> bytes:
        self.buffer = b""
        await self.send(f"<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
                        f"xmlns:stream='http://etherx.jabber.org/streams' "
                        f"xmlns:db='jabber:server:dialback' from='{frm}' to='{to}' "
                        "version='1.0'>")
        return await self.expect(b"</stream:features>", b"<stream:features/>",
                                 b"</stream:stream>")

    async def starttls(self, frm: str = "a.test", to: str = "b.test") -> bytes:
        await self.header(frm, to)
        await self.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        await self.expect(b"<proceed")
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        await self.writer.start_tls(ctx)
        return await self.header(frm, to)

    async def expect(self, *tokens: bytes, timeout: float = 5.0) -> bytes:
        async with asyncio.timeout(timeout):
            while not any(t in self.buffer for t in tokens):
                chunk = await self.reader.read(65536)
                if not chunk:
                    raise ConnectionError(f"closed; got {self.buffer!r}")
                self.buffer += chunk
        return self.buffer

    async def closed(self, timeout: float = 5.0) -> bytes:
        async with asyncio.timeout(timeout):
            while chunk := await self.reader.read(65536):
                self.buffer += chunk
        return self.buffer

    def close(self) -> None:
        self.writer.close()


async def _established(a, b, alice, bob):
    chat(alice, "bob@b.test", "hello")
    await bob.next("message", body("hello"))
    return a.federation.links[("a.test", "b.test")].stream


async def test_spoofed_sender_domain_closes_the_peers_stream(federation):
    a, b = await federation.start()
    alice, bob = await user(a, "alice"), await user(b, "bob")
    carol = await user(b, "carol")
    stream = await _established(a, b, alice, bob)
    # a.test's stream is authenticated for a.test only (RFC 6120 §4.9.3.9)
    stream.write(b"<message from='mallory@evil.test' to='bob@b.test' type='chat'>"
                 b"<body>spoofed</body></message>")
    await asyncio.wait_for(stream.connection.lost, 5)
    assert stream.peer_condition == "invalid-from"
    await bob.nothing("message", body("spoofed"), wait=0.2)
    # b.test's users did not notice; a.test reconnects for the next message
    chat(carol, "bob@b.test", "still here")
    await bob.next("message", body("still here"))
    chat(alice, "bob@b.test", "after")
    await bob.next("message", body("after"))
    await close(alice, bob, carol)


async def test_oversized_stanza_and_bad_xml_close_the_stream(federation):
    a, b = await federation.start(b={"s2s": {"max_stanza_bytes": 20000}})
    alice, bob = await user(a, "alice"), await user(b, "bob")
    stream = await _established(a, b, alice, bob)
    stream.write(b"<message from='alice@a.test' to='bob@b.test'><body>"
                 + b"x" * 30000 + b"</body></message>")
    await asyncio.wait_for(stream.connection.lost, 5)
    assert stream.peer_condition == "policy-violation"
    stream = await _established(a, b, alice, bob)
    stream.write(b"<message from='alice@a.test' to='bob@b.test'><body></message>")
    await asyncio.wait_for(stream.connection.lost, 5)
    assert stream.peer_condition == "not-well-formed"
    await _established(a, b, alice, bob)
    await close(alice, bob)


async def test_blocked_domains(federation):
    a, b = await federation.start(b={"s2s": {"blocklist": ["test.invalid", "a.test"]}})
    alice, bob = await user(a, "alice"), await user(b, "bob")
    chat(bob, "alice@a.test", "out")
    err = await bob.next("all", lambda m: m["type"] == "error")
    # (slixmpp knows the RFC 3920 conditions only: read the XML)
    assert err.xml.find("{jabber:client}error/"
                        "{urn:ietf:params:xml:ns:xmpp-stanzas}policy-violation") is not None
    chat(alice, "bob@b.test", "in")
    err = await alice.next("all", lambda m: m["type"] == "error")
    assert err["error"]["condition"] == "remote-server-not-found"
    await bob.nothing("message", body("in"), wait=0.2)
    peer = await RawPeer.open(federation.b)
    await peer.header(frm="sub.a.test")
    assert b"<policy-violation" in await peer.closed()
    await close(alice, bob)


async def test_connections_per_domain_and_negotiation_timeout(federation):
    a, b = await federation.start(b={"s2s": {"max_connections_per_domain": 1,
                                             "connect_timeout": 1}})
    alice, bob = await user(a, "alice"), await user(b, "bob")
    await _established(a, b, alice, bob)  # b.test has one stream authenticated for a.test
    # a second one, a.test -> conference.b.test, is refused
    pres = alice.make_presence(pto="room@conference.b.test/alice")
    pres.send()
    err = await alice.next("presence", lambda p: p["type"] == "error")
    assert err["error"]["condition"] == "remote-server-not-found"
    assert len(b.federation.limits.claims["a.test"]) == 1
    # claiming a domain is not enough to take its place; but silence gets a peer dropped
    peer = await RawPeer.open(federation.b)
    await peer.header()
    assert b"<connection-timeout" in await peer.closed()
    chat(alice, "bob@b.test", "unaffected")
    await bob.next("message", body("unaffected"))
    await close(alice, bob)


async def test_unauthenticated_peer_cannot_send_or_forge_dialback(federation):
    _, b = await federation.start()
    bob = await user(b, "bob")
    peer = await RawPeer.open(federation.b)
    features = await peer.header()
    assert b"<starttls" in features and b"<dialback" not in features  # TLS first
    await peer.send("<message from='alice@a.test' to='bob@b.test'><body>x</body></message>")
    assert b"<invalid-from" in await peer.closed()
    # over TLS, a made-up dialback key: b.test asks a.test, which denies it (XEP-0220)
    peer = await RawPeer.open(federation.b)
    features = await peer.starttls()
    assert b"urn:xmpp:features:dialback" in features
    assert b"EXTERNAL" not in features  # no client certificate was offered
    await peer.send("<db:result from='a.test' to='b.test'>0123456789abcdef</db:result>")
    data = await peer.closed()
    assert b"type=\"invalid\"" in data and b"<not-authorized" in data
    # asking a.test directly whether that key is one of its own
    peer = await RawPeer.open(federation.a)
    await peer.starttls(frm="b.test", to="a.test")
    await peer.send("<db:verify from='b.test' to='a.test' id='abc'>0123</db:verify>")
    assert b"type=\"invalid\"" in await peer.expect(b"type=")
    peer.close()
    # and stanzas without an authenticated domain
    peer = await RawPeer.open(federation.b)
    await peer.starttls()
    await peer.send("<message from='alice@a.test' to='bob@b.test'><body>x</body></message>")
    assert b"<invalid-from" in await peer.closed()
    await bob.nothing("message", body("x"), wait=0.1)
    await close(bob)
