"""XEP-0124 BOSH / XEP-0206 XMPP over BOSH, with a slixmpp TCP client on the other side."""

from __future__ import annotations

import asyncio
import hashlib

import aiohttp
from lxml import etree

from tests.scenarios.test_messages import send
from tests.support.clients import connect
from tests.support.server import ServerFactory
from tests.web_bridge.clients import HTTPBIND, SASL, STREAM, BoshClient, auth_plain, tag
from xmpp_server.server import Server
from xmpp_server.stream.session import Session

C = "{jabber:client}"
STREAMS_ERR = "{urn:ietf:params:xml:ns:xmpp-streams}"


def session_ended(server: Server) -> asyncio.Future[Session]:
    """Resolves with the next session that ends."""
    assert server.host is not None
    future: asyncio.Future[Session] = asyncio.get_running_loop().create_future()

    def ended(session: Session) -> None:
        if not future.done():
            future.set_result(session)

    server.host.events.on("session-ended", ended)
    return future


async def test_session_auth_chat_and_terminate(server: Server) -> None:
    await server.host.accounts.create("alice", "secret")  # type: ignore[union-attr]
    bosh, created = await BoshClient.create(server, ack="1")
    bob = await connect(server, "bob")
    try:
        # §7 / XEP-0206 §4: the session's attributes, and the features in the same response
        assert created.tag == f"{{{HTTPBIND}}}body"
        assert created.get("sid") and created.get("authid")
        assert (created.get("wait"), created.get("hold"), created.get("requests")) == (
            "2", "1", "2")
        assert created.get("from") == "localhost" and created.get("ver") == "1.11"
        assert created.get("ack") == str(bosh.rid)  # §9.1
        assert created.get("{urn:xmpp:xbosh}restartlogic") == "true"
        assert created.find(f"{{{STREAM}}}features/{{{SASL}}}mechanisms") is not None
        jid = await bosh.login("alice")
        assert jid == "alice@localhost/bosh"

        # as web clients do, one request is always held (§11) while others carry stanzas:
        # a new request releases the held one, and the held one gets bob's answer at once
        waiting = asyncio.create_task(bosh.until(tag("message")))
        await bosh.post("<message xmlns='jabber:client' to='bob@localhost/test' type='chat'>"
                        "<body>hello over bosh</body></message>")
        msg = await bob.next("message")
        assert (msg["from"], msg["body"]) == ("alice@localhost/bosh", "hello over bosh")
        send(bob, "alice@localhost/bosh", "hello over tcp")
        got = await waiting
        assert (got.get("from"), got.findtext(C + "body")) == ("bob@localhost/test",
                                                                "hello over tcp")
        # §12: terminate, with a last stanza in it; the session ends
        ended = session_ended(server)
        body = await bosh.post("<presence xmlns='jabber:client' type='unavailable'/>",
                               type="terminate")
        assert body.get("type") == "terminate"
        assert str((await ended).jid) == "alice@localhost/bosh"
        body = await bosh.post()
        assert (body.get("type"), body.get("condition")) == ("terminate", "item-not-found")
    finally:
        await bob.close()
        await bosh.close()


async def test_unknown_sid_and_rid_outside_window(server: Server) -> None:
    await server.host.accounts.create("alice", "secret")  # type: ignore[union-attr]
    bosh, _ = await BoshClient.create(server)
    try:
        body = await bosh.post(sid="no-such-session")
        assert (body.get("type"), body.get("condition")) == ("terminate", "item-not-found")
        bosh.rid -= 1  # that rid was not the session's
        # a retransmitted request (§14.3) gets the same response again
        request = bosh.body(auth_plain("alice", "secret"))
        first = await (await bosh.post_raw(request)).read()
        assert b"<success" in first
        again = await bosh.post_raw(request)
        assert await again.read() == first
        # a rid beyond the window (requests = 2) ends the session (§14)
        assert server.http.bosh.sessions  # type: ignore[attr-defined]
        bosh.rid += 5
        body = await bosh.post()
        assert (body.get("type"), body.get("condition")) == ("terminate", "item-not-found")
        assert not server.http.bosh.sessions  # type: ignore[attr-defined]
    finally:
        await bosh.close()


async def test_bad_requests(server: Server) -> None:
    bosh, _ = await BoshClient.create(server)
    try:
        response = await bosh.post_raw("<body xmlns='http://jabber.org/protocol/httpbind'")
        assert response.status == 400
        response = await bosh.post_raw("<!DOCTYPE x><body/>")
        assert response.status == 400  # restricted XML, as on any stream
        response = await bosh.post_raw(b"<body xmlns='http://jabber.org/protocol/httpbind' "
                                       b"rid='1'>" + b" " * 600_000 + b"</body>")
        assert response.status == 413  # http.bosh_max_body_bytes
        other, body = await BoshClient.create(server, to="elsewhere.example")
        await other.close()
        assert (body.get("type"), body.get("condition")) == ("terminate", "host-unknown")
    finally:
        await bosh.close()


async def test_stream_error_is_remote_stream_error(server: Server) -> None:
    await server.host.accounts.create("alice", "secret")  # type: ignore[union-attr]
    bosh, _ = await BoshClient.create(server)
    try:
        await bosh.login("alice")
        body = await bosh.post("<nonsense xmlns='urn:example'/>")
        if body.get("type") != "terminate":
            body = await bosh.post()
        # XEP-0206 §7: the stream error travels inside the terminate body
        assert (body.get("type"), body.get("condition")) == ("terminate", "remote-stream-error")
        error = body.find(f"{{{STREAM}}}error")
        assert error is not None and error.find(STREAMS_ERR + "unsupported-stanza-type") is not None
    finally:
        await bosh.close()


async def test_keys(server: Server) -> None:
    """§15: each request's key hashes to the previous one."""
    keys = ["k0"]
    for _ in range(4):
        keys.append(hashlib.sha1(keys[-1].encode()).hexdigest())
    bosh, _ = await BoshClient.create(server, newkey=keys[4])
    try:
        body = await bosh.post("<iq xmlns='jabber:client' type='get' id='r'>"
                               "<query xmlns='jabber:iq:register'/></iq>", key=keys[3])
        assert body.get("type") != "terminate" and body[0].get("id") == "r"
        body = await bosh.post(key="forged")
        assert (body.get("type"), body.get("condition")) == ("terminate", "item-not-found")
    finally:
        await bosh.close()


async def test_out_of_order_requests_are_handled_in_rid_order(server: Server) -> None:
    await server.host.accounts.create("alice", "secret")  # type: ignore[union-attr]
    bosh, _ = await BoshClient.create(server)
    try:
        await bosh.login("alice")
        first, second = bosh.body(
            "<iq xmlns='jabber:client' type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>"
        ), bosh.body(
            "<iq xmlns='jabber:client' type='get' id='p2'><ping xmlns='urn:xmpp:ping'/></iq>"
        )
        later = asyncio.create_task(bosh.post_raw(second))
        await asyncio.sleep(0.05)  # the later rid arrives first and waits
        earlier = await bosh.post_raw(first)
        replies = etree.fromstring(await earlier.read())
        replies.extend(etree.fromstring(await (await later).read()))
        ids = [el.get("id") for el in replies]
        while len(ids) < 2:
            ids += [el.get("id") for el in await bosh.post()]
        assert ids == ["p1", "p2"]
    finally:
        await bosh.close()


async def test_inactive_session_ends(servers: ServerFactory) -> None:
    server = await servers.start(http={"bosh_inactivity": 1})
    await server.host.accounts.create("alice", "secret")  # type: ignore[union-attr]
    bosh, _ = await BoshClient.create(server)
    try:
        await bosh.login("alice")
        ended = session_ended(server)
        async with asyncio.timeout(5):
            session = await ended  # no request for 'inactivity' seconds (§8)
        assert str(session.jid) == "alice@localhost/bosh"
        body = await bosh.post()
        assert (body.get("type"), body.get("condition")) == ("terminate", "item-not-found")
    finally:
        await bosh.close()


async def test_foreign_origin_and_cors(servers: ServerFactory) -> None:
    server = await servers.start(http={"origins": ["https://app.example"]})
    bosh = BoshClient(server, aiohttp.ClientSession())
    try:
        response = await bosh.post_raw(bosh.body(to="localhost"),
                                       headers={"Origin": "https://evil.example"})
        assert response.status == 403
        preflight = await bosh.http.options(bosh.url, headers={
            "Origin": "https://app.example", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type"})
        assert preflight.status == 204
        assert preflight.headers["Access-Control-Allow-Origin"] == "https://app.example"
        assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
        refused = await bosh.http.options(bosh.url, headers={
            "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
        assert refused.status == 403
        response = await bosh.post_raw(bosh.body(to="localhost", wait="1", hold="1"),
                                       headers={"Origin": "https://app.example"})
        assert response.status == 200
        assert response.headers["Access-Control-Allow-Origin"] == "https://app.example"
        body = etree.fromstring(await response.read())
        assert body.find(f"{{{STREAM}}}features") is not None
    finally:
        await bosh.close()



async def test_polling_does_not_keep_an_unauthenticated_stream(servers: ServerFactory) -> None:
    server = await servers.start(c2s={"ping_interval": 1})
    bosh, _ = await BoshClient.create(server, wait="1")
    try:
        async with asyncio.timeout(5):
            while (body := await bosh.post()).get("type") != "terminate":
                pass
        assert body.get("condition") == "remote-stream-error"
        error = body.find(f"{{{STREAM}}}error")
        assert error is not None and error.find(STREAMS_ERR + "connection-timeout") is not None
    finally:
        await bosh.close()


async def test_connections_per_address_are_capped(servers: ServerFactory) -> None:
    server = await servers.start(c2s={"max_connections_per_ip": 1})
    first, _ = await BoshClient.create(server)
    second, body = await BoshClient.create(server)
    try:
        assert body.get("type") == "terminate" and body.get("condition") == "policy-violation"
    finally:
        await second.close()
        await first.post(type="terminate")
        await first.close()
    third, body = await BoshClient.create(server)  # the first session's place is free again
    try:
        assert body.get("type") != "terminate" and body.get("sid")
    finally:
        await third.close()


async def test_client_that_stops_polling_is_closed_not_buffered(servers: ServerFactory) -> None:
    from tests.support.clients import RawClient

    server = await servers.start(c2s={"require_tls": False},
                                 limits={"max_output_buffer_bytes": 262144})
    assert server.host is not None
    await server.host.accounts.create("reader", "secret")
    await server.host.accounts.create("flooder", "secret")
    bosh, _ = await BoshClient.create(server, wait="1")
    flooder = await RawClient.open(server)
    try:
        jid = await bosh.login("reader")  # and asks for nothing more for now
        await flooder.login("flooder", "secret")
        stanza = f"<message to='{jid}' type='chat'><body>{'x' * 1000}</body></message>".encode()
        for _ in range(10):  # 1 MB
            await flooder.send(stanza * 100)
        for _ in range(200):
            if not server.host.sessions.is_online("reader"):
                break
            await asyncio.sleep(0.05)
        body = await bosh.post()
        while body.get("type") != "terminate":
            body = await bosh.post()
        assert body.get("condition") == "remote-stream-error"
        error = body.find(f"{{{STREAM}}}error")
        assert error is not None and error.find(STREAMS_ERR + "policy-violation") is not None
    finally:
        await flooder.close()
        await bosh.close()


async def test_unauthenticated_stream_is_closed_at_the_deadline(servers: ServerFactory) -> None:
    """c2s.auth_timeout runs from the session's creation, whatever the client sends."""
    server = await servers.start(c2s={"auth_timeout": 1, "ping_interval": 60})
    bosh, _ = await BoshClient.create(server, wait="1")
    try:
        async with asyncio.timeout(8):
            while (body := await bosh.post(" ")).get("type") != "terminate":
                pass
        error = body.find(f"{{{STREAM}}}error")
        assert error is not None and error.find(STREAMS_ERR + "connection-timeout") is not None
    finally:
        await bosh.close()
