"""RFC 7395 XMPP over WebSocket: a browser-like client next to a slixmpp TCP client."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from lxml import etree

from tests.scenarios.test_messages import send
from tests.support.clients import connect
from tests.support.server import ServerFactory
from tests.web_bridge.clients import FRAMING, OPEN, SASL, STREAM, WsClient, auth_plain, tag
from xmpp_server.server import Server

C = "{jabber:client}"
SM = "urn:xmpp:sm:3"
STREAMS_ERR = "{urn:ietf:params:xml:ns:xmpp-streams}"


async def test_login_chat_with_tcp_client_and_close(server: Server) -> None:
    assert server.host is not None
    await server.host.accounts.create("alice", "secret")
    ws = await WsClient.open(server)
    try:
        assert ws.ws.protocol == "xmpp"  # §3.1: the subprotocol is echoed
        await ws.send(OPEN)
        opened = await ws.recv()
        # §3.3.2: the server's <open/> names itself, a stream id and the version
        assert opened.tag == f"{{{FRAMING}}}open"
        assert opened.get("from") == "localhost" and opened.get("version") == "1.0"
        assert opened.get("id")
        features = await ws.recv()
        # the features carry the stream prefix and declare it (clients look for it)
        assert ws.frames[-1].startswith(f"<stream:features xmlns:stream='{STREAM}'")
        mechanisms = [m.text for m in features.iter(f"{{{SASL}}}mechanism")]
        assert "PLAIN" in mechanisms  # loopback HTTP counts as secure by default
        await ws.send(auth_plain("alice", "secret"))
        assert (await ws.recv()).tag == f"{{{SASL}}}success"
        await ws.open_stream()
        await ws.send("<iq xmlns='jabber:client' type='set' id='b'><bind xmlns="
                      "'urn:ietf:params:xml:ns:xmpp-bind'><resource>web</resource></bind></iq>")
        assert (await ws.next(lambda e: e.get("id") == "b")).get("type") == "result"

        bob = await connect(server, "bob")
        try:
            await ws.send("<message xmlns='jabber:client' to='bob@localhost/test' type='chat'>"
                          "<body>hello over websocket</body></message>")
            msg = await bob.next("message")
            assert msg["from"] == "alice@localhost/web"
            assert msg["body"] == "hello over websocket"
            send(bob, "alice@localhost/web", "hello over tcp")
            got = await ws.next(tag("message"))
            assert got.get("from") == "bob@localhost/test"
            assert got.findtext(C + "body") == "hello over tcp"
            # every frame is exactly one element (§3.3.3): each parsed on its own above
        finally:
            await bob.close()
        # §3.6: our <close/> is answered with <close/>, then the WebSocket closes
        await ws.send(f"<close xmlns='{FRAMING}'/>")
        rest = await ws.wait_closed()
        assert [el.tag for el in rest] == [f"{{{FRAMING}}}close"]
    finally:
        await ws.close()


async def test_subprotocol_required(server: Server) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await WsClient.open(server, protocols=())
    assert info.value.status == 400
    with pytest.raises(aiohttp.WSServerHandshakeError):
        await WsClient.open(server, protocols=("chat",))


async def test_foreign_origin_refused_unless_configured(servers: ServerFactory) -> None:
    server = await servers.start(http={"origins": ["https://app.example"]})
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await WsClient.open(server, headers={"Origin": "https://evil.example"})
    assert info.value.status == 403
    for origin in ("https://app.example", f"http://127.0.0.1:{server.http.port}"):  # type: ignore[attr-defined]
        ws = await WsClient.open(server, headers={"Origin": origin})
        await ws.open_stream()
        await ws.close()


async def test_stream_errors_are_framed(server: Server) -> None:
    ws = await WsClient.open(server)
    try:
        await ws.send(OPEN.replace("localhost", "elsewhere.example"))
        frames = await ws.wait_closed()
        assert [etree.QName(el).localname for el in frames] == ["open", "error", "close"]
        error = frames[1]
        assert error.tag == "{http://etherx.jabber.org/streams}error"
        assert error.find(STREAMS_ERR + "host-unknown") is not None
        assert ws.frames[1].startswith(f"<stream:error xmlns:stream='{STREAM}'>")
    finally:
        await ws.close()


async def test_processing_instruction_is_restricted_xml(server: Server) -> None:
    ws = await WsClient.open(server)
    try:
        await ws.open_stream()
        await ws.send("<iq xmlns='jabber:client' type='get' id='1'><?evil x?></iq>")
        frames = await ws.wait_closed()
        assert frames[0].find(STREAMS_ERR + "restricted-xml") is not None
    finally:
        await ws.close()


async def test_plain_refused_when_http_is_not_secure(servers: ServerFactory) -> None:
    server = await servers.start(http={"consider_secure": False})
    ws = await WsClient.open(server)
    try:
        features = await ws.open_stream()
        # c2s.require_tls and no TLS: nothing to authenticate with (RFC 6120 §5.3.1)
        assert features.find(f"{{{SASL}}}mechanisms") is None
    finally:
        await ws.close()


async def test_silent_unauthenticated_stream_is_closed(servers: ServerFactory) -> None:
    server = await servers.start(c2s={"ping_interval": 1})
    ws = await WsClient.open(server)
    try:
        await ws.open_stream()
        frames = await ws.wait_closed(timeout=5)
        assert frames[0].find(STREAMS_ERR + "connection-timeout") is not None
    finally:
        await ws.close()


async def test_shutdown_sends_system_shutdown(servers: ServerFactory) -> None:
    server = await servers.start()
    await server.host.accounts.create("alice", "secret")  # type: ignore[union-attr]
    ws = await WsClient.open(server)
    try:
        await ws.login("alice")
        stop = asyncio.create_task(servers.stop(server))
        frames = await ws.wait_closed()
        await stop
        assert frames[-2].find(STREAMS_ERR + "system-shutdown") is not None
        assert frames[-1].tag == f"{{{FRAMING}}}close"
    finally:
        await ws.close()


async def test_resumption_over_websocket(server: Server) -> None:
    """XEP-0198 on a WebSocket: the connection drops, a new one resumes the session."""
    assert server.host is not None
    await server.host.accounts.create("alice", "secret")
    ws = await WsClient.open(server)
    bob = await connect(server, "bob")
    try:
        await ws.login("alice")
        await ws.send(f"<enable xmlns='{SM}' resume='true'/>")
        enabled = await ws.next(tag("enabled"))
        previd = enabled.get("id")
        assert previd and enabled.get("resume") == "true"
        send(bob, "alice@localhost/web", "one")
        assert (await ws.next(tag("message"))).findtext(C + "body") == "one"
        await ws.ws.close()  # the WebSocket goes away without <close/>
        await ws.http.close()
        send(bob, "alice@localhost/web", "two")

        ws = await WsClient.open(server)
        await ws.open_stream()
        await ws.send(auth_plain("alice", "secret"))
        await ws.next(tag("success"))
        await ws.open_stream()
        # nothing of the first stream was acknowledged: "one" and "two" come again
        await ws.send(f"<resume xmlns='{SM}' previd='{previd}' h='0'/>")
        resumed = await ws.next(lambda e: e.tag in (f"{{{SM}}}resumed", f"{{{SM}}}failed"))
        assert resumed.tag == f"{{{SM}}}resumed", etree.tostring(resumed)
        bodies = [(await ws.next(tag("message"))).findtext(C + "body") for _ in range(2)]
        assert bodies == ["one", "two"]
        # the resumed session is the bound one: a new message reaches this WebSocket
        send(bob, "alice@localhost/web", "three")
        assert (await ws.next(tag("message"))).findtext(C + "body") == "three"
    finally:
        await bob.close()
        await ws.close()


async def test_resumption_takes_over_an_open_websocket(server: Server) -> None:
    """The old WebSocket still open: it gets a conflict error and <close/>, a frame each."""
    assert server.host is not None
    await server.host.accounts.create("alice", "secret")
    old = await WsClient.open(server)
    new = await WsClient.open(server)
    try:
        await old.login("alice")
        await old.send(f"<enable xmlns='{SM}' resume='true'/>")
        previd = (await old.next(tag("enabled"))).get("id")
        await new.open_stream()
        await new.send(auth_plain("alice", "secret"))
        await new.next(tag("success"))
        await new.open_stream()
        await new.send(f"<resume xmlns='{SM}' previd='{previd}' h='0'/>")
        assert (await new.next(lambda e: e.tag in (f"{{{SM}}}resumed", f"{{{SM}}}failed"))
                ).tag == f"{{{SM}}}resumed"
        frames = await old.wait_closed()
        assert frames[-2].find(STREAMS_ERR + "conflict") is not None
        assert frames[-1].tag == f"{{{FRAMING}}}close"
    finally:
        await old.close()
        await new.close()


async def test_busy_unauthenticated_stream_is_closed_at_the_deadline(
        servers: ServerFactory) -> None:
    """Whitespace frames keep it from being silent, not from c2s.auth_timeout."""
    server = await servers.start(c2s={"auth_timeout": 1, "ping_interval": 60})
    ws = await WsClient.open(server)
    try:
        await ws.open_stream()

        async def keepalive() -> None:
            while True:
                await ws.send(" ")
                await asyncio.sleep(0.2)

        task = asyncio.create_task(keepalive())
        try:
            frames = await ws.wait_closed(timeout=5)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        assert frames[0].find(STREAMS_ERR + "connection-timeout") is not None
    finally:
        await ws.close()


async def test_connections_per_address_include_tcp(servers: ServerFactory) -> None:
    """c2s.max_connections_per_ip counts TCP and WebSocket streams together."""
    from tests.support.clients import RawClient

    server = await servers.start(c2s={"max_connections_per_ip": 1})
    raw = await RawClient.open(server)
    await raw.send(raw.header())
    await raw.expect(b"</stream:features>")
    ws = await WsClient.open(server)
    try:
        frames = await ws.wait_closed(timeout=5)
        assert frames[-1].tag == f"{{{FRAMING}}}close"
        error = next(f for f in frames if f.tag == f"{{{STREAM}}}error")
        assert error.find(STREAMS_ERR + "policy-violation") is not None
    finally:
        await ws.close()
    await raw.close()
    await asyncio.sleep(0.2)
    ws = await WsClient.open(server)  # the TCP stream's place is free again
    try:
        await ws.open_stream()
    finally:
        await ws.close()


async def test_client_that_stops_reading_is_closed_not_buffered(
        servers: ServerFactory, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from tests.support.clients import RawClient

    caplog.set_level(logging.INFO, logger="web_bridge.websocket")
    server = await servers.start(c2s={"require_tls": False},
                                 limits={"max_output_buffer_bytes": 262144})
    assert server.host is not None
    await server.host.accounts.create("reader", "secret")
    await server.host.accounts.create("flooder", "secret")
    ws = await WsClient.open(server)
    flooder = await RawClient.open(server)
    try:
        jid = await ws.login("reader")  # and reads no more for now
        await flooder.login("flooder", "secret")
        stanza = f"<message to='{jid}' type='chat'><body>{'x' * 1000}</body></message>".encode()
        sent = 0
        while sent < 40_000_000 and "stopped reading" not in caplog.text:
            await flooder.send(stanza * 50)
            sent += len(stanza) * 50
            await asyncio.sleep(0)
        assert "stopped reading" in caplog.text, f"still buffering after {sent:,} bytes"
        frames = await ws.wait_closed()
        error = next(f for f in frames if f.tag == f"{{{STREAM}}}error")
        assert error.find(STREAMS_ERR + "policy-violation") is not None
        assert frames[-1].tag == f"{{{FRAMING}}}close"
    finally:
        await flooder.close()
        await ws.close()
