"""XEP-0030 service discovery of the server and of accounts; XEP-0115 caps of the server."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Awaitable

import pytest
from lxml import etree
from slixmpp import JID
from slixmpp.exceptions import IqError

from storage import RosterItem
from tests.support.clients import RawClient, connect
from tests.support.server import ServerFactory
from xmpp_server.modules.disco import caps_ver
from xmpp_server.server import Server

MODULES = ["disco", "ping", "version", "time", "last", "register"]
PLUGINS = ("xep_0030",)
INFO = "http://jabber.org/protocol/disco#info"
CAPS_NODE = "https://xmppd.invalid/caps"


@pytest.fixture
async def server(servers: ServerFactory) -> Server:
    # Plain TCP allowed, so that a raw client can read the stream features.
    return await servers.start(modules={"enabled": MODULES}, c2s={"require_tls": False})


async def _error(future: Awaitable[object]) -> str:
    with pytest.raises(IqError) as info:
        await future
    return str(info.value.iq["error"]["condition"])


def _ver(info: etree._Element) -> str:
    """XEP-0115 §5.1, written out again from the spec: the sha-1 verification string."""
    identities = sorted(
        (i.get("category", ""), i.get("type", ""),
         i.get("{http://www.w3.org/XML/1998/namespace}lang", ""), i.get("name", ""))
        for i in info.iter(f"{{{INFO}}}identity")
    )
    features = sorted(f.get("var", "") for f in info.iter(f"{{{INFO}}}feature"))
    assert not info.findall("{jabber:x:data}x")  # the server has no extended info forms
    s = "".join("/".join(identity) + "<" for identity in identities)
    s += "".join(feature + "<" for feature in features)
    return base64.b64encode(hashlib.sha1(s.encode("utf-8")).digest()).decode()


def test_caps_ver_of_the_xep_examples():
    """XEP-0115 §5.2 and §5.3: the server's hash function on the spec's own examples."""
    features = ["http://jabber.org/protocol/caps", INFO, "http://jabber.org/protocol/disco#items",
                "http://jabber.org/protocol/muc"]
    simple = caps_ver([("client", "pc", None, "Exodus 0.9.1")], features)
    assert simple == "QgayPKawpkPSDYmwT/WM94uAlu0="
    form = {"FORM_TYPE": ["urn:xmpp:dataforms:softwareinfo"], "ip_version": ["ipv6", "ipv4"],
            "os": ["Mac"], "os_version": ["10.5.1"], "software": ["Psi"],
            "software_version": ["0.11"]}
    identities = [("client", "pc", "en", "Psi 0.11"), ("client", "pc", "el", "Ψ 0.11")]
    assert caps_ver(identities, features, [form]) == "q07IKJEyjvHSyhy//CH0CxmKi8w="


async def test_server_info_and_items(server):
    alice = await connect(server, "alice", plugins=PLUGINS)
    try:
        info = (await alice.plugin["xep_0030"].get_info(jid=JID("localhost")))["disco_info"]
        assert info["identities"] == {("server", "im", None, "xmppd")}
        features = set(info["features"])
        expected = {INFO, "http://jabber.org/protocol/disco#items", "urn:xmpp:ping",
                    "jabber:iq:version", "urn:xmpp:time", "jabber:iq:last", "jabber:iq:register"}
        assert features == expected
        items = (await alice.plugin["xep_0030"].get_items(jid=JID("localhost")))["disco_items"]
        assert items["items"] == set()  # no services configured
        # a node nobody serves
        info_node = alice.plugin["xep_0030"].get_info(jid=JID("localhost"), node="urn:example:x")
        assert await _error(info_node) == "item-not-found"
        items_node = alice.plugin["xep_0030"].get_items(jid=JID("localhost"), node="urn:example:x")
        assert await _error(items_node) == "item-not-found"
    finally:
        await alice.close()


async def test_modules_add_server_items(server):
    # A service (MUC, upload...) lists itself by extending the reply of "disco-items/host".
    def muc(reply):
        reply.item("conference.localhost", "Chatrooms")

    server.host.events.on("disco-items/host", muc)
    alice = await connect(server, "alice", plugins=PLUGINS)
    try:
        items = (await alice.plugin["xep_0030"].get_items(jid=JID("localhost")))["disco_items"]
        assert items["items"] == {("conference.localhost", None, "Chatrooms")}
    finally:
        await alice.close()


async def test_caps_in_stream_features_match_disco_info(server):
    raw = await RawClient.open(server)
    try:
        await raw.send(raw.header())
        data = await raw.expect(b"</stream:features>")
    finally:
        await raw.close()
    match = re.search(rb"<c [^>]*xmlns=\"http://jabber.org/protocol/caps\"[^>]*/>", data)
    assert match, data
    caps = etree.fromstring(match.group(0))
    assert caps.get("hash") == "sha-1"
    assert caps.get("node") == CAPS_NODE
    ver = caps.get("ver")

    alice = await connect(server, "alice", plugins=PLUGINS)
    try:
        plain = await alice.plugin["xep_0030"].get_info(jid=JID("localhost"))
        info = plain.xml.find(f"{{{INFO}}}query")
        assert _ver(info) == ver
        # XEP-0115 §6.2: the caps node answers the same information, naming the node
        node = f"{CAPS_NODE}#{ver}"
        by_node = await alice.plugin["xep_0030"].get_info(jid=JID("localhost"), node=node)
        query = by_node.xml.find(f"{{{INFO}}}query")
        assert query is not None and query.get("node") == node
        assert _ver(query) == ver
        stale = alice.plugin["xep_0030"].get_info(jid=JID("localhost"), node=f"{CAPS_NODE}#AAAA")
        assert await _error(stale) == "item-not-found"
    finally:
        await alice.close()


async def test_account_info_only_for_the_user_and_subscribers(server):
    accounts = server.host.accounts
    for user in ("alice", "bob", "carol"):
        await accounts.create(user, "secret")
    # bob is subscribed to alice's presence ('from' on alice's roster)
    await server.host.storage.roster.put("alice", RosterItem("bob@localhost", subscription="from"))
    await server.host.storage.roster.put("bob", RosterItem("alice@localhost", subscription="to"))
    alice = await connect(server, "alice", plugins=PLUGINS)
    bob = await connect(server, "bob", plugins=PLUGINS)
    carol = await connect(server, "carol", plugins=PLUGINS)
    disco = {c: c.plugin["xep_0030"] for c in (alice, bob, carol)}
    try:
        for client, jid in ((alice, None), (alice, JID("alice@localhost")),
                            (bob, JID("alice@localhost"))):
            # local=False: slixmpp would otherwise answer a query without 'to' itself
            info = (await disco[client].get_info(jid=jid, local=False))["disco_info"]
            assert info["identities"] == {("account", "registered", None, None)}
            items = (await disco[client].get_items(jid=jid, local=False))["disco_items"]
            assert items["items"] == set()
        # not subscribed, or no such user: as if there were nothing (Prosody's rule)
        for client, to in ((carol, "alice@localhost"), (alice, "bob@localhost"),
                           (carol, "nobody@localhost")):
            jid = JID(to)
            assert await _error(disco[client].get_info(jid=jid)) == "service-unavailable"
            assert await _error(disco[client].get_items(jid=jid)) == "service-unavailable"
        unknown_node = disco[alice].get_info(jid=JID("alice@localhost"), node="urn:example:x")
        assert await _error(unknown_node) == "item-not-found"
    finally:
        for client in (alice, bob, carol):
            await client.close()
