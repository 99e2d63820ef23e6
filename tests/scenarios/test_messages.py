"""RFC 6121 §8.5 message delivery and XEP-0359 stanza ids, between real slixmpp clients."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from xml.etree import ElementTree as ET

from tests.support.clients import Client, connect
from xmpp_server.server import Server

SID = "urn:xmpp:sid:0"
STANZA_ID = f"{{{SID}}}stanza-id"


# -- client helpers ---------------------------------------------------------------------------

async def ping(client: Client) -> None:
    """A round trip: everything the client sent before has been handled by the server."""
    iq = client.make_iq_get(ito="localhost")
    iq.enable("ping")
    await client.query(iq)


async def online(server: Server, user: str, resource: str = "test", priority: int = 0,
                 **kw: Any) -> Client:
    """A logged-in client that has sent available presence with ``priority``."""
    client = await connect(server, user, resource=resource, plugins=("xep_0203", "xep_0359"),
                           **kw)
    client.send_presence(ppriority=priority)
    await ping(client)
    return client


def send(client: Client, to: str, body: str | None = "hi", type_: str = "chat",
         extra: list[ET.Element] | None = None) -> None:
    msg = client.make_message(mto=to, mtype=type_)  # type: ignore[arg-type]
    if body is not None:
        msg["body"] = body
    for el in extra or ():
        msg.xml.append(el)
    msg.send()


def body_is(text: str) -> Callable[[Any], bool]:
    return lambda m: bool(m["body"] == text)


def is_error(m: Any) -> bool:
    return bool(m["type"] == "error")


async def close(*clients: Client) -> None:
    for client in clients:
        await client.close()


# -- bare JID: the most available resources (§8.5.2.1.1) --------------------------------------

async def test_bare_jid_goes_to_the_highest_priority_only(server):
    bob_hi = await online(server, "bob", "hi", priority=5)
    bob_lo = await online(server, "bob", "lo", priority=1)
    alice = await online(server, "alice")
    try:
        send(alice, "bob@localhost", "one")
        msg = await bob_hi.next("message", body_is("one"))
        assert msg["from"] == "alice@localhost/test"
        assert msg["type"] == "chat"
        await bob_lo.nothing("message")
        await alice.nothing("message", is_error, wait=0.1)
    finally:
        await close(alice, bob_hi, bob_lo)


async def test_equal_priorities_all_get_it(server):
    bob_a = await online(server, "bob", "a", priority=2)
    bob_b = await online(server, "bob", "b", priority=2)
    bob_c = await online(server, "bob", "c", priority=0)
    alice = await online(server, "alice")
    try:
        send(alice, "bob@localhost", "both", type_="normal")
        got_a = await bob_a.next("message", body_is("both"))
        got_b = await bob_b.next("message", body_is("both"))
        assert got_a["stanza_id"]["id"] == got_b["stanza_id"]["id"]  # one message, one id
        await bob_c.nothing("message")
    finally:
        await close(alice, bob_a, bob_b, bob_c)


async def test_negative_priority_only_by_full_jid(server):
    bob_neg = await online(server, "bob", "neg", priority=-1)
    bob_pos = await online(server, "bob", "pos", priority=0)
    alice = await online(server, "alice")
    try:
        send(alice, "bob@localhost", "to bare")
        await bob_pos.next("message", body_is("to bare"))
        await bob_neg.nothing("message", wait=0.3)
        send(alice, "bob@localhost/neg", "to full")
        await bob_neg.next("message", body_is("to full"))
        await bob_pos.nothing("message", wait=0.3)
    finally:
        await close(alice, bob_neg, bob_pos)


async def test_connected_but_not_available_gets_nothing_by_bare_jid(server):
    bob_quiet = await connect(server, "bob", resource="quiet")  # no presence sent
    bob = await online(server, "bob", "here", priority=0)
    alice = await online(server, "alice")
    try:
        send(alice, "bob@localhost", "x")
        await bob.next("message", body_is("x"))
        await bob_quiet.nothing("message", wait=0.3)
        send(alice, "bob@localhost/quiet", "direct")  # §8.5.3.1: a bound resource gets it
        await bob_quiet.next("message", body_is("direct"))
    finally:
        await close(alice, bob, bob_quiet)


# -- full JID (§8.5.3) ------------------------------------------------------------------------

async def test_full_jid_to_missing_resource_falls_back_to_bare_rules(server):
    bob_hi = await online(server, "bob", "hi", priority=3)
    bob_lo = await online(server, "bob", "lo", priority=1)
    alice = await online(server, "alice")
    try:
        send(alice, "bob@localhost/gone", "fallback")  # §8.5.3.2.1
        await bob_hi.next("message", body_is("fallback"))
        await bob_hi.nothing("message", body_is("fallback"), wait=0.3)  # exactly once
        await bob_lo.nothing("message", wait=0)

        send(alice, "bob@localhost/gone", "room", type_="groupchat")  # §8.5.3.2.1
        err = await alice.next("message", is_error)
        assert err["body"] == "room"
        assert err["error"]["condition"] == "service-unavailable"

        send(alice, "bob@localhost/gone", "news", type_="headline")  # dropped
        await ping(alice)
        await bob_hi.nothing("message", wait=0.3)
        await bob_lo.nothing("message", wait=0)
        await alice.nothing("message", is_error, wait=0)
    finally:
        await close(alice, bob_hi, bob_lo)


# -- no such account (§8.5.1) -----------------------------------------------------------------

async def test_message_to_unknown_user_is_an_error(server):
    alice = await online(server, "alice")
    try:
        for type_ in ("chat", "normal", "groupchat"):
            send(alice, "nobody@localhost", type_, type_=type_)
            err = await alice.next("message", is_error)
            assert err["body"] == type_
            assert err["from"] == "nobody@localhost"
            assert err["error"]["condition"] == "service-unavailable"
            assert err["error"]["type"] == "cancel"
        send(alice, "nobody@localhost/res", "full")  # the fallback too
        err = await alice.next("message", is_error)
        assert err["body"] == "full"
        send(alice, "nobody@localhost", "headline", type_="headline")
        await ping(alice)
        await alice.nothing("message", is_error, wait=0.2)
    finally:
        await alice.close()


# -- headline, groupchat, error (§8.5.2.1.1) --------------------------------------------------

async def test_headline_goes_to_every_non_negative_resource(server):
    bob_hi = await online(server, "bob", "hi", priority=5)
    bob_lo = await online(server, "bob", "lo", priority=0)
    bob_neg = await online(server, "bob", "neg", priority=-5)
    alice = await online(server, "alice")
    try:
        send(alice, "bob@localhost", "news", type_="headline")
        for bob in (bob_hi, bob_lo):
            msg = await bob.next("message", body_is("news"))
            assert msg["type"] == "headline"
            assert not msg.xml.findall(STANZA_ID)  # chat and normal only
        await bob_neg.nothing("message", wait=0.3)
    finally:
        await close(alice, bob_hi, bob_lo, bob_neg)


async def test_headline_to_offline_user_is_dropped(server):
    await server.host.accounts.create("bob", "secret")
    alice = await online(server, "alice")
    try:
        send(alice, "bob@localhost", "news", type_="headline")
        await ping(alice)
        await alice.nothing("message", is_error, wait=0.2)
        assert await server.host.storage.offline.count("bob") == 0
    finally:
        await alice.close()


async def test_groupchat_to_a_user_is_an_error(server):
    bob = await online(server, "bob")
    alice = await online(server, "alice")
    try:
        send(alice, "bob@localhost", "room?", type_="groupchat")
        err = await alice.next("message", is_error)
        assert err["error"]["condition"] == "service-unavailable"
        await bob.nothing("message", wait=0.3)
    finally:
        await close(alice, bob)


async def test_error_messages_to_bare_jid_are_dropped(server):
    bob = await online(server, "bob")
    alice = await online(server, "alice")
    try:
        send(alice, "bob@localhost", "oops", type_="error")
        await ping(alice)
        await bob.nothing("message", wait=0.3)
        await alice.nothing("message", wait=0)  # never an error about an error
    finally:
        await close(alice, bob)


async def test_message_without_to_goes_to_own_account(server):
    alice = await online(server, "alice", "desk", priority=1)
    alice_phone = await online(server, "alice", "phone", priority=0)
    try:
        msg = alice_phone.make_message(mto="", mbody="note to self", mtype="chat")
        del msg["to"]
        msg.send()
        got = await alice.next("message", body_is("note to self"))
        assert got["to"] == "alice@localhost"
        assert got["stanza_id"]["by"] == "alice@localhost"
    finally:
        await close(alice, alice_phone)


# -- XEP-0359 stanza ids ----------------------------------------------------------------------

def _sid(by: str, id_: str = "forged") -> ET.Element:
    return ET.Element(STANZA_ID, {"id": id_, "by": by})


async def test_stanza_id_added_origin_id_kept_forgery_stripped(server):
    bob = await online(server, "bob")
    alice = await online(server, "alice")
    try:
        extra = [
            ET.Element(f"{{{SID}}}origin-id", {"id": "alice-origin-1"}),
            _sid("bob@localhost"),
            _sid("BOB@LOCALHOST", "forged-too"),  # the same JID once prepared (RFC 7622)
            _sid("conference.localhost", "room-id"),  # someone else's id: kept
        ]
        send(alice, "bob@localhost", "ids", extra=extra)
        msg = await bob.next("message", body_is("ids"))
        ids = {el.get("by"): el.get("id") for el in msg.xml.findall(STANZA_ID)}
        assert len(msg.xml.findall(STANZA_ID)) == 2
        assert ids["conference.localhost"] == "room-id"
        ours = ids["bob@localhost"]
        assert ours not in ("forged", "forged-too")
        assert len(ours) == 36 and ours[14] == "7"  # a UUIDv7
        assert msg["origin_id"]["id"] == "alice-origin-1"

        send(alice, "bob@localhost/test", "ids again")  # to the full JID as well
        again = await bob.next("message", body_is("ids again"))
        assert again["stanza_id"]["by"] == "bob@localhost"
        assert again["stanza_id"]["id"] not in ("", ours)  # unique per message
    finally:
        await close(alice, bob)
