"""Streams (RFC 6120 §4, §5, §11): TLS, bad XML of every kind, limits; other sessions live on."""

from __future__ import annotations

import asyncio
import socket
import ssl

import pytest

from tests.support.clients import RawClient, connect

CORE = {"enabled": ["ping", "version", "time"]}


async def _chat_still_works(server) -> None:  # type: ignore[no-untyped-def]
    """A bystander session is unaffected: it still gets a ping answered."""
    bystander = await connect(server, "bystander")
    try:
        iq = bystander.make_iq_get(ito=server.host.domain)
        iq.enable("ping")
        assert (await bystander.query(iq))["type"] == "result"
    finally:
        await bystander.close()


@pytest.fixture
async def core(servers):  # type: ignore[no-untyped-def]
    return await servers.start(modules=CORE, c2s={"require_tls": False})


async def test_stream_header_and_features_offer_starttls(servers):
    server = await servers.start(modules=CORE)
    raw = await RawClient.open(server)
    await raw.send(raw.header())
    data = await raw.expect(b"</stream:features>")
    assert b"<starttls" in data and b"<required/>" in data
    assert b"<mechanisms" not in data  # RFC 6120 §5.3.1: TLS is mandatory-to-negotiate first
    await raw.close()


async def test_plain_stream_without_tls_offers_mechanisms(core):
    raw = await RawClient.open(core)
    await raw.send(raw.header())
    data = await raw.expect(b"</stream:features>")
    assert b"<mechanism>SCRAM-SHA-256</mechanism>" in data
    assert b"-PLUS" not in data  # no channel binding without TLS
    await raw.close()


@pytest.mark.parametrize(
    ("payload", "condition"),
    [
        (b"<!DOCTYPE lol [<!ENTITY lol 'lol'>]><iq/>", b"restricted-xml"),
        (b"<message><body>&lol;</body></message>", b"restricted-xml"),
        (b"<!-- a comment -->", b"restricted-xml"),
        (b"<?evil instruction?>", b"restricted-xml"),
        (b"<message><body>x</bod></message>", b"not-well-formed"),
        (b"<message to='a@localhost'><body>" + b"A" * 300_000, b"policy-violation"),
        (b"<a>" * 100, b"policy-violation"),
    ],
    ids=["doctype-entity", "entity-ref", "comment", "pi", "malformed", "oversized", "deep"],
)
async def test_bad_xml_gets_stream_error_and_others_live_on(core, payload, condition):
    victim = await connect(core, "victim")
    raw = await RawClient.open(core)
    await raw.send(raw.header())
    await raw.expect(b"</stream:features>")
    await raw.send(payload)
    data = await raw.read_until_closed()
    assert b"<stream:error><" + condition in data
    assert data.rstrip().endswith(b"</stream:stream>")
    iq = victim.make_iq_get(ito="localhost")
    iq.enable("ping")
    assert (await victim.query(iq))["type"] == "result"
    await victim.close()


async def test_wrong_host_gets_host_unknown(core):
    raw = await RawClient.open(core)
    await raw.send(raw.header("elsewhere.example"))
    data = await raw.read_until_closed()
    assert b"<host-unknown" in data


async def test_stanza_before_auth_is_not_authorized(core):
    raw = await RawClient.open(core)
    await raw.send(raw.header())
    await raw.expect(b"</stream:features>")
    await raw.send(b"<message to='x@localhost'><body>hi</body></message>")
    data = await raw.read_until_closed()
    assert b"<not-authorized" in data


async def test_direct_tls_login(servers):
    server = await servers.start(modules=CORE)
    client = await connect(server, "alice", direct_tls=True)
    assert client.is_connected()
    await client.close()


async def test_tls_1_1_is_refused(servers):
    server = await servers.start(modules=CORE)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        _, writer = await asyncio.open_connection(
            "127.0.0.1", server.direct_tls_port, ssl=ctx, server_hostname="localhost"
        )
        writer.close()


async def test_whitespace_keepalive_is_harmless(core):
    client = await connect(core, "alice")
    client.send_raw(" ")
    client.send_raw("\n\n")
    iq = client.make_iq_get(ito="localhost")
    iq.enable("ping")
    assert (await client.query(iq))["type"] == "result"
    await client.close()


async def test_graceful_close_is_answered(core):
    raw = await RawClient.open(core)
    await raw.send(raw.header())
    await raw.expect(b"</stream:features>")
    await raw.send(b"</stream:stream>")
    data = await raw.read_until_closed()
    assert data.endswith(b"</stream:stream>")


async def test_shutdown_sends_system_shutdown(servers):
    server = await servers.start(modules=CORE, c2s={"require_tls": False})
    raw = await RawClient.open(server)
    await raw.send(raw.header())
    await raw.expect(b"</stream:features>")
    await servers.stop(server)
    data = await raw.read_until_closed()
    assert b"<system-shutdown" in data


async def test_shutdown_with_connected_clients_ends_within_a_bound(servers):
    """Python 3.12.1+ made Server.wait_closed() wait for every accepted connection: one left
    in its TLS handshake, or whose peer never answers TLS close_notify, held shutdown for the
    30 s TLS timeouts. With such clients connected the server stops well within those
    timeouts, and the sessions' connections end. (One still in its handshake is cut too
    where Python can, 3.13's abort_clients; it never holds up the stop.)"""
    server = await servers.start()
    client = await connect(server, "alice")  # STARTTLS, bound, well-behaved
    silent = await RawClient.open(server, server.direct_tls_port)  # no TLS handshake, ever
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    sock = socket.create_connection(("127.0.0.1", server.direct_tls_port))
    mute = await asyncio.to_thread(ctx.wrap_socket, sock, server_hostname="localhost")
    mute.sendall(silent.header())  # a stream; then it never reads, never closes TLS
    gone: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    client.add_event_handler("disconnected", lambda _: gone.done() or gone.set_result(None))
    await asyncio.sleep(0.2)
    async with asyncio.timeout(12):  # the TLS timeouts are 30 s
        await servers.stop(server)
        await asyncio.wait_for(gone, 5)

    def closed(tls: ssl.SSLSocket) -> bool:
        tls.settimeout(5)
        try:
            while tls.recv(65536):
                pass
        except (ConnectionError, ssl.SSLError):
            pass
        return True

    assert await asyncio.to_thread(closed, mute)
    mute.close()
    await silent.close()


async def test_burst_of_simultaneous_connections(core):
    """Hundreds of connections at once all get their features (listen backlog, RFC 6120 §4)."""

    async def one() -> bytes:
        raw = await RawClient.open(core)
        try:
            await raw.send(raw.header())
            return await raw.expect(b"</stream:features>")
        finally:
            await raw.close()

    results = await asyncio.gather(*(one() for _ in range(300)))
    assert all(b"<mechanisms" in r for r in results)


async def test_malformed_to_gets_jid_malformed(core):
    await core.host.accounts.create("alice", "pw")
    raw = await RawClient.open(core)
    await raw.login("alice", "pw")
    await raw.send(b"<iq type='get' id='bad1' to='a@b@c'><ping xmlns='urn:xmpp:ping'/></iq>")
    reply = await raw.expect(b"</iq>")
    assert b'id="bad1"' in reply and b"<jid-malformed" in reply
    raw.buffer = b""
    await raw.send(b"<message id='bad2' to='x@' type='chat'><body>hi</body></message>")
    reply = await raw.expect(b"</message>")
    assert b'id="bad2"' in reply and b"<jid-malformed" in reply
    # The session survives a bad address.
    raw.buffer = b""
    await raw.send(b"<iq type='get' id='ok' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
    assert b'type="result"' in await raw.expect(b'id="ok"')
    await raw.close()


async def test_unknown_top_level_element_is_unsupported(core):
    alice = await connect(core, "alice")
    alice.send_raw("<frobnicate xmlns='urn:example:unknown'/>")
    await asyncio.wait_for(alice.disconnected, 10)
    await _chat_still_works(core)
