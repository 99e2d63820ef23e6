"""XEP-0054 vcard-temp: own and others' vCards, the size limit, only the owner writes."""

from __future__ import annotations

import pytest
from slixmpp import JID
from slixmpp.exceptions import IqError

from tests.scenarios.test_pep import MODULES, account_features, iq, iq_error, start
from tests.support.clients import connect
from tests.support.server import ServerFactory
from xmpp_server.server import Server

VCARD = "vcard-temp"
PLUGINS = ("xep_0030", "xep_0054")


@pytest.fixture
async def server(servers: ServerFactory) -> Server:
    return await start(servers, limits={"max_vcard_bytes": 2048})


async def test_set_and_get_own_and_others(server):
    alice = await connect(server, "alice", plugins=PLUGINS)
    bob = await connect(server, "bob", plugins=PLUGINS)  # not a contact: anyone may read
    try:
        empty = await iq(alice, "get", f"<vCard xmlns='{VCARD}'/>")
        card = empty.find(f"{{{VCARD}}}vCard")
        assert card is not None and len(card) == 0  # none stored: an empty vCard
        vcard = alice.plugin["xep_0054"].make_vcard()
        vcard["FN"] = "Alice Liddell"
        vcard["NICKNAME"] = "alice"
        await alice.plugin["xep_0054"].publish_vcard(vcard)
        own = await iq(alice, "get", f"<vCard xmlns='{VCARD}'/>")
        assert own.findtext(f"{{{VCARD}}}vCard/{{{VCARD}}}FN") == "Alice Liddell"
        theirs = await bob.plugin["xep_0054"].get_vcard(JID("alice@localhost"))
        assert theirs["vcard_temp"]["FN"] == "Alice Liddell"
        assert theirs["vcard_temp"]["NICKNAME"] == ["alice"]
        # a new set replaces the whole vCard
        await iq(alice, "set", f"<vCard xmlns='{VCARD}'><FN>Alice</FN></vCard>")
        again = await iq(bob, "get", f"<vCard xmlns='{VCARD}'/>", "alice@localhost")
        assert again.findtext(f"{{{VCARD}}}vCard/{{{VCARD}}}FN") == "Alice"
        assert again.find(f"{{{VCARD}}}vCard/{{{VCARD}}}NICKNAME") is None
    finally:
        await alice.close()
        await bob.close()


async def test_only_the_owner_sets_and_size_is_limited(server):
    alice = await connect(server, "alice", plugins=PLUGINS)
    bob = await connect(server, "bob", plugins=PLUGINS)
    try:
        forged = f"<vCard xmlns='{VCARD}'><FN>Mallory</FN></vCard>"
        assert await iq_error(bob, "set", forged, "alice@localhost") == ("forbidden", None)
        big = f"<vCard xmlns='{VCARD}'><DESC>{'x' * 3000}</DESC></vCard>"
        assert await iq_error(alice, "set", big) == ("not-acceptable", None)
        card = await iq(alice, "get", f"<vCard xmlns='{VCARD}'/>")
        assert card.find(f"{{{VCARD}}}vCard/{{{VCARD}}}DESC") is None
        # no such account
        with pytest.raises(IqError) as info:
            await bob.plugin["xep_0054"].get_vcard(JID("nobody@localhost"))
        assert info.value.iq["error"]["condition"] == "service-unavailable"
    finally:
        await alice.close()
        await bob.close()


async def test_feature_only_when_enabled(servers):
    for modules, expected in ((MODULES, True), ([m for m in MODULES if m not in (
            "vcard", "avatars")], False)):
        server = await start(servers, modules)
        alice = await connect(server, "alice", plugins=PLUGINS)
        try:
            assert (VCARD in await account_features(alice, "localhost")) is expected
            if not expected:
                error = await iq_error(alice, "get", f"<vCard xmlns='{VCARD}'/>")
                assert error[0] == "service-unavailable"
        finally:
            await alice.close()
            await servers.stop(server)
