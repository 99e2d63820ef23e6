"""RFC 6121 rosters, subscriptions and presence between real slixmpp clients, on both backends.

slixmpp answers subscription requests by itself unless told not to; every client here is
told not to, so each test decides who approves what.
"""

from __future__ import annotations

import base64
import socket
import struct
from collections.abc import AsyncIterator, Callable
from typing import Any
from xml.etree import ElementTree as ET

import pytest
import slixmpp
from slixmpp.exceptions import IqError
from slixmpp.stanza import Iq

from storage import RosterItem
from tests.support.clients import Client, RawClient, connect
from xmpp_server.jid import JID
from xmpp_server.server import Server

ROSTER = "jabber:iq:roster"
R = "{" + ROSTER + "}"
A, B = "alice@localhost", "bob@localhost"


# -- helpers ----------------------------------------------------------------------------------

class People:
    """Logs users in (auto-approval off) and logs them all out at the end."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.clients: list[Client] = []

    async def login(self, user: str, resource: str = "test", *, roster: bool = True,
                    presence: bool = True, status: str | None = None,
                    priority: int | None = None, plugins: tuple[str, ...] = ()) -> Client:
        client = await connect(self.server, user, resource=resource, plugins=plugins)
        self.clients.append(client)
        client.auto_authorize = None
        client.auto_subscribe = False
        if roster:
            await roster_get(client)
        if presence:
            client.send_presence(pstatus=status, ppriority=priority)
            await sync(client)
        return client

    async def close(self) -> None:
        for client in self.clients:
            await client.close()


@pytest.fixture
async def people(server: Server) -> AsyncIterator[People]:
    crowd = People(server)
    yield crowd
    await crowd.close()


async def befriend(server: Server, *users: str) -> None:
    """Mutual 'both' subscriptions between the users, written straight to storage."""
    assert server.host is not None
    for user in users:
        if not await server.host.accounts.exists(user):
            await server.host.accounts.create(user, "secret")
    for user in users:
        for contact in users:
            if contact != user:
                item = RosterItem(f"{contact}@localhost", subscription="both")
                await server.host.storage.roster.put(user, item)


async def sync(client: Client) -> None:
    """A ping round trip: the server has handled everything the client sent before."""
    iq = client.make_iq_get(ito="localhost")
    iq.enable("ping")
    await client.query(iq)


async def roster_get(client: Client, ver: str | None = None, to: str | None = None) -> Iq:
    iq = client.Iq()
    iq["type"] = "get"
    if to:
        iq["to"] = to
    query = ET.SubElement(iq.xml, R + "query")
    if ver is not None:
        query.set("ver", ver)
    return await client.query(iq)


async def roster_set(client: Client, items_xml: str) -> Iq:
    iq = client.Iq()
    iq["type"] = "set"
    iq.xml.append(ET.fromstring(f"<query xmlns='{ROSTER}'>{items_xml}</query>"))
    return await client.query(iq)


async def error_of(request: Any) -> str:
    with pytest.raises(IqError) as info:
        await request
    return str(info.value.iq["error"]["condition"])


def items(iq: Iq) -> dict[str, dict[str, Any]]:
    """The roster items of a result or push: jid -> attributes (and groups, if any)."""
    found: dict[str, dict[str, Any]] = {}
    for el in iq.xml.iter(R + "item"):
        attrs: dict[str, Any] = dict(el.attrib)
        groups = [g.text for g in el.iter(R + "group")]
        if groups:
            attrs["groups"] = groups
        found[attrs.pop("jid")] = attrs
    return found


async def pushed(client: Client, jid: str, **expected: Any) -> None:
    """Wait for a roster push that shows ``jid`` with exactly these attributes."""
    await client.next("roster_push", lambda iq: iq["type"] == "set"
                      and items(iq).get(jid) == expected)


def presence(frm: str, type_: str = "available") -> Callable[[Any], bool]:
    return lambda p: str(p["from"]) == frm and p["type"] == type_


# -- roster management (§2) -------------------------------------------------------------------

async def test_empty_roster_and_features(people: People) -> None:
    alice = await people.login("alice", presence=False)
    assert {"rosterver", "preapproval"} <= alice.features  # §2.6.1, §3.4
    result = await roster_get(alice)
    assert items(result) == {}
    assert result["roster"]["ver"]


async def test_set_is_pushed_to_interested_resources_only(people: People) -> None:
    one = await people.login("alice", "one", presence=False)
    two = await people.login("alice", "two", presence=False)
    three = await people.login("alice", "three", roster=False, presence=False)
    await roster_set(one, "<item jid='Bob@localhost' name='Bob'><group>Friends</group></item>")
    for client in (one, two):
        await pushed(client, B, subscription="none", name="Bob", groups=["Friends"])
    await three.nothing("roster_push", wait=0.3)
    assert items(await roster_get(three)) == {
        B: {"subscription": "none", "name": "Bob", "groups": ["Friends"]}}
    # slixmpp's own roster calls work too (it echoes subscription='none' in its sets)
    request = one.update_roster(slixmpp.JID("carol@localhost"), name="Carol", groups=["Work"])
    assert request is not None
    await request
    await pushed(two, "carol@localhost", subscription="none", name="Carol", groups=["Work"])


async def test_roster_versioning(people: People) -> None:
    alice = await people.login("alice", presence=False)
    first = await roster_get(alice, ver="")
    v0 = first["roster"]["ver"]
    unchanged = await roster_get(alice, ver=v0)
    assert unchanged.xml.find(R + "query") is None  # §2.6.3: empty result
    await roster_set(alice, "<item jid='bob@localhost'/>")
    push = await alice.next("roster_push", lambda iq: iq["type"] == "set")
    v1 = push["roster"]["ver"]
    assert v1 and v1 != v0
    stale = await roster_get(alice, ver=v0)
    assert stale["roster"]["ver"] == v1 and list(items(stale)) == [B]
    assert (await roster_get(alice, ver=v1)).xml.find(R + "query") is None


async def test_remove_item(people: People) -> None:
    alice = await people.login("alice", presence=False)
    await roster_set(alice, "<item jid='bob@localhost'/>")
    await pushed(alice, B, subscription="none")
    await roster_set(alice, "<item jid='bob@localhost' subscription='remove'/>")
    await pushed(alice, B, subscription="remove")
    assert items(await roster_get(alice)) == {}
    removed_again = roster_set(alice, "<item jid='bob@localhost' subscription='remove'/>")
    assert await error_of(removed_again) == "item-not-found"  # §2.5.3


async def test_invalid_sets_get_errors(people: People) -> None:
    alice = await people.login("alice", presence=False)
    cases = {
        "<item jid='b@localhost'/><item jid='c@localhost'/>": "bad-request",
        "<item jid='b@localhost' subscription='bogus'/>": "bad-request",
        "<item jid='b@localhost'><group>G</group><group>G</group></item>": "bad-request",
        "<item jid='b@@localhost'/>": "jid-malformed",
        f"<item jid='b@localhost' name='{'n' * 2000}'/>": "not-acceptable",
        "<item jid='b@localhost'><group/></item>": "not-acceptable",
        f"<item jid='{A}'/>": "not-allowed",
    }
    for xml, condition in cases.items():
        assert await error_of(roster_set(alice, xml)) == condition, xml
    # §2.1: only one's own roster
    assert await error_of(roster_get(alice, to=B)) == "forbidden"
    assert items(await roster_get(alice)) == {}
    await alice.nothing("roster_push", lambda iq: iq["type"] == "set", wait=0.2)


# -- subscriptions (§3) -----------------------------------------------------------------------

async def test_mutual_subscription_step_by_step(people: People) -> None:
    alice = await people.login("alice")
    bob = await people.login("bob")
    # §3.1.1-§3.1.3: alice asks; she sees none+ask, bob gets the request from her bare JID
    alice.send_presence(pto=B, ptype="subscribe")
    await pushed(alice, B, subscription="none", ask="subscribe")
    request = await bob.next("presence", lambda p: p["type"] == "subscribe")
    assert str(request["from"]) == A
    assert items(await roster_get(bob)) == {}  # a request adds nothing to bob's roster
    # §3.1.4-§3.1.6: bob approves: bob has 'from', alice 'to' and bob's presence at once
    bob.send_presence(pto=A, ptype="subscribed")
    await pushed(bob, A, subscription="from")
    await pushed(alice, B, subscription="to")
    await alice.next("presence", presence(B, "subscribed"))
    await alice.next("presence", presence(B + "/test"))
    await bob.nothing("presence", presence(A + "/test"), wait=0.2)  # no 'to' for bob yet
    # and back the other way: both
    bob.send_presence(pto=A, ptype="subscribe")
    await pushed(bob, A, subscription="from", ask="subscribe")
    await alice.next("presence", presence(B, "subscribe"))
    alice.send_presence(pto=B, ptype="subscribed")
    await pushed(alice, B, subscription="both")
    await pushed(bob, A, subscription="both")
    await bob.next("presence", presence(A + "/test"))
    assert items(await roster_get(alice)) == {B: {"subscription": "both"}}
    assert items(await roster_get(bob)) == {A: {"subscription": "both"}}
    # presence now flows both ways
    alice.send_presence(pstatus="reading")
    update = await bob.next("presence", presence(A + "/test"))
    assert update["status"] == "reading"


async def test_request_waits_for_an_offline_contact(people: People, server: Server) -> None:
    assert server.host is not None
    await server.host.accounts.create("bob", "secret")
    alice = await people.login("alice")
    alice.send_presence(pto=B, ptype="subscribe")
    await pushed(alice, B, subscription="none", ask="subscribe")
    # bob logs in: a connected but not yet available resource gets no request (§3.1.3)
    bob = await people.login("bob", presence=False)
    await bob.nothing("presence", lambda p: p["type"] == "subscribe", wait=0.2)
    bob.send_presence()
    await bob.next("presence", presence(A, "subscribe"))
    # not answered: delivered again at the next login
    await bob.close()
    bob = await people.login("bob")
    await bob.next("presence", presence(A, "subscribe"))
    bob.send_presence(pto=A, ptype="subscribed")
    await pushed(alice, B, subscription="to")
    await bob.close()
    bob = await people.login("bob")  # answered: never again
    await bob.nothing("presence", lambda p: p["type"] == "subscribe", wait=0.2)


async def test_pre_approval_answers_the_request(people: People) -> None:
    alice = await people.login("alice")
    bob = await people.login("bob")
    # §3.4: bob approves alice before she asks; nothing is sent to her
    bob.send_presence(pto=A, ptype="subscribed")
    await pushed(bob, A, subscription="none", approved="true")
    await alice.nothing("presence", lambda p: p["type"] == "subscribed", wait=0.2)
    alice.send_presence(pto=B, ptype="subscribe")
    await alice.next("presence", presence(B, "subscribed"))
    await pushed(alice, B, subscription="to")
    await alice.next("presence", presence(B + "/test"))
    await pushed(bob, A, subscription="from")
    await bob.nothing("presence", lambda p: p["type"] == "subscribe", wait=0.2)


async def test_unsubscribe_and_cancel(people: People, server: Server) -> None:
    await befriend(server, "alice", "bob")
    alice = await people.login("alice")
    bob = await people.login("bob")
    await alice.next("presence", presence(B + "/test"))
    await bob.next("presence", presence(A + "/test"))
    # §3.3: alice unsubscribes from bob; bob's server says bob is gone for her
    alice.send_presence(pto=B, ptype="unsubscribe")
    await pushed(alice, B, subscription="from")
    await pushed(bob, A, subscription="to")
    await bob.next("presence", presence(A, "unsubscribe"))
    await alice.next("presence", presence(B + "/test", "unavailable"))
    # §3.2: alice cancels bob's subscription to her; he sees her go
    alice.send_presence(pto=B, ptype="unsubscribed")
    await pushed(alice, B, subscription="none")
    await pushed(bob, A, subscription="none")
    await bob.next("presence", presence(A, "unsubscribed"))
    await bob.next("presence", presence(A + "/test", "unavailable"))
    alice.send_presence(pstatus="anyone?")
    bob.send_presence(pstatus="anyone?")
    await bob.nothing("presence", presence(A + "/test"), wait=0.2)
    await alice.nothing("presence", presence(B + "/test"), wait=0.2)


async def test_removing_a_contact_cancels_both_ways(people: People, server: Server) -> None:
    await befriend(server, "alice", "bob")
    alice = await people.login("alice")
    bob = await people.login("bob")
    await alice.next("presence", presence(B + "/test"))
    await roster_set(alice, f"<item jid='{B}' subscription='remove'/>")
    await pushed(alice, B, subscription="remove")
    # §2.5.2: unsubscribe and unsubscribed went to bob
    await pushed(bob, A, subscription="none")
    await bob.next("presence", presence(A + "/test", "unavailable"))
    await alice.next("presence", presence(B + "/test", "unavailable"))


async def test_removed_account_cancels_its_subscriptions(people: People,
                                                         server: Server) -> None:
    await befriend(server, "alice", "bob")
    bob = await people.login("bob")
    alice = await people.login("alice", plugins=("xep_0004", "xep_0066", "xep_0077"))
    await bob.next("presence", presence(A + "/test"))
    await alice.plugin["xep_0077"].cancel_registration()  # XEP-0077 §3.2
    await pushed(bob, A, subscription="none")
    await bob.next("presence", presence(A + "/test", "unavailable"))


# -- presence (§4) ----------------------------------------------------------------------------

async def test_login_broadcasts_and_probes(people: People, server: Server) -> None:
    await befriend(server, "alice", "bob")
    bob = await people.login("bob", status="here")
    stranger = await people.login("carol")
    alice = await people.login("alice")
    # §4.3: alice's probe is answered with bob's last presence
    answer = await alice.next("presence", presence(B + "/test"))
    assert answer["status"] == "here"
    # §4.2.2: bob, a subscriber, hears of alice; a stranger does not
    await bob.next("presence", presence(A + "/test"))
    await stranger.nothing("presence", presence(A + "/test"), wait=0.2)
    # §4.2.2: alice's other resources hear of the new one
    second = await people.login("alice", "second")
    await alice.next("presence", presence(A + "/second"))
    await second.next("presence", presence(B + "/test"))


async def test_directed_presence_and_the_unavailable_after(people: People) -> None:
    alice = await people.login("alice")
    carol = await people.login("carol")
    dave = await people.login("dave")
    # §4.6: to a bare JID (every available resource) and to a full JID
    alice.send_presence(pto="carol@localhost", pstatus="hi carol")
    assert (await carol.next("presence", presence(A + "/test")))["status"] == "hi carol"
    alice.send_presence(pto="dave@localhost/test")
    await dave.next("presence", presence(A + "/test"))
    # §4.6: directed unavailable ends it for dave; the disconnect tells carol
    alice.send_presence(pto="dave@localhost", ptype="unavailable")
    await dave.next("presence", presence(A + "/test", "unavailable"))
    await alice.close()
    await carol.next("presence", presence(A + "/test", "unavailable"))
    await dave.nothing("presence", presence(A + "/test", "unavailable"), wait=0.2)


async def test_unavailable_when_sent_and_on_clean_close(people: People, server: Server) -> None:
    await befriend(server, "alice", "bob")
    bob = await people.login("bob")
    alice = await people.login("alice")
    other = await people.login("alice", "other")
    await bob.next("presence", presence(A + "/other"))
    # §4.5: explicit unavailable to subscribers and the user's other resources
    other.send_presence(ptype="unavailable", pstatus="brb")
    gone = await bob.next("presence", presence(A + "/other", "unavailable"))
    assert gone["status"] == "brb"
    await alice.next("presence", presence(A + "/other", "unavailable"))
    # §4.5.2: closing the stream without unavailable presence: the server sends it
    await alice.close()
    await bob.next("presence", presence(A + "/test", "unavailable"))
    await other.close()  # was already unavailable: nothing more
    await bob.nothing("presence", presence(A + "/other", "unavailable"), wait=0.2)


async def test_unavailable_on_tcp_reset(people: People, server: Server) -> None:
    await befriend(server, "alice", "bob")
    bob = await people.login("bob")
    alice = await people.login("alice")
    await bob.next("presence", presence(A + "/test"))
    transport = alice.transport
    assert transport is not None
    sock = transport.get_extra_info("socket")
    # SO_LINGER 0: closing sends a TCP RST instead of a FIN
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    await bob.next("presence", presence(A + "/test", "unavailable"))


async def test_unavailable_on_network_silence(servers: Any) -> None:
    """A client that stops answering (XEP-0199 server pings) is taken offline."""
    server = await servers.start(c2s={"require_tls": False, "ping_interval": 1,
                                      "ping_timeout": 1})
    await befriend(server, "alice", "bob")
    crowd = People(server)
    raw = await RawClient.open(server)
    try:
        bob = await crowd.login("bob")
        await raw.send(raw.header())
        await raw.expect(b"</stream:features>")
        token = base64.b64encode(b"\0alice\0secret").decode()
        await raw.send(f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"
                       f"{token}</auth>".encode())
        await raw.expect(b"<success")
        raw.buffer = b""
        await raw.send(raw.header())
        await raw.expect(b"</stream:features>")
        await raw.send(b"<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                       b"<resource>silent</resource></bind></iq>")
        await raw.expect(b"alice@localhost/silent</jid>")
        await raw.send(b"<presence/>")
        await bob.next("presence", presence(A + "/silent"))
        # from now on the client reads and writes nothing, and keeps the socket open
        await bob.next("presence", presence(A + "/silent", "unavailable"), timeout=8)
    finally:
        await raw.close()
        await crowd.close()


async def test_priority(people: People, server: Server) -> None:
    assert server.host is not None
    await befriend(server, "alice", "bob")
    bob = await people.login("bob")
    alice = await people.login("alice", priority=5)
    assert (await bob.next("presence", presence(A + "/test")))["priority"] == 5
    session = server.host.sessions.get(JID.parse(A + "/test"))
    assert session is not None and session.priority == 5
    # §4.7.2.3: -128..127 only; a bad one is refused and changes nothing
    for bad in ("128", "high"):
        pres = alice.Presence()
        ET.SubElement(pres.xml, "{jabber:client}priority").text = bad
        pres.send()
        error = await alice.next("presence", lambda p: p["type"] == "error")
        assert error["error"]["condition"] == "bad-request"
    assert session.priority == 5
    await bob.nothing("presence", presence(A + "/test"), wait=0.2)
    alice.send_presence(ppriority=-1)
    assert (await bob.next("presence", presence(A + "/test")))["priority"] == -1
    assert session.priority == -1
