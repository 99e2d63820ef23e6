"""SASL2, Bind 2 and FAST over RFC 7395 WebSocket: how a browser app stays logged in.

The first visit logs in with the password and keeps a FAST token instead of it; the next visit
logs in with the token alone, in one round trip, and chats.
"""

from __future__ import annotations

import base64

from lxml import etree

from tests.scenarios.test_messages import send
from tests.support.clients import connect
from tests.support.sasl2_client import (
    SASL2,
    STREAM,
    B,
    C,
    F,
    S,
    agent,
    ht_hash,
    outcome,
    token_of,
)
from tests.support.scram_client import ScramClient
from tests.web_bridge.clients import WsClient
from xmpp_server.server import Server

BIND = "<bind xmlns='urn:xmpp:bind:0'><tag>WebApp</tag></bind>"
CLIENT_ID = "3b5e9c6a-1f0e-4c4e-9d43-8a1d2c7b9e10"  # the app's id, kept in the browser


def authenticate(mechanism: str, initial: bytes, extra: str) -> str:
    return (f"<authenticate xmlns='{SASL2}' mechanism='{mechanism}'><initial-response>"
            f"{base64.b64encode(initial).decode()}</initial-response>{agent(CLIENT_ID)}"
            f"{extra}</authenticate>")


async def test_browser_stays_logged_in_with_a_fast_token(server: Server) -> None:
    assert server.host is not None
    await server.host.accounts.create("alice", "secret")
    bob = await connect(server, "bob")
    # First visit: password (SCRAM), a token asked for, a resource bound.
    ws = await WsClient.open(server)
    try:
        features = await ws.open_stream()
        fast = [m.text for m in features.iterfind(f"{S}authentication/{S}inline/{F}fast/"
                                                  f"{F}mechanism")]
        assert fast == ["HT-SHA-256-NONE"]  # no TLS channel to bind to here
        scram = ScramClient("SCRAM-SHA-256", "alice", "secret")
        await ws.send(authenticate("SCRAM-SHA-256", scram.first(),
                                   BIND + "<request-token xmlns='urn:xmpp:fast:0' "
                                   "mechanism='HT-SHA-256-NONE'/>"))
        challenge = await ws.next(outcome)
        server_first = base64.b64decode(challenge.text or "")
        await ws.send(f"<response xmlns='{SASL2}'>"
                      f"{base64.b64encode(scram.final(server_first)).decode()}</response>")
        success = await ws.next(outcome)
        assert success.tag == S + "success", etree.tostring(success)
        token = token_of(success)
        assert token
        assert (await ws.recv()).tag == STREAM + "features"  # no restart, no new <open/>
    finally:
        await ws.close()

    # Next visit: the token only, and the session is ready.
    ws = await WsClient.open(server)
    try:
        await ws.open_stream()
        await ws.send(authenticate("HT-SHA-256-NONE",
                                   b"alice\0" + ht_hash(token, b"Initiator"),
                                   "<fast xmlns='urn:xmpp:fast:0' count='1'/>" + BIND))
        success = await ws.next(outcome)
        assert success.tag == S + "success", etree.tostring(success)
        data = base64.b64decode(success.findtext(S + "additional-data") or "")
        assert data == ht_hash(token, b"Responder")  # the server knew the token too
        assert success.find(B + "bound") is not None
        full = str(success.findtext(S + "authorization-identifier"))
        assert full.startswith("alice@localhost/WebApp/")
        await ws.recv()  # the features
        send(bob, full, "welcome back")
        message = await ws.next(lambda e: e.tag == C + "message")
        assert message.findtext(C + "body") == "welcome back"
    finally:
        await ws.close()
        await bob.close()
