"""XEP-0049 private XML storage; XEP-0402 bookmarks and the #compat bridges to XEP-0048."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from tests.scenarios.test_pep import (
    MODULES,
    PLUGINS,
    PUBSUB,
    account_features,
    close,
    iq,
    iq_error,
    items,
    next_event,
    online,
    publish,
    start,
)
from tests.support.clients import Client, connect
from tests.support.server import ServerFactory
from xmpp_server.server import Server

PRIVATE = "jabber:iq:private"
NS = "urn:xmpp:bookmarks:1"
LEGACY = "storage:bookmarks"
COMPAT = {NS + "#compat", NS + "#compat-pep"}
OPTIONS = {"pubsub#persist_items": "true", "pubsub#max_items": "max",
           "pubsub#send_last_published_item": "never", "pubsub#access_model": "whitelist"}
EVENT_ITEM = "{http://jabber.org/protocol/pubsub#event}item"
EVENT_RETRACT = "{http://jabber.org/protocol/pubsub#event}retract"
LEGACY_PLUGINS = (*PLUGINS, "xep_0045", "xep_0049", "xep_0060", "xep_0163", "xep_0223",
                  "xep_0048")


@pytest.fixture
async def server(servers: ServerFactory) -> Server:
    return await start(servers, limits={"max_private_bytes": 1000})


async def private_get(client: Client, element: str) -> ET.Element:
    result = await iq(client, "get", f"<query xmlns='{PRIVATE}'>{element}</query>")
    query = result.find(f"{{{PRIVATE}}}query")
    assert query is not None and len(query) == 1
    return query[0]


def rooms(storage: ET.Element) -> dict[str, tuple[str | None, str | None, str | None]]:
    """jid -> (name, autojoin, nick) of a XEP-0048 storage element."""
    return {c.get("jid", ""): (c.get("name"), c.get("autojoin"), c.findtext(f"{{{LEGACY}}}nick"))
            for c in storage.iter(f"{{{LEGACY}}}conference")}


async def native(client: Client) -> dict[str, tuple[str | None, str | None, str | None]]:
    """jid -> (name, autojoin, nick) of the XEP-0402 items."""
    out = {}
    for item in await items(client, None, NS):
        conference = item.find(f"{{{NS}}}conference")
        assert conference is not None
        out[item.get("id", "")] = (conference.get("name"), conference.get("autojoin"),
                                   conference.findtext(f"{{{NS}}}nick"))
    return out


def conference(name: str, nick: str = "Al", autojoin: bool = True) -> str:
    join = " autojoin='true'" if autojoin else ""
    return f"<conference xmlns='{NS}' name='{name}'{join}><nick>{nick}</nick></conference>"


# -- XEP-0049 -----------------------------------------------------------------------------------

async def test_private_storage(server):
    alice = await connect(server, "alice")
    bob = await connect(server, "bob")
    try:
        empty = await private_get(alice, "<prefs xmlns='urn:example:prefs'/>")
        assert empty.tag == "{urn:example:prefs}prefs" and len(empty) == 0
        await iq(alice, "set", f"<query xmlns='{PRIVATE}'><prefs xmlns='urn:example:prefs'>"
                               "<color>blue</color></prefs><notes xmlns='urn:example:notes'>"
                               "<note>hi</note></notes></query>")
        prefs = await private_get(alice, "<prefs xmlns='urn:example:prefs'/>")
        assert prefs.findtext("{urn:example:prefs}color") == "blue"
        notes = await private_get(alice, "<notes xmlns='urn:example:notes'/>")
        assert notes.findtext("{urn:example:notes}note") == "hi"
        # one element per namespace and name: a set replaces it
        await iq(alice, "set", f"<query xmlns='{PRIVATE}'><prefs xmlns='urn:example:prefs'>"
                               "<color>red</color></prefs></query>")
        prefs = await private_get(alice, "<prefs xmlns='urn:example:prefs'/>")
        assert prefs.findtext("{urn:example:prefs}color") == "red"
        # bob has his own storage, and none of alice's
        assert len(await private_get(bob, "<prefs xmlns='urn:example:prefs'/>")) == 0
        query = f"<query xmlns='{PRIVATE}'><prefs xmlns='urn:example:prefs'/></query>"
        assert await iq_error(bob, "get", query, "alice@localhost") == ("forbidden", None)
        assert await iq_error(bob, "set", query, "alice@localhost") == ("forbidden", None)
        reserved = f"<query xmlns='{PRIVATE}'><x xmlns='jabber:x:oob'/></query>"
        assert await iq_error(alice, "set", reserved) == ("not-acceptable", None)
        assert await iq_error(alice, "get", f"<query xmlns='{PRIVATE}'/>") == (
            "not-acceptable", None)
        big = f"<query xmlns='{PRIVATE}'><big xmlns='urn:example:big'>{'x' * 1000}</big></query>"
        assert await iq_error(alice, "set", big) == ("not-acceptable", None)
    finally:
        await close(alice, bob)


# -- XEP-0402 and #compat -------------------------------------------------------------------------

async def test_native_bookmarks_seen_by_legacy_clients(server):
    alice = await online(server, "alice", [NS])
    legacy = await connect(server, "alice", resource="legacy", plugins=LEGACY_PLUGINS)
    try:
        room = "room@conference.localhost"
        await publish(alice, NS, conference("The Room"), room, OPTIONS)
        assert (await next_event(alice, NS)).find(EVENT_ITEM) is not None
        # XEP-0048 over private XML
        result = await legacy.plugin["xep_0048"].get_bookmarks(method="xep_0049")
        storage = result.xml.find(f"{{{PRIVATE}}}query/{{{LEGACY}}}storage")
        assert storage is not None
        assert rooms(storage) == {room: ("The Room", "true", "Al")}
        # XEP-0048 over PEP (#compat-pep)
        legacy_items = await items(legacy, None, LEGACY)
        assert [i.get("id") for i in legacy_items] == ["current"]
        assert rooms(legacy_items[0]) == {room: ("The Room", "true", "Al")}
        # removing natively shows in the legacy views too
        await iq(alice, "set", f"<pubsub xmlns='{PUBSUB}'><retract node='{NS}' notify='1'>"
                               f"<item id='{room}'/></retract></pubsub>")
        result = await legacy.plugin["xep_0048"].get_bookmarks(method="xep_0049")
        assert rooms(result.xml) == {}
    finally:
        await close(alice, legacy)


async def test_legacy_private_xml_updates_native_items(server):
    alice = await online(server, "alice", [NS])
    legacy = await connect(server, "alice", resource="legacy", plugins=LEGACY_PLUGINS)
    try:
        await publish(alice, NS, conference("Kept", "Al"), "kept@conference.localhost", OPTIONS)
        await publish(alice, NS, conference("Gone"), "gone@conference.localhost", OPTIONS)
        for _ in range(2):
            await next_event(alice, NS)
        storage = (f"<storage xmlns='{LEGACY}'>"
                   "<conference jid='kept@conference.localhost' name='Kept' autojoin='1'>"
                   "<nick>Al</nick></conference>"
                   "<conference jid='new@conference.localhost' name='New' autojoin='false'/>"
                   "<url name='a page' url='https://example.org'/></storage>")
        await iq(legacy, "set", f"<query xmlns='{PRIVATE}'>{storage}</query>")
        assert await native(alice) == {
            "kept@conference.localhost": ("Kept", "true", "Al"),
            "new@conference.localhost": ("New", None, None),
        }
        # notifications for what changed only: the new room and the removed one
        events = [await next_event(alice, NS) for _ in range(2)]
        published = [i.get("id") for e in events for i in e.findall(EVENT_ITEM)]
        retracted = [i.get("id") for e in events for i in e.findall(EVENT_RETRACT)]
        assert (published, retracted) == (["new@conference.localhost"],
                                          ["gone@conference.localhost"])
        await alice.nothing("pep")
    finally:
        await close(alice, legacy)


async def test_legacy_pep_publish_updates_native_items(server):
    alice = await online(server, "alice", [NS])
    legacy = await connect(server, "alice", resource="legacy", plugins=LEGACY_PLUGINS)
    try:
        bookmarks = legacy.plugin["xep_0048"].stanza.Bookmarks()
        bookmarks.add_conference("pep@conference.localhost", "Nick", name="Via PEP",
                                 autojoin=True)
        await legacy.plugin["xep_0048"].set_bookmarks(bookmarks, method="xep_0223")
        items_el = await next_event(alice, NS)
        item = items_el.find(EVENT_ITEM)
        assert item is not None and item.get("id") == "pep@conference.localhost"
        assert await native(alice) == {"pep@conference.localhost": ("Via PEP", "true", "Nick")}
        # and private XML reads the same list
        storage = await private_get(legacy, f"<storage xmlns='{LEGACY}'/>")
        assert rooms(storage) == {"pep@conference.localhost": ("Via PEP", "true", "Nick")}
    finally:
        await close(alice, legacy)


async def test_legacy_notify_clients_hear_of_native_changes(server):
    legacy = await online(server, "alice", [LEGACY], resource="legacy")
    alice = await online(server, "alice", presence=False)
    try:
        await publish(alice, NS, conference("Room"), "room@conference.localhost", OPTIONS)
        event = await next_event(legacy, LEGACY)
        storage = event.find(f".//{{{LEGACY}}}storage")
        assert storage is not None
        assert rooms(storage) == {"room@conference.localhost": ("Room", "true", "Al")}
    finally:
        await close(alice, legacy)


async def test_features_only_when_enabled(servers):
    cases = ((MODULES, True, True), ([m for m in MODULES if m != "bookmarks"], False, True),
             ([m for m in MODULES if m not in ("bookmarks", "private")], False, False))
    for modules, compat, private in cases:
        server = await start(servers, modules)
        alice = await connect(server, "alice", plugins=PLUGINS)
        try:
            assert (await account_features(alice, "alice@localhost") >= COMPAT) is compat
            assert (PRIVATE in await account_features(alice, "localhost")) is private
        finally:
            await alice.close()
            await servers.stop(server)
