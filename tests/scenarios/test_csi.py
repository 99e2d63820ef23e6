"""XEP-0352 client state indication between real slixmpp clients, on both backends.

Bob goes inactive; Alice (and Carol) send him directed presence updates and chat states,
which wait at the server until something important arrives or Bob is active again. Every
presence and message Bob receives lands in one queue, in the order of his stream.
"""

from __future__ import annotations

import asyncio
from typing import Any
from xml.etree import ElementTree as ET

import pytest
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from tests.support.clients import Client, connect
from xmpp_server.modules import csi
from xmpp_server.server import Server

BOB = "bob@localhost/test"
COMPOSING = "<composing xmlns='http://jabber.org/protocol/chatstates'/>"


async def ping(client: Client) -> None:
    """A round trip: everything the client sent before has been handled by the server."""
    iq = client.make_iq_get(ito="localhost")
    iq.enable("ping")
    await client.query(iq)


async def login(server: Server, user: str) -> Client:
    client = await connect(server, user, plugins=("xep_0352",))
    queue: asyncio.Queue[Any] = asyncio.Queue()
    client.queues["all"] = queue
    for kind in ("message", "presence"):
        client.register_handler(Callback(f"all {kind}", MatchXPath(f"{{jabber:client}}{kind}"),
                                         queue.put_nowait))
    client.send_presence()
    await ping(client)
    return client


async def upto(client: Client, pred: Any) -> list[Any]:
    """Everything up to and including the first stanza that satisfies ``pred``."""
    items: list[Any] = []

    def keep(stanza: Any) -> bool:
        items.append(stanza)
        return bool(pred(stanza))

    await client.next("all", keep)
    return items


def chat_state(client: Client, to: str) -> None:
    msg = client.make_message(mto=to, mtype="chat")
    msg.xml.append(ET.fromstring(COMPOSING))
    msg.send()


def seen(items: list[Any]) -> list[tuple[str, str]]:
    """(sender's user, what) for each stanza: a presence's show, a message's body or state."""
    out = []
    for item in items:
        what = item["show"] if item.name == "presence" else (item["body"] or "composing")
        out.append((item["from"].user, item["type"] if what == "" else what))
    return out


@pytest.fixture
async def bob(server: Server):  # type: ignore[no-untyped-def]
    """Bob, logged in and inactive, with nothing of his own left in flight."""
    client = await login(server, "bob")
    assert client.plugin["xep_0352"].enabled  # the stream feature was offered (§4.1)
    client.plugin["xep_0352"].send_inactive()
    await ping(client)  # §5.1: handled before the ping
    while not client.queues["all"].empty():  # his own presence, echoed at login
        client.queues["all"].get_nowait()
    yield client
    await client.close()


async def test_updates_are_held_collapsed_and_flushed_by_a_message(server, bob):
    alice = await login(server, "alice")
    try:
        for show in ("away", "dnd", "xa"):
            alice.send_presence(pto=BOB, pshow=show)
        chat_state(alice, BOB)
        await ping(alice)
        await bob.nothing("all", wait=0.3)  # all held
        alice.send_message(mto=BOB, mbody="wake up", mtype="chat")
        got = await upto(bob, lambda s: s["body"] == "wake up")
        # the newest presence only, then the chat state, then the message that flushed them
        assert seen(got) == [("alice", "xa"), ("alice", "composing"), ("alice", "wake up")]
        # still inactive: the next update waits again
        alice.send_presence(pto=BOB, pshow="chat")
        await ping(alice)
        await bob.nothing("all", wait=0.3)
    finally:
        await alice.close()


async def test_active_flushes_in_order(server, bob):
    alice = await login(server, "alice")
    carol = await login(server, "carol")
    try:
        alice.send_presence(pto=BOB, pshow="away")
        await ping(alice)
        carol.send_presence(pto=BOB, pshow="dnd")
        await ping(carol)
        chat_state(alice, BOB)
        alice.send_presence(pto=BOB, ptype="unavailable")
        await ping(alice)
        await bob.nothing("all", wait=0.3)
        bob.plugin["xep_0352"].send_active()
        got = await upto(bob, lambda s: s["type"] == "unavailable")
        # Alice's newest presence replaced her first one, at the end
        assert seen(got) == [("carol", "dnd"), ("alice", "composing"),
                             ("alice", "unavailable")]
        alice.send_presence(pto=BOB, pshow="chat")  # active again: no waiting
        assert seen(await upto(bob, lambda s: s["show"] == "chat")) == [("alice", "chat")]
    finally:
        await alice.close()
        await carol.close()


async def test_important_stanzas_are_not_held(server, bob):
    """A subscription request needs the user: it goes out at once, after what was held."""
    alice = await login(server, "alice")
    try:
        alice.send_presence(pto=BOB, pshow="away")
        alice.send_presence(pto="bob@localhost", ptype="subscribe")
        got = await upto(bob, lambda s: s["type"] == "subscribe")
        assert seen(got) == [("alice", "away"), ("alice", "subscribe")]
    finally:
        await alice.close()


async def test_a_full_queue_is_flushed(server, bob, monkeypatch):
    monkeypatch.setattr(csi, "MAX_HELD", 3)
    alice = await login(server, "alice")
    try:
        chat_state(alice, BOB)
        chat_state(alice, BOB)
        await ping(alice)
        await bob.nothing("all", wait=0.3)
        chat_state(alice, BOB)
        got = [await bob.next("all") for _ in range(3)]
        assert seen(got) == [("alice", "composing")] * 3
    finally:
        await alice.close()
