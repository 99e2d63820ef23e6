"""XEP-0191 blocking between real slixmpp clients, on both backends.

Bob blocks Alice. What Alice sends Bob is refused or dropped, what Bob sends Alice is refused
to him, Bob's presence stops reaching her, and the list survives Bob's sessions.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from slixmpp.exceptions import IqError

from storage import RosterItem
from tests.support.clients import Client, connect
from xmpp_server.jid import JID
from xmpp_server.modules.blocking import matches
from xmpp_server.server import Server

BLOCKING = "urn:xmpp:blocking"
A, B = "alice@localhost", "bob@localhost"


async def ping(client: Client) -> None:
    """A round trip: everything the client sent before has been handled by the server."""
    iq = client.make_iq_get(ito="localhost")
    iq.enable("ping")
    await client.query(iq)


async def login(server: Server, user: str, resource: str = "test", *,
                presence: bool = True) -> Client:
    client = await connect(server, user, resource=resource, plugins=("xep_0191",),
                           get_roster=True)
    client.auto_authorize = None
    client.auto_subscribe = False
    pushes: asyncio.Queue[Any] = asyncio.Queue()
    client.queues["push"] = pushes
    client.add_event_handler("blocked", pushes.put_nowait)
    client.add_event_handler("unblocked", pushes.put_nowait)
    if presence:
        client.send_presence()
        await ping(client)
    return client


async def befriend(server: Server, *users: str) -> None:
    """Mutual 'both' subscriptions, written straight to storage."""
    assert server.host is not None
    for user in users:
        if not await server.host.accounts.exists(user):
            await server.host.accounts.create(user, "secret")
    for user in users:
        for contact in users:
            if contact != user:
                await server.host.storage.roster.put(
                    user, RosterItem(f"{contact}@localhost", subscription="both"))


async def blocklist(client: Client) -> list[str]:
    return sorted(str(jid) for jid in await client.plugin["xep_0191"].get_blocked_jids())


def push_items(iq: Any, command: str) -> list[str]:
    return [item.get("jid") for item in iq.xml.iter(f"{{{BLOCKING}}}item")
            if iq.xml.find(f"{{{BLOCKING}}}{command}") is not None]


async def error_of(request: Any) -> str:
    with pytest.raises(IqError) as info:
        await request
    return str(info.value.iq["error"]["condition"])


def from_(jid: str, type_: str | None = None) -> Any:
    return lambda s: str(s["from"]) == jid and (type_ is None or s["type"] == type_)


def drain(client: Client, kind: str) -> list[Any]:
    queue = client.queues[kind]
    items = []
    while not queue.empty():
        items.append(queue.get_nowait())
    return items


async def close(*clients: Client) -> None:
    for client in clients:
        await client.close()


# -- the list (§5.2-§5.5) ---------------------------------------------------------------------

async def test_block_unblock_and_pushes(server):
    bob = await login(server, "bob", "a")
    other = await login(server, "bob", "b")  # never asks for the list: gets no pushes
    try:
        assert await blocklist(bob) == []
        await bob.plugin["xep_0191"].block([A, "Evil.Example"])
        push = await bob.next("push")
        assert sorted(push_items(push, "block")) == [A, "evil.example"]
        assert await blocklist(bob) == [A, "evil.example"]
        await bob.plugin["xep_0191"].unblock([A])
        assert push_items(await bob.next("push"), "unblock") == [A]
        assert await blocklist(bob) == ["evil.example"]
        iq = bob.make_iq_set()
        iq.enable("unblock")  # §5.5: an empty <unblock/> clears the list
        await bob.query(iq)
        push = await bob.next("push")
        assert push.xml.find(f"{{{BLOCKING}}}unblock") is not None
        assert push_items(push, "unblock") == []
        assert await blocklist(bob) == []
        await ping(other)
        assert other.queues["push"].empty()
    finally:
        await close(bob, other)


async def test_bad_requests(server):
    bob = await login(server, "bob", presence=False)
    try:
        iq = bob.make_iq_set()
        iq.enable("block")
        assert await error_of(bob.query(iq)) == "bad-request"  # §5.3: at least one item
        assert await error_of(bob.plugin["xep_0191"].block(["a@b@c"])) == "jid-malformed"
        assert await error_of(bob.plugin["xep_0191"].block([B])) == "not-allowed"
        assert await error_of(bob.plugin["xep_0191"].block(["localhost"])) == "not-allowed"
        iq = bob.make_iq_get(ito=A)  # someone else's list
        iq.enable("blocklist")
        assert await error_of(bob.query(iq)) == "forbidden"
    finally:
        await bob.close()


def test_matching():
    """§4: full JID, bare JID, domain/resource, domain and its subdomains."""
    def m(items: set[str], jid: str) -> bool:
        return matches(frozenset(items), JID.parse(jid))

    assert m({"a@x.org/r"}, "a@x.org/r") and not m({"a@x.org/r"}, "a@x.org/s")
    assert not m({"a@x.org/r"}, "a@x.org")
    assert m({"a@x.org"}, "a@x.org/any") and m({"a@x.org"}, "a@x.org")
    assert not m({"a@x.org"}, "b@x.org")
    assert m({"x.org/r"}, "a@x.org/r") and m({"x.org/r"}, "x.org/r")
    assert not m({"x.org/r"}, "a@x.org/s")
    assert m({"x.org"}, "x.org") and m({"x.org"}, "a@x.org/r") and m({"x.org"}, "muc.x.org")
    assert m({"x.org"}, "a@chat.x.org/r") and not m({"x.org"}, "a@notx.org")
    assert not m(set(), "a@x.org")


# -- enforcement (§5.3) -----------------------------------------------------------------------

async def test_stanzas_from_a_blocked_contact(server):
    bob = await login(server, "bob")
    alice = await login(server, "alice")
    carol = await login(server, "carol")
    try:
        await bob.plugin["xep_0191"].block([A])
        alice.send_message(mto=B, mbody="hello?", mtype="chat")
        err = await alice.next("message", lambda m: m["type"] == "error")
        assert err["error"]["condition"] == "service-unavailable"
        iq = alice.make_iq_get(ito=B + "/test")
        iq.enable("ping")
        assert await error_of(alice.query(iq)) == "service-unavailable"
        alice.send_presence(pto=B + "/test", pshow="dnd")  # dropped, unanswered
        await ping(alice)
        carol.send_message(mto=B, mbody="marker", mtype="chat")
        got = await bob.next("message")
        assert got["body"] == "marker"
        assert [p for p in drain(bob, "presence") if str(p["from"]) == A + "/test"] == []
        await alice.nothing("presence", lambda p: p["type"] == "error", wait=0.2)
    finally:
        await close(bob, alice, carol)


async def test_stanzas_to_a_blocked_contact(server):
    bob = await login(server, "bob")
    alice = await login(server, "alice")
    try:
        await bob.plugin["xep_0191"].block([A])
        bob.send_message(mto=A, mbody="psst", mtype="chat")
        err = await bob.next("message", lambda m: m["type"] == "error")
        assert err["error"]["condition"] == "not-acceptable"
        assert err.xml.find("{jabber:client}error/{urn:xmpp:blocking:errors}blocked") is not None
        iq = bob.make_iq_get(ito=A + "/test")
        iq.enable("ping")
        assert await error_of(bob.query(iq)) == "not-acceptable"
        await bob.plugin["xep_0191"].unblock([A])
        bob.send_message(mto=A, mbody="marker", mtype="chat")
        assert (await alice.next("message"))["body"] == "marker"
    finally:
        await close(bob, alice)


# -- presence around blocking -----------------------------------------------------------------

async def test_block_and_unblock_presence(server):
    await befriend(server, "alice", "bob")
    bob = await login(server, "bob")
    alice = await login(server, "alice")
    try:
        await alice.next("presence", from_(B + "/test"))
        await bob.next("presence", from_(A + "/test"))
        await bob.plugin["xep_0191"].block([A])
        # §5.3: the blocked contact sees the user go offline
        await alice.next("presence", from_(B + "/test", "unavailable"))
        bob.send_presence(pshow="away")  # the broadcast skips Alice now
        alice.send_presence(pshow="dnd")  # and Alice's does not reach Bob
        await ping(bob)
        await ping(alice)
        await alice.nothing("presence", from_(B + "/test"), wait=0.3)
        assert [p for p in drain(bob, "presence") if str(p["from"]) == A + "/test"] == []
        await bob.plugin["xep_0191"].unblock([A])
        # §5.4: the current presence, and a probe brings Alice's back to Bob
        got = await alice.next("presence", from_(B + "/test"))
        assert got["show"] == "away"
        got = await bob.next("presence", from_(A + "/test"))
        assert got["show"] == "dnd"
    finally:
        await close(bob, alice)


async def test_probes_of_the_blocked_are_not_answered(server):
    await befriend(server, "alice", "bob", "carol")
    bob = await login(server, "bob")
    carol = await login(server, "carol")
    await bob.plugin["xep_0191"].block([A])
    alice = await login(server, "alice", presence=False)
    try:
        alice.send_presence()  # initial presence: probes Bob and Carol
        await alice.next("presence", from_("carol@localhost/test"))
        await ping(alice)
        await alice.nothing("presence", from_(B + "/test"), wait=0.3)
    finally:
        await close(bob, carol, alice)


# -- persistence and offline users ------------------------------------------------------------

async def test_the_list_outlives_sessions(server):
    bob = await login(server, "bob")
    await bob.plugin["xep_0191"].block([A])
    await bob.close()
    alice = await login(server, "alice")
    try:
        # Bob is offline: the message is refused, not stored; the request is dropped.
        alice.send_message(mto=B, mbody="are you there?", mtype="chat")
        err = await alice.next("message", lambda m: m["type"] == "error")
        assert err["error"]["condition"] == "service-unavailable"
        alice.send_presence(pto=B, ptype="subscribe")
        await ping(alice)
        assert server.host is not None
        assert await server.host.storage.offline.count("bob") == 0
        assert await server.host.storage.roster.list_pending("bob") == []
        bob = await login(server, "bob", presence=False)
        assert await blocklist(bob) == [A]
        alice.send_message(mto=B + "/test", mbody="and now?", mtype="chat")
        err = await alice.next("message", lambda m: m["type"] == "error")
        assert err["error"]["condition"] == "service-unavailable"
    finally:
        await close(alice, bob)
