"""XEP-0084 avatars over PEP, the XEP-0398 bridge to the vCard PHOTO, XEP-0153 hashes."""

from __future__ import annotations

import base64
import hashlib
import secrets
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from tests.scenarios.test_pep import (
    MODULES,
    PLUGINS,
    account_features,
    available,
    befriend,
    close,
    iq,
    items,
    next_event,
    online,
    start,
)
from tests.support.clients import Client, connect
from tests.support.server import ServerFactory
from xmpp_server.server import Server

VCARD = "vcard-temp"
DATA = "urn:xmpp:avatar:data"
METADATA = "urn:xmpp:avatar:metadata"
UPDATE = "vcard-temp:x:update"
CONVERSION = "urn:xmpp:pep-vcard-conversion:0"
IMAGE = b"\x89PNG\r\n\x1a\n" + bytes(range(200))  # not a real picture: the server never looks
DIGEST = hashlib.sha1(IMAGE).hexdigest()


@pytest.fixture
async def server(servers: ServerFactory) -> Server:
    return await start(servers)


def photo_of(presence: Any) -> str | None:
    """The XEP-0153 hash in a presence: None without the element, "" for an empty photo."""
    x = presence.xml.find(f"{{{UPDATE}}}x")
    if x is None:
        return None
    photo = x.find(f"{{{UPDATE}}}photo")
    return None if photo is None else (photo.text or "")


async def presence_photo(alice: Client, bob: Client) -> str | None:
    """The hash in the next presence alice sends, as bob receives it."""
    status = secrets.token_hex(4)
    alice.send_presence(pstatus=status)
    pres = await bob.next("presence", lambda p: p["from"] == alice.boundjid
                          and p["status"] == status)
    return photo_of(pres)


async def test_vcard_photo_becomes_the_pep_avatar(server):
    await befriend(server, "alice", "bob")
    alice = await online(server, "alice")
    bob = await online(server, "bob", [METADATA])
    try:
        binval = base64.encodebytes(IMAGE).decode()  # line-wrapped, as vCards often are
        await _iq_set_vcard(alice, f"<FN>Alice</FN><PHOTO><TYPE>image/png</TYPE>"
                                   f"<BINVAL>{binval}</BINVAL></PHOTO>")
        event = await next_event(bob, METADATA)
        info = event.find(f".//{{{METADATA}}}info")
        assert info is not None
        assert (info.get("id"), info.get("bytes"), info.get("type")) == (
            DIGEST, str(len(IMAGE)), "image/png")
        data = await items(bob, "alice@localhost", DATA)  # open, like the vCard itself
        assert [i.get("id") for i in data] == [DIGEST]
        assert base64.b64decode(data[0].findtext(f"{{{DATA}}}data") or "") == IMAGE
        # XEP-0153: the server puts the hash in the user's presence
        assert await presence_photo(alice, bob) == DIGEST
        # a vCard without a photo disables the avatar (XEP-0084 §4.2)
        await _iq_set_vcard(alice, "<FN>Alice</FN>")
        event = await next_event(bob, METADATA)
        assert event.find(f".//{{{METADATA}}}info") is None
        assert await presence_photo(alice, bob) == ""
    finally:
        await close(alice, bob)


async def test_pep_avatar_becomes_the_vcard_photo(server):
    await befriend(server, "alice", "bob")
    alice = await connect(server, "alice", plugins=(*PLUGINS, "xep_0163", "xep_0084"))
    bob = await online(server, "bob", presence=False)
    try:
        await alice.plugin["xep_0084"].publish_avatar(IMAGE)
        await alice.plugin["xep_0084"].publish_avatar_metadata(
            [{"id": DIGEST, "type": "image/png", "bytes": len(IMAGE)}])
        card = await _iq_get_vcard(bob, "alice@localhost")
        assert card.findtext(f"{{{VCARD}}}PHOTO/{{{VCARD}}}TYPE") == "image/png"
        binval = card.findtext(f"{{{VCARD}}}PHOTO/{{{VCARD}}}BINVAL") or ""
        assert base64.b64decode(binval) == IMAGE
        # the client's XEP-0153 hash is replaced by the server's
        await available(bob)
        assert await presence_photo(alice, bob) == DIGEST
        # stopping the avatar removes the photo, keeping the rest of the vCard
        await _iq_set_vcard(alice, f"<FN>Alice</FN><PHOTO><BINVAL>"
                                   f"{base64.b64encode(IMAGE).decode()}</BINVAL></PHOTO>")
        await alice.plugin["xep_0084"].stop()
        card = await _iq_get_vcard(bob, "alice@localhost")
        assert card.find(f"{{{VCARD}}}PHOTO") is None
        assert card.findtext(f"{{{VCARD}}}FN") == "Alice"
    finally:
        await close(alice, bob)


async def test_client_hash_kept_while_the_server_knows_no_avatar(server):
    await befriend(server, "alice", "bob")
    alice = await online(server, "alice", presence=False)
    bob = await online(server, "bob")
    try:
        pres = alice.make_presence()
        x = pres.xml.makeelement(f"{{{UPDATE}}}x", {})
        photo = x.makeelement(f"{{{UPDATE}}}photo", {})
        photo.text = "0123456789abcdef0123456789abcdef01234567"
        x.append(photo)
        pres.xml.append(x)
        pres.send()
        got = await bob.next("presence", lambda p: p["from"] == alice.boundjid)
        assert photo_of(got) == "0123456789abcdef0123456789abcdef01234567"
    finally:
        await close(alice, bob)


async def test_conversion_feature_only_when_enabled(servers):
    for modules, expected in ((MODULES, True), ([m for m in MODULES if m != "avatars"], False)):
        server = await start(servers, modules)
        alice = await connect(server, "alice", plugins=PLUGINS)
        try:
            assert (CONVERSION in await account_features(alice, "alice@localhost")) is expected
        finally:
            await alice.close()
            await servers.stop(server)


async def _iq_set_vcard(client: Client, inner: str) -> None:
    await iq(client, "set", f"<vCard xmlns='{VCARD}'>{inner}</vCard>")


async def _iq_get_vcard(client: Client, to: str) -> ET.Element:
    result = await iq(client, "get", f"<vCard xmlns='{VCARD}'/>", to)
    card = result.find(f"{{{VCARD}}}vCard")
    assert card is not None
    return card
