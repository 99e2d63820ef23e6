"""XEP-0163 PEP on the XEP-0060 subset: publish, notifications filtered by caps, access
models, retract, last item at login, publish-options, XEP-0172 nicknames, disco.

The helpers at the top are shared by the other profile scenarios (vCard, avatars, bookmarks).
"""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from typing import Any, Literal

import pytest
from lxml import etree
from slixmpp.exceptions import IqError
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from storage import RosterItem
from tests.support.clients import Client, connect
from tests.support.server import ServerFactory
from xmpp_server.jid import JID as ServerJID
from xmpp_server.modules.disco import caps_ver
from xmpp_server.server import Server
from xmpp_server.stanza import Stanza, element, sub

# The core features and the profile ones, not the whole default list: these scenarios stay
# independent of features unrelated to them.
MODULES = ["disco", "register", "roster", "presence", "messages", "offline",
           "vcard", "pep", "avatars", "private", "bookmarks"]
PUBSUB = "http://jabber.org/protocol/pubsub"
EVENT = PUBSUB + "#event"
ERRORS = PUBSUB + "#errors"
DISCO_INFO = "http://jabber.org/protocol/disco#info"
DISCO_ITEMS = "http://jabber.org/protocol/disco#items"
NICK = "http://jabber.org/protocol/nick"
TUNE = "http://jabber.org/protocol/tune"
PLUGINS = ("xep_0030", "xep_0115")


# -- helpers shared by the profile scenarios --------------------------------------------------

async def start(servers: ServerFactory, modules: Iterable[str] = MODULES,
                **sections: dict[str, Any]) -> Server:
    return await servers.start("localhost", modules={"enabled": list(modules)}, **sections)


async def befriend(server: Server, a: str, b: str, subscription: str = "both") -> None:
    """Put ``b`` on ``a``'s roster with ``subscription`` (and the mirror state on ``b``'s)."""
    mirror = {"both": "both", "from": "to", "to": "from", "none": "none"}[subscription]
    host = server.host
    assert host is not None
    for user in (a, b):
        if not await host.accounts.exists(user):
            await host.accounts.create(user, "secret")
    await host.storage.roster.put(a, RosterItem(f"{b}@localhost", subscription=subscription))
    await host.storage.roster.put(b, RosterItem(f"{a}@localhost", subscription=mirror))


def watch_events(client: Client) -> None:
    """Collect every pubsub event message in ``client.queues["pep"]`` (raw XML)."""
    queue: asyncio.Queue[Any] = asyncio.Queue()
    client.queues["pep"] = queue
    client.register_handler(Callback(
        "pep events", MatchXPath(f"{{jabber:client}}message/{{{EVENT}}}event"),
        lambda msg: queue.put_nowait(msg.xml)))


async def online(server: Server, user: str, wants: Iterable[str] = (), *,
                 resource: str = "test", presence: bool = True) -> Client:
    """A client whose caps list ``<node>+notify`` for ``wants``, available once it returns."""
    client = await connect(server, user, resource=resource, plugins=PLUGINS)
    watch_events(client)
    for node in wants:
        client.plugin["xep_0030"].add_feature(node + "+notify")
    await client.plugin["xep_0115"].update_caps(broadcast=False)
    if presence:
        await available(client)
    return client


async def available(client: Client) -> None:
    client.send_presence()
    # the server reflects initial presence to the sender once it has handled it
    await client.next("presence", lambda p: p["from"] == client.boundjid)


async def iq(client: Client, type_: Literal["get", "set"], payload: str,
             to: str | None = None) -> ET.Element:
    stanza = client.make_iq(itype=type_, ito=to)
    stanza.append(ET.fromstring(payload))
    result = await stanza.send(timeout=10)
    return result.xml


async def iq_error(client: Client, type_: Literal["get", "set"], payload: str,
                   to: str | None = None) -> tuple[str, str | None]:
    """The condition and the pubsub#errors condition (if any) of an IQ that must fail."""
    with pytest.raises(IqError) as info:
        await iq(client, type_, payload, to)
    error = info.value.iq.xml.find("{jabber:client}error")
    assert error is not None
    app = error.find(f"{{{ERRORS}}}*")
    return str(info.value.iq["error"]["condition"]), None if app is None else app.tag.split("}")[1]


def publish_xml(node: str, payload: str, item_id: str | None = None,
                options: dict[str, str] | None = None) -> str:
    item = f"<item id='{item_id}'>" if item_id else "<item>"
    xml = f"<pubsub xmlns='{PUBSUB}'><publish node='{node}'>{item}{payload}</item></publish>"
    if options:
        fields = "".join(f"<field var='{k}'><value>{v}</value></field>" for k, v in options.items())
        xml += (f"<publish-options><x xmlns='jabber:x:data' type='submit'>"
                f"<field var='FORM_TYPE' type='hidden'><value>{PUBSUB}#publish-options</value>"
                f"</field>{fields}</x></publish-options>")
    return xml + "</pubsub>"


async def publish(client: Client, node: str, payload: str, item_id: str | None = None,
                  options: dict[str, str] | None = None, to: str | None = None) -> str:
    result = await iq(client, "set", publish_xml(node, payload, item_id, options), to)
    item = result.find(f"{{{PUBSUB}}}pubsub/{{{PUBSUB}}}publish/{{{PUBSUB}}}item")
    assert item is not None
    return item.get("id", "")


async def items(client: Client, owner: str | None, node: str, extra: str = "") -> list[ET.Element]:
    result = await iq(client, "get", f"<pubsub xmlns='{PUBSUB}'><items node='{node}' {extra}/>"
                                     "</pubsub>", owner)
    return result.findall(f"{{{PUBSUB}}}pubsub/{{{PUBSUB}}}items/{{{PUBSUB}}}item")


async def next_event(client: Client, node: str, timeout: float = 5.0) -> ET.Element:
    """The ``<items/>`` (or other child) of the next event about ``node``."""
    msg = await client.next("pep", lambda m: _event_child(m, node) is not None, timeout)
    child = _event_child(msg, node)
    assert child is not None
    return child


def _event_child(msg: ET.Element, node: str) -> ET.Element | None:
    event = msg.find(f"{{{EVENT}}}event")
    children = event if event is not None else ()
    return next((c for c in children if c.get("node") == node), None)


async def close(*clients: Client) -> None:
    await asyncio.gather(*(c.close() for c in clients))


async def account_features(client: Client, jid: str | None = None) -> set[str]:
    info = await iq(client, "get", f"<query xmlns='{DISCO_INFO}'/>", jid)
    return {f.get("var", "") for f in info.iter(f"{{{DISCO_INFO}}}feature")}


# -- the scenarios ----------------------------------------------------------------------------

@pytest.fixture
async def server(servers: ServerFactory) -> Server:
    return await start(servers)


NICK_ALICE = f"<nick xmlns='{NICK}'>Alice</nick>"


async def test_publish_notifies_contacts_that_want_the_node(server):
    await befriend(server, "alice", "bob")
    await befriend(server, "alice", "carol")
    await server.host.accounts.create("dave", "secret")
    alice = await online(server, "alice")
    alice2 = await online(server, "alice", [NICK], resource="other")
    bob = await online(server, "bob", [NICK])  # a contact who wants nicknames
    carol = await online(server, "carol", [TUNE])  # a contact who does not
    dave = await online(server, "dave", [NICK])  # wants them, but no contact
    try:
        assert await publish(alice, NICK, NICK_ALICE, "current") == "current"
        for client in (bob, alice2):
            items_el = await next_event(client, NICK)
            item = items_el.find(f"{{{EVENT}}}item")
            assert item is not None and item.get("id") == "current"
            assert item.findtext(f"{{{NICK}}}nick") == "Alice"
        await asyncio.gather(carol.nothing("pep"), dave.nothing("pep"), alice.nothing("pep"),
                             bob.nothing("pep"))
    finally:
        await close(alice, alice2, bob, carol, dave)


async def test_notification_comes_from_the_bare_jid_as_headline(server):
    await befriend(server, "alice", "bob")
    alice = await online(server, "alice")
    bob = await online(server, "bob", [TUNE])
    try:
        await publish(alice, TUNE, f"<tune xmlns='{TUNE}'><title>Song</title></tune>")
        msg = await bob.next("pep")
        assert (msg.get("from"), msg.get("type")) == ("alice@localhost", "headline")
        assert msg.get("to") == str(bob.boundjid)
    finally:
        await close(alice, bob)


async def test_access_models_for_retrieval(server):
    await befriend(server, "alice", "bob")
    await server.host.accounts.create("dave", "secret")
    alice, bob, dave = [await online(server, u, presence=False) for u in ("alice", "bob", "dave")]
    try:
        await publish(alice, "urn:example:presence", "<p xmlns='urn:example'/>")
        await publish(alice, "urn:example:open", "<o xmlns='urn:example'/>",
                      options={"pubsub#access_model": "open"})
        await publish(alice, "urn:example:white", "<w xmlns='urn:example'/>",
                      options={"pubsub#access_model": "whitelist"})
        owner = "alice@localhost"
        for node in ("urn:example:presence", "urn:example:open", "urn:example:white"):
            assert len(await items(alice, None, node)) == 1  # the owner sees everything
        assert len(await items(bob, owner, "urn:example:presence")) == 1
        assert len(await items(bob, owner, "urn:example:open")) == 1
        assert len(await items(dave, owner, "urn:example:open")) == 1
        get = f"<pubsub xmlns='{PUBSUB}'><items node='%s'/></pubsub>"
        assert await iq_error(dave, "get", get % "urn:example:presence", owner) == (
            "not-authorized", "presence-subscription-required")
        assert await iq_error(bob, "get", get % "urn:example:white", owner) == (
            "not-allowed", "closed-node")
        assert await iq_error(bob, "get", get % "urn:example:none", owner) == (
            "item-not-found", None)
        # only the owner publishes to its service
        assert await iq_error(bob, "set", publish_xml("urn:example:open", "<x xmlns='u'/>"),
                              owner) == ("forbidden", None)
        # a whitelisted member may retrieve
        await iq(alice, "set", f"<pubsub xmlns='{PUBSUB}#owner'><affiliations "
                               f"node='urn:example:white'><affiliation jid='bob@localhost' "
                               f"affiliation='member'/></affiliations></pubsub>")
        assert len(await items(bob, owner, "urn:example:white")) == 1
    finally:
        await close(alice, bob, dave)


async def test_whitelist_nodes_notify_only_the_owner(server):
    """XEP-0223: private storage reaches the owner's resources, not the contacts."""
    await befriend(server, "alice", "bob")
    alice = await online(server, "alice", ["urn:example:private"])
    bob = await online(server, "bob", ["urn:example:private"])
    try:
        await publish(alice, "urn:example:private", "<secret xmlns='urn:example'/>",
                      options={"pubsub#access_model": "whitelist",
                               "pubsub#persist_items": "true"})
        await next_event(alice, "urn:example:private")
        await bob.nothing("pep")
    finally:
        await close(alice, bob)


async def test_retract_notifies_and_removes(server):
    await befriend(server, "alice", "bob")
    alice = await online(server, "alice")
    bob = await online(server, "bob", [TUNE])
    try:
        await publish(alice, TUNE, f"<tune xmlns='{TUNE}'/>", "t1")
        await next_event(bob, TUNE)
        await iq(alice, "set", f"<pubsub xmlns='{PUBSUB}'><retract node='{TUNE}' notify='true'>"
                               "<item id='t1'/></retract></pubsub>")
        retract = (await next_event(bob, TUNE)).find(f"{{{EVENT}}}retract")
        assert retract is not None and retract.get("id") == "t1"
        assert await items(alice, None, TUNE) == []
        again = f"<pubsub xmlns='{PUBSUB}'><retract node='{TUNE}'><item id='t1'/></retract>" \
                "</pubsub>"
        assert await iq_error(alice, "set", again) == ("item-not-found", None)
    finally:
        await close(alice, bob)


async def test_last_item_when_a_contact_comes_online(server):
    await befriend(server, "alice", "bob")
    alice = await online(server, "alice", presence=False)
    try:
        await publish(alice, NICK, f"<nick xmlns='{NICK}'>Old</nick>", "current")
        await publish(alice, NICK, NICK_ALICE, "current")
        bob = await online(server, "bob", [NICK])
        try:
            msg = await bob.next("pep")
            item = msg.find(f"{{{EVENT}}}event/{{{EVENT}}}items/{{{EVENT}}}item")
            assert item is not None and item.findtext(f"{{{NICK}}}nick") == "Alice"
            assert msg.find("{urn:xmpp:delay}delay") is not None
            # presence again with the same caps: nothing new
            bob.send_presence(pstatus="busy")
            await bob.nothing("pep")
        finally:
            await bob.close()
    finally:
        await alice.close()


async def test_items_max_and_by_id_and_max_items_config(server):
    alice = await online(server, "alice", presence=False)
    try:
        node, options = "urn:example:log", {"pubsub#max_items": "3"}
        for n in range(5):
            await publish(alice, node, f"<e xmlns='urn:example'>{n}</e>", f"i{n}", options)
        assert [i.get("id") for i in await items(alice, None, node)] == ["i2", "i3", "i4"]
        assert [i.get("id") for i in await items(alice, None, node, "max_items='2'")] == [
            "i3", "i4"]
        by_id = await iq(alice, "get", f"<pubsub xmlns='{PUBSUB}'><items node='{node}'>"
                                       "<item id='i3'/></items></pubsub>")
        found = by_id.findall(f".//{{{PUBSUB}}}item")
        assert [i.get("id") for i in found] == ["i3"]
        # republishing an id replaces it and makes it the newest
        await publish(alice, node, "<e xmlns='urn:example'>again</e>", "i2", options)
        assert [i.get("id") for i in await items(alice, None, node)] == ["i3", "i4", "i2"]
        # a generated id when none is given
        assert await publish(alice, node, "<e xmlns='urn:example'/>", None, options)
    finally:
        await alice.close()


async def test_publish_options_preconditions_and_configure(server):
    alice = await online(server, "alice", presence=False)
    try:
        node = "urn:example:store"
        await publish(alice, node, "<s xmlns='urn:example'/>", "a",
                      {"pubsub#access_model": "whitelist", "pubsub#max_items": "max"})
        conflict = publish_xml(node, "<s xmlns='urn:example'/>", "b",
                               {"pubsub#access_model": "open"})
        assert await iq_error(alice, "set", conflict) == ("conflict", "precondition-not-met")
        config = await iq(alice, "get", f"<pubsub xmlns='{PUBSUB}#owner'><configure "
                                        f"node='{node}'/></pubsub>")
        values = {f.get("var"): f.findtext("{jabber:x:data}value")
                  for f in config.iter("{jabber:x:data}field")}
        assert values["pubsub#access_model"] == "whitelist"
        assert values["pubsub#max_items"] == "max"
        await iq(alice, "set", f"<pubsub xmlns='{PUBSUB}#owner'><configure node='{node}'>"
                               "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'>"
                               f"<value>{PUBSUB}#node_config</value></field>"
                               "<field var='pubsub#access_model'><value>open</value></field>"
                               "</x></configure></pubsub>")
        await publish(alice, node, "<s xmlns='urn:example'/>", "b",
                      {"pubsub#access_model": "open"})
        bad = publish_xml(node, "<s xmlns='urn:example'/>", "c",
                          {"pubsub#access_model": "roster"})
        assert (await iq_error(alice, "set", bad))[0] == "not-acceptable"
        # delete the node
        await iq(alice, "set", f"<pubsub xmlns='{PUBSUB}#owner'><delete node='{node}'/>"
                               "</pubsub>")
        assert (await iq_error(alice, "get", f"<pubsub xmlns='{PUBSUB}'><items node='{node}'/>"
                                             "</pubsub>"))[0] == "item-not-found"
    finally:
        await alice.close()


async def test_item_size_and_payload_checks(servers):
    server = await start(servers, limits={"max_pep_item_bytes": 200})
    alice = await online(server, "alice", presence=False)
    try:
        big = publish_xml("urn:example:big", f"<b xmlns='urn:example'>{'x' * 300}</b>")
        assert await iq_error(alice, "set", big) == ("not-acceptable", "payload-too-big")
        empty = f"<pubsub xmlns='{PUBSUB}'><publish node='n'><item id='a'/></publish></pubsub>"
        assert await iq_error(alice, "set", empty) == ("bad-request", "payload-required")
        nonode = f"<pubsub xmlns='{PUBSUB}'><publish><item><a xmlns='u'/></item></publish>" \
                 "</pubsub>"
        assert await iq_error(alice, "set", nonode) == ("bad-request", "nodeid-required")
        subscribe = f"<pubsub xmlns='{PUBSUB}'><subscribe node='n' jid='alice@localhost'/>" \
                    "</pubsub>"
        assert await iq_error(alice, "set", subscribe) == ("feature-not-implemented",
                                                           "unsupported")
    finally:
        await alice.close()


async def test_nickname_xep_0172(server):
    """XEP-0172: a nickname is a presence-access PEP node; slixmpp's plugin reads it."""
    await befriend(server, "alice", "bob")
    alice = await connect(server, "alice", plugins=(*PLUGINS, "xep_0163", "xep_0172"))
    bob = await connect(server, "bob", plugins=(*PLUGINS, "xep_0163", "xep_0172"))
    nicks: asyncio.Queue[str] = asyncio.Queue()
    bob.add_event_handler("user_nick_publish", lambda msg: nicks.put_nowait(
        msg["pubsub_event"]["items"]["item"]["nick"]["nick"]))
    try:
        await bob.plugin["xep_0115"].update_caps(broadcast=False)
        await available(bob)
        await alice.plugin["xep_0172"].publish_nick("Wonderland")
        async with asyncio.timeout(5):
            assert await nicks.get() == "Wonderland"
    finally:
        await close(alice, bob)


async def test_account_disco_lists_service_and_visible_nodes(server):
    await befriend(server, "alice", "bob", "from")
    alice = await online(server, "alice", presence=False)
    bob = await online(server, "bob", presence=False)
    try:
        await publish(alice, NICK, NICK_ALICE)
        await publish(alice, "urn:example:white", "<w xmlns='urn:example'/>",
                      options={"pubsub#access_model": "whitelist"})
        info = await iq(alice, "get", f"<query xmlns='{DISCO_INFO}'/>", "alice@localhost")
        identities = {(i.get("category"), i.get("type"))
                      for i in info.iter(f"{{{DISCO_INFO}}}identity")}
        assert ("pubsub", "pep") in identities
        features = await account_features(bob, "alice@localhost")
        assert {PUBSUB + "#publish", PUBSUB + "#publish-options", PUBSUB + "#access-whitelist",
                PUBSUB + "#config-node-max"} <= features

        def nodes(result: ET.Element) -> set[str]:
            return {i.get("node", "") for i in result.iter(f"{{{DISCO_ITEMS}}}item")}

        mine = await iq(alice, "get", f"<query xmlns='{DISCO_ITEMS}'/>", "alice@localhost")
        assert nodes(mine) == {NICK, "urn:example:white"}
        theirs = await iq(bob, "get", f"<query xmlns='{DISCO_ITEMS}'/>", "alice@localhost")
        assert nodes(theirs) == {NICK}
    finally:
        await close(alice, bob)


async def test_pep_absent_when_disabled(servers):
    server = await start(servers, [m for m in MODULES if m not in ("pep", "avatars",
                                                                     "bookmarks")])
    alice = await online(server, "alice", presence=False)
    try:
        info = await iq(alice, "get", f"<query xmlns='{DISCO_INFO}'/>", "alice@localhost")
        assert not [i for i in info.iter(f"{{{DISCO_INFO}}}identity")
                    if i.get("category") == "pubsub"]
        assert not {f for f in await account_features(alice, "alice@localhost")
                    if f.startswith(PUBSUB)}
        get = f"<pubsub xmlns='{PUBSUB}'><items node='{NICK}'/></pubsub>"
        assert (await iq_error(alice, "get", get))[0] == "service-unavailable"
    finally:
        await alice.close()


async def test_remote_contacts_are_known_from_their_presence(server):
    """A contact on another server: its resources and caps come from the presence it sends
    (federation is simulated by answering what the server routes to the remote domain)."""
    await server.host.accounts.create("alice", "secret")
    eve_item = RosterItem("eve@remote.test", subscription="both")
    await server.host.storage.roster.put("alice", eve_item)
    features = [DISCO_INFO, NICK + "+notify"]
    ver = caps_ver([("client", "phone", None, "Eve")], features)
    got: asyncio.Queue[etree._Element] = asyncio.Queue()

    async def remote(stanza: Stanza) -> bool:
        if stanza.kind == "iq" and stanza.type == "get":  # the caps query: answer it
            reply = element("iq", type="result", id=stanza.id, from_=str(stanza.to),
                            to="localhost")
            query = sub(reply, f"{{{DISCO_INFO}}}query", node=f"urn:eve#{ver}")
            sub(query, "identity", category="client", type="phone", name="Eve")
            for var in features:
                sub(query, "feature", var=var)
            await server.host.router.route(Stanza(reply, "iq", stanza.to,
                                                  ServerJID.parse("localhost")))
        elif stanza.kind == "message":
            got.put_nowait(stanza.el)
        return True

    server.host.events.on("route/remote", remote)
    eve = ServerJID.parse("eve@remote.test/phone")

    async def presence_from_eve(type_: str | None = None) -> None:
        el = element("presence", from_=str(eve), to="alice@localhost", type=type_)
        sub(el, "{http://jabber.org/protocol/caps}c", hash="sha-1", node="urn:eve", ver=ver)
        await server.host.router.route(Stanza(el, "presence", eve,
                                              ServerJID.parse("alice@localhost")))

    alice = await online(server, "alice", [NICK])
    try:
        await publish(alice, NICK, NICK_ALICE, "current")
        await next_event(alice, NICK)  # the notifications of this publish are out
        await presence_from_eve()
        async with asyncio.timeout(5):
            last = await got.get()  # the last item, as eve comes online
        assert last.get("to") == str(eve)
        assert last.find(f".//{{{NICK}}}nick") is not None
        await publish(alice, NICK, f"<nick xmlns='{NICK}'>New</nick>", "current")
        async with asyncio.timeout(5):
            assert (await got.get()).findtext(f".//{{{NICK}}}nick") == "New"
        await presence_from_eve("unavailable")
        await publish(alice, NICK, f"<nick xmlns='{NICK}'>Newer</nick>", "current")
        await next_event(alice, NICK)
        await next_event(alice, NICK)
        assert got.empty(), etree.tostring(got.get_nowait())
    finally:
        await alice.close()
