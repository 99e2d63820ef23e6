"""XEP-0060 requests to a PEP service: parsing, checks and replies; the work is ``service.py``.

Supported: publish (with publish-options), retract, items, create (with configure) and, for
the owner, configure, default, delete and affiliations (the whitelist). Explicit
subscriptions are not: PEP subscribes contacts through presence and caps (XEP-0163 §4.3).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lxml import etree

from xmpp_server.errors import StanzaError
from xmpp_server.jid import JID
from xmpp_server.modules.pep import access
from xmpp_server.modules.pep.nodes import (
    NODE_CONFIG,
    OWNER,
    PUBLISH_OPTIONS,
    PUBSUB,
    NodeConfig,
    config_form,
    find_form,
    pubsub_error,
    read_form,
)
from xmpp_server.modules.pep.service import PepService, parse_item
from xmpp_server.numbers import stanza_int
from xmpp_server.stanza import Stanza, element, iq_result, sub

if TYPE_CHECKING:
    from xmpp_server.host import Host

PS = "{" + PUBSUB + "}"
PO = "{" + OWNER + "}"
MAX_NAME = 1023  # node names and item ids


def _children(el: etree._Element) -> list[etree._Element]:
    return [child for child in el if isinstance(child.tag, str)]


def _node(el: etree._Element) -> str:
    node = el.get("node")
    if not node:
        raise pubsub_error("bad-request", "nodeid-required")
    if len(node) > MAX_NAME:
        raise StanzaError("not-acceptable", "the node name is too long")
    return node


def _unsupported(feature: str) -> StanzaError:
    return pubsub_error("feature-not-implemented", "unsupported", feature=feature)


class PubsubHandlers:
    def __init__(self, host: Host, service: PepService) -> None:
        self.host = host
        self.service = service

    # -- who is asking whom -------------------------------------------------------------------

    async def _target(self, stanza: Stanza) -> tuple[str, JID]:
        """The owner (username) of the service addressed, and the requester."""
        requester = stanza.frm
        assert requester is not None
        target = stanza.to or requester.bare
        assert target.local is not None
        if (not access.is_owner(self.host, target.local, requester)
                and not await self.host.accounts.exists(target.local)):
            raise StanzaError("service-unavailable")  # RFC 6121 §8.5.1
        return target.local, requester

    def _owner_only(self, owner: str, requester: JID) -> None:
        if not access.is_owner(self.host, owner, requester):
            raise StanzaError("forbidden", "only the account owner may do this")

    async def _reply(self, stanza: Stanza, payload: etree._Element | None = None) -> bool:
        await self.host.router.reply(stanza, iq_result(stanza, payload))
        return True

    # -- <pubsub xmlns='http://jabber.org/protocol/pubsub'/> ----------------------------------

    async def pubsub_set(self, stanza: Stanza) -> bool:
        owner, requester = await self._target(stanza)
        pubsub = stanza.child
        assert pubsub is not None
        action = next((c for c in _children(pubsub)
                       if c.tag not in (PS + "publish-options", PS + "configure")), None)
        if action is None:
            raise StanzaError("bad-request", "no pubsub action")
        name = action.tag
        if name in (PS + "subscribe", PS + "unsubscribe", PS + "options"):
            raise _unsupported("subscribe")
        self._owner_only(owner, requester)
        if name == PS + "publish":
            return await self._publish(stanza, owner, requester, pubsub, action)
        if name == PS + "retract":
            return await self._retract(stanza, owner, requester, action)
        if name == PS + "create":
            changes = {}
            form = find_form(pubsub.find(PS + "configure"))
            if form is not None:
                changes = read_form(form, NODE_CONFIG)
            await self.service.create(owner, _node(action), changes)
            return await self._reply(stanza)
        raise StanzaError("feature-not-implemented", f"unsupported pubsub action {name}")

    async def _publish(self, stanza: Stanza, owner: str, requester: JID,
                       pubsub: etree._Element, publish: etree._Element) -> bool:
        node = _node(publish)
        items = publish.findall(PS + "item")
        if len(items) != 1:  # XEP-0060 §7.1.3.5-6
            raise pubsub_error("bad-request", "item-required" if not items else "invalid-payload")
        item = items[0]
        payload = _children(item)
        if len(payload) != 1:
            raise pubsub_error("bad-request", "payload-required" if not payload
                               else "invalid-payload")
        item_id = item.get("id") or None
        if item_id is not None and len(item_id) > MAX_NAME:
            raise StanzaError("not-acceptable", "the item id is too long")
        options = None
        form = find_form(pubsub.find(PS + "publish-options"))
        if form is not None:
            options = read_form(form, PUBLISH_OPTIONS)
        item_id = await self.service.publish(owner, node, item_id, payload[0], options=options,
                                             actor=requester)
        reply = element(PS + "pubsub")
        sub(sub(reply, "publish", node=node), "item", id=item_id)
        return await self._reply(stanza, reply)

    async def _retract(self, stanza: Stanza, owner: str, requester: JID,
                       retract: etree._Element) -> bool:
        node = _node(retract)
        items = retract.findall(PS + "item")
        if len(items) != 1 or not items[0].get("id"):  # §7.2.3.3
            raise pubsub_error("bad-request", "item-required")
        notify = retract.get("notify")
        await self.service.retract(
            owner, node, items[0].get("id", ""), actor=requester,
            notify=None if notify is None else notify in ("1", "true"),
        )
        return await self._reply(stanza)

    async def pubsub_get(self, stanza: Stanza) -> bool:
        owner, requester = await self._target(stanza)
        pubsub = stanza.child
        assert pubsub is not None
        action = next(iter(_children(pubsub)), None)
        if action is None or action.tag != PS + "items":
            name = "none" if action is None else etree.QName(action).localname
            raise _unsupported(f"retrieve-{name}")
        node = _node(action)
        last = None
        max_items = action.get("max_items")
        if max_items is not None:
            last = stanza_int(max_items, "max_items", 1)
        ids = [i.get("id", "") for i in action.findall(PS + "item")] or None
        found = await self.service.items(owner, node, requester, ids=ids, last=last)
        reply = element(PS + "pubsub")
        items_el = sub(reply, "items", node=node)
        for item in found:
            sub(items_el, "item", id=item.item_id).append(parse_item(item))
        return await self._reply(stanza, reply)

    # -- <pubsub xmlns='http://jabber.org/protocol/pubsub#owner'/> ----------------------------

    async def owner_get(self, stanza: Stanza) -> bool:
        owner, requester = await self._target(stanza)
        self._owner_only(owner, requester)
        action = next(iter(_children(stanza.child)), None) if stanza.child is not None else None
        reply = element(PO + "pubsub")
        if action is not None and action.tag == PO + "default":
            sub(reply, "default").append(config_form(NodeConfig()))
        elif action is not None and action.tag == PO + "configure":
            node = _node(action)
            config = await self.service.existing(owner, node)
            sub(reply, "configure", node=node).append(config_form(config))
        elif action is not None and action.tag == PO + "affiliations":
            node = _node(action)
            config = await self.service.existing(owner, node)
            affiliations = sub(reply, "affiliations", node=node)
            sub(affiliations, "affiliation", jid=f"{owner}@{self.host.domain}",
                affiliation="owner")
            for jid in config.whitelist:
                sub(affiliations, "affiliation", jid=jid, affiliation="member")
        else:
            raise StanzaError("feature-not-implemented", "unsupported pubsub#owner request")
        return await self._reply(stanza, reply)

    async def owner_set(self, stanza: Stanza) -> bool:
        owner, requester = await self._target(stanza)
        self._owner_only(owner, requester)
        action = next(iter(_children(stanza.child)), None) if stanza.child is not None else None
        if action is not None and action.tag == PO + "configure":
            form = find_form(action)
            if form is None:
                raise StanzaError("bad-request", "no configuration form")
            if form.get("type") != "cancel":
                await self.service.configure(owner, _node(action), read_form(form, NODE_CONFIG))
        elif action is not None and action.tag == PO + "delete":
            await self.service.delete(owner, _node(action))
        elif action is not None and action.tag == PO + "affiliations":
            await self._set_affiliations(owner, action)
        else:
            raise StanzaError("feature-not-implemented", "unsupported pubsub#owner request")
        return await self._reply(stanza)

    async def _set_affiliations(self, owner: str, action: etree._Element) -> None:
        """XEP-0060 §8.9.2: members (and publishers, read as members) make the whitelist."""
        node = _node(action)
        config = await self.service.existing(owner, node)
        whitelist = list(config.whitelist)
        for affiliation in action.iterchildren(PO + "affiliation"):
            try:
                jid = JID.parse(affiliation.get("jid", "")).bare_str
            except StanzaError:
                raise StanzaError("jid-malformed", "bad affiliation jid") from None
            kind = affiliation.get("affiliation")
            if kind in ("member", "publisher"):
                if jid not in whitelist:
                    whitelist.append(jid)
            elif kind in ("none", "outcast"):
                whitelist = [j for j in whitelist if j != jid]
            else:
                raise StanzaError("not-acceptable", f"unsupported affiliation {kind!r}")
        await self.service.configure(owner, node, {"whitelist": tuple(whitelist)})
