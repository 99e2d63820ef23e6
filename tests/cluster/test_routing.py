"""Routing across the nodes of a cluster: 1:1, bare-JID delivery, presence, carbons, IQs."""

from __future__ import annotations

import asyncio

from storage import RosterItem
from tests.cluster.conftest import Cluster, login, settled
from tests.scenarios.test_carbons import collect, is_copy, upto
from tests.support.clients import Client


def _body(client: Client, text: str):  # type: ignore[no-untyped-def]
    return client.next("message", lambda m: m["body"] == text)


async def _friends(node, a: str, b: str) -> None:  # type: ignore[no-untyped-def]
    """``a`` and ``b`` share presence both ways (RFC 6121 'both'), set up in storage."""
    domain = node.host.domain
    for user in (a, b):
        if not await node.host.accounts.exists(user):
            await node.host.accounts.create(user, "secret")
    await node.host.storage.roster.put(a, RosterItem(jid=f"{b}@{domain}", subscription="both"))
    await node.host.storage.roster.put(b, RosterItem(jid=f"{a}@{domain}", subscription="both"))


async def test_chat_between_nodes(cluster: Cluster) -> None:
    a, b = await cluster.start(), await cluster.start()
    alice = await login(a, "alice")
    bob = await login(b, "bob")
    try:
        alice.send_presence()
        bob.send_presence()
        await settled(a, b)
        alice.send_message(mto=f"bob@{cluster.domain}", mbody="hi bob", mtype="chat")
        msg = await _body(bob, "hi bob")
        assert msg["from"].bare == f"alice@{cluster.domain}"
        bob.send_message(mto=str(msg["from"]), mbody="hi alice", mtype="chat")
        await _body(alice, "hi alice")
        assert a.cluster is not None and a.cluster.outbox.sent >= 1
    finally:
        await alice.close()
        await bob.close()


async def test_bare_jid_reaches_top_resources_on_every_node(cluster: Cluster) -> None:
    a, b, c = await cluster.start(), await cluster.start(), await cluster.start()
    phone = await login(a, "bob", "phone")
    laptop = await login(b, "bob", "laptop")
    alice = await login(c, "alice")
    try:
        phone.send_presence(ppriority=5)
        laptop.send_presence(ppriority=5)
        await settled(a, b)
        alice.send_message(mto=f"bob@{cluster.domain}", mbody="both", mtype="chat")
        await _body(phone, "both")
        await _body(laptop, "both")
        laptop.send_presence(ppriority=10)  # RFC 6121 §8.5.2.1.1: the highest only
        await settled(b)
        alice.send_message(mto=f"bob@{cluster.domain}", mbody="laptop only", mtype="chat")
        await _body(laptop, "laptop only")
        await phone.nothing("message", lambda m: m["body"] == "laptop only")
    finally:
        for client in (phone, laptop, alice):
            await client.close()


async def test_resources_are_unique_across_nodes(cluster: Cluster) -> None:
    a, b = await cluster.start(), await cluster.start()
    first = await login(a, "bob", "desk")
    await settled(a)
    second = await login(b, "bob", "desk")  # RFC 6120 §7.7.2.2: another resource is assigned
    try:
        assert second.boundjid.resource != "desk"
        assert second.boundjid.resource.startswith("desk.")
    finally:
        await first.close()
        await second.close()


async def test_presence_between_nodes(cluster: Cluster) -> None:
    a, b = await cluster.start(), await cluster.start()
    await _friends(a, "alice", "bob")
    bob = await login(b, "bob")
    await bob.get_roster()
    bob.send_presence()
    await settled(b)
    alice = await login(a, "alice")
    try:
        await alice.get_roster()
        alice.send_presence(pstatus="here")
        seen = await bob.next("presence", lambda p: p["from"].bare == f"alice@{cluster.domain}"
                              and p["type"] == "available")
        assert seen["status"] == "here"
        # alice's initial presence probed bob (§4.3): his node answered for him
        await alice.next("presence", lambda p: p["from"].bare == f"bob@{cluster.domain}")
        await alice.close()
        await bob.next("presence", lambda p: p["from"].bare == f"alice@{cluster.domain}"
                       and p["type"] == "unavailable")
    finally:
        await bob.close()


async def test_carbons_across_nodes(cluster: Cluster) -> None:
    a, b, c = await cluster.start(), await cluster.start(), await cluster.start()
    phone = collect(await login(a, "bob", "phone", plugins=("xep_0280",)))
    laptop = collect(await login(b, "bob", "laptop", plugins=("xep_0280",)))
    alice = await login(c, "alice")
    try:
        for client in (phone, laptop):
            await client.plugin["xep_0280"].enable()
            client.send_presence()
        alice.send_presence()
        await settled(a, b, c)
        alice.send_message(mto=f"bob@{cluster.domain}/phone", mbody="to the phone", mtype="chat")
        await _body(phone, "to the phone")
        await upto(laptop, is_copy("received", "to the phone"))  # XEP-0280 §7, from node4
        phone.send_message(mto=f"alice@{cluster.domain}", mbody="from the phone", mtype="chat")
        await _body(alice, "from the phone")
        await upto(laptop, is_copy("sent", "from the phone"))  # §8, from node2
    finally:
        for client in (phone, laptop, alice):
            await client.close()


async def test_iq_between_nodes(cluster: Cluster) -> None:
    """A ping to a full JID on another node, answered by that client (XEP-0199 §4.2)."""
    a, b = await cluster.start(), await cluster.start()
    alice = await login(a, "alice")
    bob = await login(b, "bob")
    try:
        await settled(a, b)
        rtt = await alice.plugin["xep_0199"].ping(f"bob@{cluster.domain}/test", timeout=10)
        assert rtt >= 0
    finally:
        await alice.close()
        await bob.close()


async def test_offline_storage_is_shared(cluster: Cluster) -> None:
    a, b = await cluster.start(), await cluster.start()
    alice = await login(a, "alice")
    await b.host.accounts.create("bob", "secret")  # type: ignore[union-attr]
    try:
        alice.send_message(mto=f"bob@{cluster.domain}", mbody="while away", mtype="chat")
        await asyncio.sleep(0.3)
        bob = await login(b, "bob")
        bob.send_presence()
        await _body(bob, "while away")
        await bob.close()
    finally:
        await alice.close()


async def test_a_block_holds_on_every_node(cluster: Cluster) -> None:
    """XEP-0191: bob blocks through one node; the node of the blocked sender, which had bob's
    list cached, refuses from then on, whichever of bob's resources is addressed."""
    a, b, c = await cluster.start(), await cluster.start(), await cluster.start()
    one = await login(a, "bob", "one", plugins=("xep_0191",))
    two = await login(b, "bob", "two")
    spam = await login(c, "spam")
    try:
        for client in (one, two):
            client.send_presence()
        await settled(a, b)
        spam.send_message(mto=f"bob@{cluster.domain}/two", mbody="first", mtype="chat")
        await _body(two, "first")  # c has bob's (empty) list cached now
        await one.plugin["xep_0191"].block(f"spam@{cluster.domain}")
        await asyncio.sleep(0.2)  # the other nodes hear of it over Redis (milliseconds)
        spam.send_message(mto=f"bob@{cluster.domain}/two", mbody="second", mtype="chat")
        await two.nothing("message", lambda m: m["body"] == "second", wait=1.0)
    finally:
        for client in (one, two, spam):
            await client.close()
