"""Debian 12's slixmpp 1.8.3 (``python3-slixmpp``, what poezio runs on) against the default
server, beside a user on the suite's current slixmpp: login, contacts, 1:1, offline delivery,
a room, XEP-0199 keepalive pings and XEP-0425 moderation through its own plugins.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.clients.debian_slixmpp import (
    CommandError,
    DebianSlixmpp,
    Event,
    debian_clients,
    require_debian_slixmpp,
)
from tests.clients.rooms import enter
from tests.scenarios.test_login_throttle import scram
from tests.support.clients import Client, connect
from tests.support.server import ServerFactory
from xmpp_server.server import Server

ROOM = "lobby@conference.localhost"


@pytest.fixture
def python() -> str:
    return require_debian_slixmpp()


@pytest.fixture
async def debian(python: str, client_server: Server) -> AsyncIterator[Any]:
    """``await debian("deb")``: a logged-in 1.8.3 client, closed when the test ends."""
    async with debian_clients() as opened:
        async def start(user: str, **kw: Any) -> DebianSlixmpp:
            client = await DebianSlixmpp.start(python, client_server, user, **kw)
            opened.append(client)
            return client

        yield start


@pytest.fixture
async def modern(client_server: Server) -> AsyncIterator[Any]:
    """``await modern("alice")``: a user on the suite's slixmpp, present, closed at the end."""
    opened: list[Client] = []

    async def start(user: str, **kw: Any) -> Client:
        client = await connect(client_server, user, plugins=("xep_0030", "xep_0045", "xep_0004"),
                               get_roster=True, send_presence=True, **kw)
        client.auto_authorize = None  # a person decides
        client.auto_subscribe = False
        opened.append(client)
        return client

    try:
        yield start
    finally:
        for client in opened:
            await client.close()


def sender(jid: str, **fields: Any) -> Any:
    """An event from this (bare or full) JID with these fields."""
    return lambda e: e["from"].split("/")[0] == jid and all(e[k] == v for k, v in fields.items())


async def test_login_falls_back_to_plain_and_counts_no_failure(debian: Any,
                                                              client_server: Server) -> None:
    """slixmpp 1.8.3 ignores XEP-0440 and offers tls-unique over TLS 1.3 (RFC 9266 forbids
    it), then the 'y' flag while -PLUS is offered (RFC 5802 §6: refused), then PLAIN: the
    refusals are no guesses, so logging in again and again locks nothing."""
    for user in ("deb", "deb", "deb", "eve", "frank"):  # the same account, and others
        deb = await debian(user)
        tries = [e for e in deb.seen if e["event"] == "sasl"]
        assert tries[-1] == {"event": "sasl", "mechanism": "PLAIN", "result": "success"}
        assert all(t["result"] == "failure" and t["mechanism"].startswith("SCRAM")
                   for t in tries[:-1]), tries
        await deb.close()
    # Twelve refusals did not count against deb: from an address it never logged in from,
    # four wrong guesses are still checked (a fifth would lock it) and the right password
    # still works.
    for _ in range(4):
        assert await scram(client_server, "deb", "wrong", source="127.0.0.2") == "not-authorized"
    assert await scram(client_server, "deb", "secret", source="127.0.0.2") == "success"


async def test_contacts_both_ways_and_chat(debian: Any, modern: Any) -> None:
    alice = await modern("alice")
    deb = await debian("deb")
    assert (await deb.call("roster"))["items"] == {}
    await deb.call("presence")

    # deb adds alice, alice accepts
    await deb.call("subscribe", to="alice@localhost")
    ask = await alice.next("presence", lambda p: p["type"] == "subscribe")
    assert ask["from"] == "deb@localhost"
    alice.send_presence(pto="deb@localhost", ptype="subscribed")
    await deb.next("presence", sender("alice@localhost", type="subscribed"))
    # alice adds deb, deb accepts
    alice.send_presence(pto="deb@localhost", ptype="subscribe")
    await deb.next("presence", sender("alice@localhost", type="subscribe"))
    await deb.call("approve", to="alice@localhost")
    await alice.next("presence", lambda p: p["type"] == "subscribed")

    assert (await deb.call("roster"))["items"] == {"alice@localhost": "both"}
    await alice.get_roster()
    assert alice.client_roster["deb@localhost"]["subscription"] == "both"
    # each sees the other online
    await deb.next("presence", sender("alice@localhost", type="available"))
    await alice.next("presence", lambda p: p["from"] == "deb@localhost/debian"
                     and p["type"] == "available")

    await deb.call("send", to="alice@localhost", body="hello from 1.8.3")
    msg = await alice.next("message")
    assert (msg["from"], msg["body"]) == ("deb@localhost/debian", "hello from 1.8.3")
    alice.send_message(mto="deb@localhost", mbody="hello, 1.8.3", mtype="chat")
    got = await deb.next("message", lambda e: e["body"] == "hello, 1.8.3")
    assert got["from"] == "alice@localhost/test" and got["delay"] is None


async def test_offline_delivery_both_ways(debian: Any, modern: Any,
                                          client_server: Server) -> None:
    assert client_server.host is not None
    await client_server.host.accounts.create("deb", "secret")
    await client_server.host.accounts.create("carol", "secret")
    alice = await modern("alice")
    alice.send_message(mto="deb@localhost", mbody="while you were away", mtype="chat")
    await alice.nothing("message")  # stored, not bounced

    deb = await debian("deb")
    await deb.call("send", to="carol@localhost", body="for when you are back")
    await deb.nothing("message", wait=0.3)  # offline messages wait for the initial presence
    await deb.call("presence")
    got = await deb.next("message", lambda e: e["body"] == "while you were away")
    assert got["from"] == "alice@localhost/test" and got["delay"]

    carol = await modern("carol")
    msg = await carol.next("message")
    assert (msg["from"], msg["body"]) == ("deb@localhost/debian", "for when you are back")
    assert msg.xml.find("{urn:xmpp:delay}delay") is not None


async def joined(deb: DebianSlixmpp, nick: str) -> Event:
    """Join the room; accept the default configuration if the join created it."""
    reply = await deb.call("join", room=ROOM, nick=nick)
    if 201 in reply["codes"]:
        await deb.call("instant_room", room=ROOM)
    return reply


async def test_room_both_ways(debian: Any, modern: Any) -> None:
    alice = await modern("alice")
    await enter(alice, ROOM, "alice")
    deb = await debian("deb")
    reply = await joined(deb, "deb")
    assert 110 in reply["codes"] and f"{ROOM}/alice" in reply["occupants"]

    await deb.call("send", to=ROOM, body="hi room", type="groupchat")
    msg = await alice.next("message", lambda m: m["body"] == "hi room")
    assert (msg["type"], msg["from"]) == ("groupchat", f"{ROOM}/deb")
    alice.send_message(mto=ROOM, mbody="hi deb", mtype="groupchat")
    got = await deb.next("groupchat", lambda e: e["body"] == "hi deb")
    assert got["nick"] == "alice" and got["stanza_id_by"] == ROOM


async def test_ping_keepalive_to_the_server(debian: Any) -> None:
    """The xep_0199 plugin pings the domain (its default address), by keepalive and on
    request; the server answers with a result, not an error the plugin would hide."""
    deb = await debian("deb", keepalive=1)
    for _ in range(2):
        out = await deb.next("ping_out")
        assert out["to"] == "localhost"
        reply = await deb.next("ping_reply", lambda e, sent=out["id"]: e["id"] == sent)
        assert (reply["type"], reply["from"]) == ("result", "localhost")
    await deb.call("ping")
    replies = [e for e in deb.seen if e["event"] == "ping_reply"]
    assert replies and all(e["type"] == "result" for e in replies), replies


async def test_moderation_with_the_xep_0425_plugin(debian: Any, modern: Any) -> None:
    """slixmpp 1.8.3's xep_0425 speaks urn:xmpp:message-moderate:0 (with XEP-0422
    apply-to), as Prosody's mod_muc_moderation still answers."""
    deb = await debian("deb")
    await joined(deb, "deb")  # the room's creator: owner, so moderator
    alice = await modern("alice")
    await enter(alice, ROOM, "alice")
    alice.send_message(mto=ROOM, mbody="spam", mtype="groupchat")
    spam = await deb.next("groupchat", lambda e: e["body"] == "spam")
    assert spam["stanza_id"] and spam["stanza_id_by"] == ROOM
    try:
        await deb.call("moderate", room=ROOM, id=spam["stanza_id"], reason="off topic")
    except CommandError as exc:
        pytest.fail(f"moderation refused: {exc.condition}")
    moderated = await deb.next("moderated", lambda e: e["id"] == spam["stanza_id"])
    assert moderated["reason"] == "off topic" and moderated["by"].startswith(ROOM)


async def test_a_shared_address_of_such_clients_is_never_refused(python: str,
                                                                tmp_path: Any) -> None:
    """Five such logins from one address refuse twenty exchanges; with room for six refusals
    per address, each login still succeeds: a stream that logs in takes its refusals back."""
    factory = ServerFactory(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'tight.db'}")
    server = await factory.start(auth={"max_refused_per_ip": 6})
    try:
        async with debian_clients() as opened:
            for user in ("ann", "ben", "cat", "dan", "eve"):
                client = await DebianSlixmpp.start(python, server, user)
                opened.append(client)
                tries = [e for e in client.seen if e["event"] == "sasl"]
                assert tries[-1]["result"] == "success", tries
    finally:
        await factory.close()
