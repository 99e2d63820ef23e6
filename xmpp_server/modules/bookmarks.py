"""XEP-0402: PEP Native Bookmarks, bridged to the XEP-0048 formats (``#compat``).

The ``urn:xmpp:bookmarks:1`` node (one item per room, whitelist access) is the truth, as on
Prosody's mod_bookmarks. XEP-0048 clients see the same list (XEP-0402 §5.3):

- private XML (XEP-0049) ``storage:bookmarks``: a get is made from the native items; a set is
  compared with them, and only changed rooms are published and missing ones retracted
  (§5.3.2: no notifications for unchanged items);
- PEP ``storage:bookmarks`` (``#compat-pep``): a client publishing it is converted the same
  way; any native change republishes the whole list there (item ``current``), which
  notifies legacy clients with ``storage:bookmarks+notify``.

The account announces ``urn:xmpp:bookmarks:1#compat``, ``#compat-pep`` and XEP-0411's
``urn:xmpp:bookmarks-conversion:0``.
"""

from __future__ import annotations

from copy import deepcopy
from typing import TYPE_CHECKING, cast

from lxml import etree

from xmpp_server.errors import JIDError
from xmpp_server.jid import JID
from xmpp_server.modules.base import Module
from xmpp_server.modules.pep import PepChange
from xmpp_server.modules.pep.nodes import NodeConfig
from xmpp_server.modules.pep.service import parse_item
from xmpp_server.stanza import element, sub

if TYPE_CHECKING:
    from xmpp_server.modules.disco import DiscoReply
    from xmpp_server.modules.pep import Pep
    from xmpp_server.modules.private import PrivateRequest

NS = "urn:xmpp:bookmarks:1"
LEGACY = "storage:bookmarks"
FEATURES = (NS + "#compat", NS + "#compat-pep", "urn:xmpp:bookmarks-conversion:0")
# XEP-0402 §3 (and XEP-0223): private, persistent, every bookmark kept.
BOOKMARKS_NODE = NodeConfig(access_model="whitelist", max_items="max",
                            send_last_published_item="never")
LEGACY_NODE = NodeConfig(access_model="whitelist")
_N, _L = "{" + NS + "}", "{" + LEGACY + "}"
_TRUE = ("1", "true")

Bookmark = tuple[str | None, bool, str | None, str | None]  # name, autojoin, nick, password


def _fields(conference: etree._Element, ns: str) -> Bookmark:
    return (conference.get("name"), conference.get("autojoin") in _TRUE,
            conference.findtext(ns + "nick"), conference.findtext(ns + "password"))


def native(legacy: etree._Element, old: etree._Element | None) -> etree._Element:
    """A XEP-0048 conference as a XEP-0402 one, keeping the old one's extensions."""
    name, autojoin, nick, password = _fields(legacy, _L)
    conference = element(_N + "conference", name=name, autojoin="true" if autojoin else None)
    for tag, text in (("nick", nick), ("password", password)):
        if text is not None:
            sub(conference, tag, text)
    extensions = None if old is None else old.find(_N + "extensions")
    if extensions is not None:
        conference.append(deepcopy(extensions))
    return conference


def legacy_storage(bookmarks: dict[str, etree._Element]) -> etree._Element:
    """XEP-0402 §5.3.1: all bookmarks as one XEP-0048 ``<storage/>``."""
    storage = element(_L + "storage")
    for jid, conference in bookmarks.items():
        name, autojoin, nick, password = _fields(conference, _N)
        legacy = sub(storage, "conference", jid=jid, name=name,
                     autojoin="true" if autojoin else "false")
        for tag, text in (("nick", nick), ("password", password)):
            if text is not None:
                sub(legacy, tag, text)
    return storage


class Bookmarks(Module):
    name = "bookmarks"
    xeps = (48, 402, 411)
    depends = ("pep", "private")

    def setup(self) -> None:
        self.pep = cast("Pep", self.host.modules["pep"]).service
        self.on(f"private-get/{_L}storage", self.private_get)
        self.on(f"private-set/{_L}storage", self.private_set)
        self.on("pep-published", self.changed)
        self.on("pep-retracted", self.changed)
        self.on("disco-info/account", self.account_info)

    def account_info(self, reply: DiscoReply) -> None:
        for feature in FEATURES:
            reply.feature(feature)

    async def current(self, owner: str) -> dict[str, etree._Element]:
        """Room JID -> XEP-0402 conference, in publication order."""
        out: dict[str, etree._Element] = {}
        for item in await self.host.storage.pep.items(owner, NS):
            conference = parse_item(item)
            if conference.tag == _N + "conference":
                out[item.item_id] = conference
        return out

    async def from_legacy(self, owner: str, storage: etree._Element) -> None:
        """§5.3.2: apply a replacement list, publishing and retracting only what changed."""
        have = await self.current(owner)
        wanted: dict[str, etree._Element] = {}
        for legacy in storage.iterchildren(_L + "conference"):
            try:
                jid = JID.parse(legacy.get("jid", "")).bare_str
            except JIDError:
                continue
            wanted[jid] = native(legacy, have.get(jid))
        for jid, conference in wanted.items():
            old = have.get(jid)
            if old is None or _fields(old, _N) != _fields(conference, _N):
                await self.pep.publish(owner, NS, jid, conference, defaults=BOOKMARKS_NODE)
        for jid in have.keys() - wanted.keys():
            await self.pep.retract(owner, NS, jid)

    async def to_legacy_pep(self, owner: str) -> None:
        storage = legacy_storage(await self.current(owner))
        await self.pep.publish(owner, LEGACY, "current", storage, defaults=LEGACY_NODE)

    # -- the bridges --------------------------------------------------------------------------

    async def private_get(self, request: PrivateRequest) -> bool:
        request.result = legacy_storage(await self.current(request.username))
        return True

    async def private_set(self, request: PrivateRequest) -> bool:
        await self.from_legacy(request.username, request.element)
        await self.to_legacy_pep(request.username)
        return True

    async def changed(self, change: PepChange) -> None:
        """A client changed bookmarks through PEP, natively or the XEP-0048 way."""
        if change.actor is None:
            return  # the server's own conversions
        if change.node == NS:
            await self.to_legacy_pep(change.owner)
        elif (change.node == LEGACY and change.payload is not None
              and change.payload.tag == _L + "storage"):
            await self.from_legacy(change.owner, change.payload)
