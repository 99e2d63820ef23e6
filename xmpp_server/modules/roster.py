"""RFC 6121 §2: roster management — get, set, remove, roster pushes and versioning (§2.6).

A resource that requests the roster becomes *interested* (§2.2) and gets every roster push.
The roster version is the storage's per-user counter, so a client that sends the ``ver`` it
holds gets an empty result when nothing changed (§2.6.3). Removing an item also cancels the
subscriptions in both directions (§2.5.2). The presence feature changes subscription states
and uses ``push`` and ``lock`` from here, so roster writes of one user never interleave.
"""

from __future__ import annotations

import secrets
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lxml import etree

from storage import RosterItem
from xmpp_server import namespaces as ns
from xmpp_server.errors import JIDError, StanzaError
from xmpp_server.jid import JID
from xmpp_server.locks import KeyedLocks
from xmpp_server.modules.base import Module
from xmpp_server.stanza import Stanza, element, iq_result, sub

if TYPE_CHECKING:
    from xmpp_server.stream.session import Session

QUERY = "{" + ns.ROSTER + "}query"
ITEM = "{" + ns.ROSTER + "}item"
GROUP = "{" + ns.ROSTER + "}group"
# §2.3.3: the server may limit the length of handles and group names (not-acceptable).
MAX_NAME = 1023
MAX_GROUP = 1023
_STATES = ("none", "to", "from", "both")


@dataclass
class ItemSet:
    """One validated roster set: an update, or a removal (subscription='remove')."""

    jid: str
    remove: bool
    name: str | None = None
    groups: tuple[str, ...] = ()


def parse_set(query: etree._Element, owner: JID) -> ItemSet:
    """§2.1.5, §2.3.3: the single item of a roster set, or the StanzaError it deserves."""
    items = [child for child in query if child.tag == ITEM]
    if len(items) != 1:
        raise StanzaError("bad-request", "a roster set carries exactly one item")
    item = items[0]
    raw_jid = item.get("jid")
    if not raw_jid:
        raise StanzaError("bad-request", "the item has no jid")
    try:
        jid = JID.parse(raw_jid)
    except JIDError:
        raise StanzaError("jid-malformed", "the item's jid is not a valid JID") from None
    if jid.resource is not None:
        raise StanzaError("bad-request", "roster items are bare JIDs")
    if jid == owner.bare:
        raise StanzaError("not-allowed", "you cannot add yourself to your roster")
    subscription = item.get("subscription")
    if subscription == "remove":
        return ItemSet(str(jid), remove=True)
    # §2.1.2.5: other values of 'subscription' in a set are ignored (clients such as slixmpp
    # echo the current state); a value that is no state at all is a bad request. 'ask' and
    # 'approved' are the server's to set and are ignored too (§2.1.2.1, §2.1.2.2).
    if subscription is not None and subscription not in _STATES:
        raise StanzaError("bad-request", f"unknown subscription value {subscription!r}")
    name = item.get("name") or None
    if name is not None and len(name) > MAX_NAME:
        raise StanzaError("not-acceptable", f"the name is longer than {MAX_NAME} characters")
    groups: list[str] = []
    for group in item.iter(GROUP):
        text = group.text or ""
        if not text:
            raise StanzaError("not-acceptable", "a group name must not be empty")
        if len(text) > MAX_GROUP:
            raise StanzaError("not-acceptable", f"a group name is longer than {MAX_GROUP}")
        if text in groups:
            raise StanzaError("bad-request", f"duplicate group {text!r}")
        groups.append(text)
    return ItemSet(str(jid), remove=False, name=name, groups=tuple(groups))


def item_element(item: RosterItem | None, jid: str | None = None) -> etree._Element:
    """The ``<item/>`` of a roster result or push; ``None`` is a removed item (§2.5.2)."""
    if item is None:
        return element(ITEM, jid=jid, subscription="remove")
    el = element(
        ITEM,
        jid=item.jid,
        name=item.name,
        subscription=item.subscription,
        ask="subscribe" if item.ask else None,
        approved="true" if item.approved else None,  # §3.4: pre-approved
    )
    for group in item.groups:
        sub(el, "group", group)
    return el


class Roster(Module):
    name = "roster"
    features = (ns.ROSTER,)

    def setup(self) -> None:
        self._locks = KeyedLocks()
        self.on_iq("get", "bare", QUERY, self.get)
        self.on_iq("set", "bare", QUERY, self.set)
        self.on("user-deleting", self.user_deleting)
        self.offer(self._stream_feature)

    @staticmethod
    def _stream_feature(session: Session, features: etree._Element) -> None:
        if session.username is not None and session.jid is None:
            # §2.6.1: roster versioning is advertised after authentication.
            etree.SubElement(features, "{" + ns.ROSTER_VER + "}ver", nsmap={None: ns.ROSTER_VER})

    # -- shared with the presence feature -----------------------------------------------------

    def lock(self, username: str) -> AbstractAsyncContextManager[None]:
        """Serialise read-modify-write of one user's roster; never route while holding it."""
        return self._locks(username)

    def push(self, username: str, version: int, item: RosterItem | None,
             jid: str | None = None) -> None:
        """§2.1.6: a roster push to every interested resource of the user."""
        for session in self.host.sessions.of_user(username):
            if not session.interested or session.jid is None:
                continue
            iq = element("iq", type="set", id="push-" + secrets.token_hex(6), to=str(session.jid))
            query = sub(iq, QUERY, ver=str(version))
            query.append(item_element(item, jid))
            session.send(iq)

    # -- handlers -----------------------------------------------------------------------------

    @staticmethod
    def _owner(stanza: Stanza) -> JID:
        """§2.1: a roster is only ever read or written by its own account."""
        frm = stanza.frm
        if frm is None or stanza.origin is None or frm.local is None:
            raise StanzaError("forbidden", "not your roster")
        if stanza.to is not None and stanza.to != frm.bare:
            raise StanzaError("forbidden", "not your roster")
        return frm

    async def get(self, stanza: Stanza) -> bool:
        owner = self._owner(stanza)
        assert owner.local is not None and stanza.origin is not None and stanza.child is not None
        stanza.origin.interested = True  # §2.2
        items, version = await self.host.storage.roster.get(owner.local)
        ver = stanza.child.get("ver")
        if ver and ver == str(version):
            # §2.6.3: nothing changed since the client's version: an empty result.
            await self.host.router.reply(stanza, iq_result(stanza))
            return True
        query = element(QUERY, ver=str(version))
        for item in items:
            query.append(item_element(item))
        await self.host.router.reply(stanza, iq_result(stanza, query))
        return True

    async def set(self, stanza: Stanza) -> bool:
        owner = self._owner(stanza)
        username = owner.local
        assert username is not None and stanza.child is not None
        change = parse_set(stanza.child, owner)
        if change.remove:
            await self._remove(stanza, username, change.jid)
            return True
        repo = self.host.storage.roster
        async with self.lock(username):
            old = await repo.get_item(username, change.jid) or RosterItem(change.jid)
            item = RosterItem(
                jid=change.jid, name=change.name, subscription=old.subscription,
                ask=old.ask, approved=old.approved, groups=list(change.groups),
            )
            version = await repo.put(username, item)
            self.push(username, version, item)  # §2.3.2: including the requesting resource
        await self.host.router.reply(stanza, iq_result(stanza))
        return True

    async def _remove(self, stanza: Stanza, username: str, jid: str) -> None:
        repo = self.host.storage.roster
        async with self.lock(username):
            item = await repo.get_item(username, jid)
            pending_in = await repo.remove_pending(username, jid)
            if item is None:
                if not pending_in:
                    raise StanzaError("item-not-found", "no such item in the roster")  # §2.5.3
            else:
                version = await repo.remove(username, jid)
                if version is not None:
                    self.push(username, version, None, jid)
        await self.host.router.reply(stanza, iq_result(stanza))
        await self.cancel_subscriptions(username, item or RosterItem(jid), pending_in)

    async def cancel_subscriptions(self, username: str, item: RosterItem,
                                   pending_in: bool) -> None:
        """§2.5.2: after a removal, unsubscribe and unsubscribed go to the contact as needed."""
        host = self.host
        user = JID(username, host.domain)
        if item.subscription in ("to", "both") or item.ask:
            await host.router.send(element("presence", type="unsubscribe",
                                           from_=str(user), to=item.jid))
        if item.subscription in ("from", "both") or pending_in:
            await host.router.send(element("presence", type="unsubscribed",
                                           from_=str(user), to=item.jid))
        if item.subscription in ("from", "both"):
            # §3.2.2: the contact is no longer entitled to the user's presence.
            for session in host.sessions.of_user(username):
                if session.available and session.jid is not None:
                    await host.router.send(element("presence", type="unavailable",
                                                   from_=str(session.jid), to=item.jid))

    async def user_deleting(self, username: str) -> None:
        """XEP-0077 §3.2: a removed account cancels its subscriptions before its data goes."""
        items, _ = await self.host.storage.roster.get(username)
        pending = {jid for jid, _ in await self.host.storage.roster.list_pending(username)}
        for item in items:
            await self.cancel_subscriptions(username, item, item.jid in pending)
        for jid in pending - {item.jid for item in items}:
            await self.cancel_subscriptions(username, RosterItem(jid), True)
