"""XEP-0280 message carbons between real slixmpp clients, on both backends.

"Nothing else arrived" is checked without sleeping: each test ends with a marker message
that is copied, and a session's stanzas arrive in order, so whatever was copied before the
marker is already in the queue when the marker's copy arrives. slixmpp raises its "message"
event only for messages with a body, so every message is collected in an "all" queue.
"""

from __future__ import annotations

import asyncio
from typing import Any
from xml.etree import ElementTree as ET

import pytest
from slixmpp.exceptions import IqError
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from tests.support.clients import Client, connect
from xmpp_server.server import Server

CARBONS = "urn:xmpp:carbons:2"
FORWARDED = "{urn:xmpp:forward:0}forwarded/{jabber:client}message"
SID = "{urn:xmpp:sid:0}stanza-id"
NO_COPY = "<no-copy xmlns='urn:xmpp:hints'/>"


async def ping(client: Client) -> None:
    iq = client.make_iq_get(ito="localhost")
    iq.enable("ping")
    await client.query(iq)


def collect(client: Client) -> Client:
    queue: asyncio.Queue[Any] = asyncio.Queue()
    client.queues["all"] = queue
    client.register_handler(Callback("all messages", MatchXPath("{jabber:client}message"),
                                     queue.put_nowait))
    return client


async def online(server: Server, user: str, resource: str, priority: int = 0,
                 carbons: bool = True) -> Client:
    client = collect(await connect(server, user, resource=resource, plugins=("xep_0280",)))
    if carbons:
        await client.plugin["xep_0280"].enable()
    client.send_presence(ppriority=priority)
    await ping(client)
    return client


def send(client: Client, to: str, body: str | None, type_: str = "chat",
         extra: tuple[str, ...] = ()) -> None:
    msg = client.make_message(mto=to, mtype=type_)  # type: ignore[arg-type]
    if body is not None:
        msg["body"] = body
    for xml in extra:
        msg.xml.append(ET.fromstring(xml))
    msg.send()


def copied(msg: Any, direction: str) -> ET.Element | None:
    """The message inside a carbon of ``direction`` (received or sent), else None."""
    return msg.xml.find(f"{{{CARBONS}}}{direction}/{FORWARDED}")


def is_copy(direction: str, body: str) -> Any:
    def pred(msg: Any) -> bool:
        inner = copied(msg, direction)
        return inner is not None and inner.findtext("{jabber:client}body") == body
    return pred


async def upto(client: Client, pred: Any) -> list[Any]:
    """Every message up to and including the first that satisfies ``pred``."""
    items: list[Any] = []

    def keep(msg: Any) -> bool:
        items.append(msg)
        return bool(pred(msg))

    await client.next("all", keep)
    return items


def body_is(text: str) -> Any:
    return lambda m: m["body"] == text


def copies(items: list[Any]) -> list[ET.Element]:
    """The messages inside the carbons among ``items``."""
    return [inner for m in items
            for inner in (copied(m, "received"), copied(m, "sent")) if inner is not None]


async def close(*clients: Client) -> None:
    for client in clients:
        await client.close()


@pytest.fixture
async def three(server: Server):  # type: ignore[no-untyped-def]
    """alice/a, alice/b (both with carbons) and bob/phone (without)."""
    a = await online(server, "alice", "a", priority=5)
    b = await online(server, "alice", "b", priority=1)
    bob = await online(server, "bob", "phone", carbons=False)
    yield a, b, bob
    await close(a, b, bob)


async def test_feature_and_enable_disable(server):
    client = await connect(server, "alice", plugins=("xep_0030", "xep_0280"))
    try:
        info = await client.plugin["xep_0030"].get_info(jid="localhost")
        assert CARBONS in info["disco_info"]["features"]
        # §10.1: enabling or disabling twice is no error
        for _ in range(2):
            await client.plugin["xep_0280"].enable()
        for _ in range(2):
            await client.plugin["xep_0280"].disable()
    finally:
        await client.close()


async def test_only_ones_own_carbons(server):
    await connect(server, "bob", create=True)  # the account exists
    alice = await connect(server, "alice", plugins=("xep_0280",))
    try:
        iq = alice.make_iq_set(ito="bob@localhost")
        iq.enable("carbon_enable")
        with pytest.raises(IqError) as err:
            await alice.query(iq)
        assert err.value.iq["error"]["condition"] == "not-allowed"
    finally:
        await alice.close()


async def test_received_to_bare_jid(three):
    """§7: the top resource gets the message, the other carbons-enabled one a copy."""
    a, b, bob = three
    send(bob, "alice@localhost", "hello")
    carbon = (await upto(b, is_copy("received", "hello")))[-1]
    assert carbon["from"] == "alice@localhost"
    assert carbon["to"] == "alice@localhost/b"
    assert carbon["type"] == "chat"
    inner = copied(carbon, "received")
    assert inner is not None
    assert inner.get("from") == "bob@localhost/phone"
    assert inner.find(SID) is not None  # the copy carries the archive id (XEP-0359)
    send(bob, "alice@localhost/a", "marker")
    got = await upto(a, body_is("marker"))
    assert [m["body"] for m in got] == ["hello", "marker"]
    assert got[0]["from"] == "bob@localhost/phone"
    assert copies(got) == []


async def test_received_to_full_jid(three):
    """§7: the addressed resource gets the original, every other enabled one a copy."""
    a, b, bob = three
    send(bob, "alice@localhost/b", "to b")
    await upto(a, is_copy("received", "to b"))
    send(bob, "alice@localhost/b", "marker", extra=(NO_COPY,))
    got = await upto(b, body_is("marker"))
    assert [m["body"] for m in got] == ["to b", "marker"]
    assert copies(got) == []


async def test_sent(three):
    """§8: the sender's other resources get a copy; the sender and the recipient do not."""
    a, b, bob = three
    send(a, "bob@localhost", "from a")
    carbon = (await upto(b, is_copy("sent", "from a")))[-1]
    assert carbon["from"] == "alice@localhost"
    inner = copied(carbon, "sent")
    assert inner is not None
    assert inner.get("from") == "alice@localhost/a"
    assert inner.get("to") == "bob@localhost"
    send(b, "bob@localhost", "marker")
    assert copies(await upto(a, is_copy("sent", "marker")))[:-1] == []
    got = await upto(bob, body_is("marker"))
    assert [m["body"] for m in got] == ["from a", "marker"]
    assert copies(got) == []


async def test_private_is_not_copied_and_is_stripped(three):
    """§9: <private/> stops both copies; the recipient's server removes it."""
    a, b, bob = three
    private = "<private xmlns='urn:xmpp:carbons:2'/>"
    send(bob, "alice@localhost", "secret in", extra=(private,))
    msg = (await upto(a, body_is("secret in")))[-1]
    assert msg.xml.find(f"{{{CARBONS}}}private") is None
    send(a, "bob@localhost", "secret out", extra=(private,))
    await upto(bob, body_is("secret out"))
    send(bob, "alice@localhost", "marker")
    assert copies(await upto(b, is_copy("received", "marker")))[:-1] == []


async def test_no_copy_hint(three):
    """XEP-0334 §4.3: <no-copy/> stops copies either way."""
    a, b, bob = three
    send(bob, "alice@localhost", "in", extra=(NO_COPY,))
    await upto(a, body_is("in"))
    send(a, "bob@localhost", "out", extra=(NO_COPY,))
    await upto(bob, body_is("out"))
    send(bob, "alice@localhost", "marker")
    assert copies(await upto(b, is_copy("received", "marker")))[:-1] == []


async def test_eligibility(three):
    """§6: chat (even without a body) and normal with a body; not headlines, not normal
    without a body, not messages from a MUC."""
    _, b, bob = three
    composing = "<composing xmlns='http://jabber.org/protocol/chatstates'/>"
    muc = "<x xmlns='http://jabber.org/protocol/muc#user'/>"
    send(bob, "alice@localhost/a", None, extra=(composing,))
    send(bob, "alice@localhost/a", "news", type_="headline")
    send(bob, "alice@localhost/a", None, type_="normal", extra=(composing,))
    send(bob, "alice@localhost/a", "pm", extra=(muc,))
    send(bob, "alice@localhost/a", "normal", type_="normal")
    inners = copies(await upto(b, is_copy("received", "normal")))
    assert len(inners) == 2
    assert inners[0].find("{http://jabber.org/protocol/chatstates}composing") is not None
    assert inners[0].get("type") == "chat"


async def test_disabled_and_unavailable_sessions_get_nothing(server):
    a = await online(server, "alice", "a")
    b = await online(server, "alice", "b")
    silent = collect(await connect(server, "alice", resource="silent", plugins=("xep_0280",)))
    await silent.plugin["xep_0280"].enable()  # enabled, but never sent presence
    bob = await online(server, "bob", "phone", carbons=False)
    try:
        await b.plugin["xep_0280"].disable()
        send(bob, "alice@localhost/a", "one")
        send(a, "bob@localhost", "two")
        await upto(bob, body_is("two"))
        await b.plugin["xep_0280"].enable()
        send(bob, "alice@localhost/a", "marker")
        assert copies(await upto(b, is_copy("received", "marker")))[:-1] == []
        send(bob, "alice@localhost/silent", "marker")
        assert copies(await upto(silent, body_is("marker"))) == []
    finally:
        await close(a, b, silent, bob)


async def test_message_for_offline_storage_is_copied_to_negative_priority(server):
    """A resource with a negative priority gets no message to the bare JID (RFC 6121
    §8.5.2.1.1), so with carbons it gets a copy of what goes to offline storage."""
    low = await online(server, "alice", "low", priority=-1)
    bob = await online(server, "bob", "phone", carbons=False)
    try:
        send(bob, "alice@localhost", "while away")
        carbon = (await upto(low, is_copy("received", "while away")))[-1]
        assert carbon["to"] == "alice@localhost/low"
        send(bob, "alice@localhost/low", "marker")
        assert [m["body"] for m in await upto(low, body_is("marker"))] == ["marker"]
    finally:
        await close(low, bob)
    assert server.host is not None
    assert await server.host.storage.offline.count("alice") == 1
