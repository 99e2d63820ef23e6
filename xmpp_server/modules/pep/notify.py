"""XEP-0163 §4.3: who gets a node's notifications, and the last item when they come online.

A notification goes to each available resource that wants the node (its entity capabilities
list ``<node>+notify``, §4.3.1) of the owner and of the entities the access model allows
(``access.subscribers``). Local resources are looked up in the session registry; remote ones
are known from the presence they send to the owner (``remote``), as Prosody's mod_pep does.

When a resource comes online, or its capabilities come to list a node it did not want before,
it gets the last item of that node of every account it may see (§4.3.4 "last published
item"): its own and, for a local user, those of the local contacts it is subscribed to.
"""

from __future__ import annotations

import asyncio
import logging
from copy import deepcopy
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from lxml import etree

from xmpp_server import namespaces as ns
from xmpp_server.jid import JID
from xmpp_server.modules.pep import access
from xmpp_server.modules.pep.caps import Caps, caps_of, notify_nodes
from xmpp_server.modules.pep.nodes import EVENT, NodeConfig
from xmpp_server.stanza import element, sub

if TYPE_CHECKING:
    from xmpp_server.host import Host
    from xmpp_server.stream.session import Session

log = logging.getLogger(__name__)

SESSION_KEY = "pep"  # session.data: the resource's Interest


@dataclass
class Interest:
    """What one resource announced: its last caps, the nodes it wants."""

    caps: etree._Element | None = None
    nodes: frozenset[str] = frozenset()


def event_message(owner: str, to: str, payload: etree._Element,
                  stamp: datetime | None = None) -> etree._Element:
    """``<message type='headline'><event>payload</event></message>`` (XEP-0060 §7.1.2.1)."""
    msg = element("message", type="headline", from_=owner, to=to)
    sub(msg, "{" + EVENT + "}event").append(deepcopy(payload))
    if stamp is not None:  # XEP-0060 §6.1.7: an item sent later says when it was published
        sub(msg, "{" + ns.DELAY + "}delay", stamp=stamp.strftime("%Y-%m-%dT%H:%M:%SZ"))
    return msg


def items_payload(node: str, item_id: str, payload: etree._Element | None = None,
                  retract: bool = False) -> etree._Element:
    items = element("{" + EVENT + "}items", node=node)
    if retract:
        sub(items, "retract", id=item_id)
    else:
        item = sub(items, "item", id=item_id)
        if payload is not None:
            item.append(deepcopy(payload))
    return items


class Notifier:
    def __init__(self, host: Host) -> None:
        self.host = host
        self.caps = Caps(host)
        # owner -> remote full JID -> what it wants (from the presence it sent the owner)
        self.remote: dict[str, dict[JID, Interest]] = {}
        self._tails: dict[str, asyncio.Task[Any]] = {}

    # -- who wants what -----------------------------------------------------------------------

    def _available(self, username: str) -> list[Session]:
        return [s for s in self.host.sessions.of_user(username)
                if s.available and not s.closed and s.jid is not None]

    async def wanted(self, session: Session) -> frozenset[str]:
        assert session.jid is not None
        interest = session.data.get(SESSION_KEY)
        caps = interest.caps if isinstance(interest, Interest) else caps_of(session.presence)
        return notify_nodes(await self.caps.features(session.jid, caps))

    async def recipients(self, owner: str, node: str, config: NodeConfig) -> list[JID]:
        subscribers = await access.subscribers(self.host, owner, config)
        bares = dict.fromkeys([f"{owner}@{self.host.domain}", *subscribers])
        out: list[JID] = []
        remote = self.remote.get(owner, {})
        for bare in bares:
            jid = JID.parse(bare)
            if jid.domain == self.host.domain and jid.local is not None:
                for session in self._available(jid.local):
                    if node in await self.wanted(session):
                        assert session.jid is not None
                        out.append(session.jid)
            else:
                out.extend(full for full, interest in remote.items()
                           if full.bare == jid and node in interest.nodes)
        return out

    # -- sending ------------------------------------------------------------------------------

    def broadcast(self, owner: str, node: str, config: NodeConfig,
                  payload: etree._Element) -> None:
        """Notify in the background, in publication order per owner.

        Never inline: the publisher's own session may have to answer a caps query first,
        and it answers only after the publish it is waiting on.
        """
        previous = self._tails.get(owner)

        async def run() -> None:
            if previous is not None:
                await asyncio.wait([previous])
            owner_jid = f"{owner}@{self.host.domain}"
            for to in await self.recipients(owner, node, config):
                await self.host.router.send(event_message(owner_jid, str(to), payload))

        task = self.host.spawn(run(), name=f"pep-notify-{owner}")
        self._tails[owner] = task
        task.add_done_callback(lambda t: self._tails.pop(owner, None)
                               if self._tails.get(owner) is t else None)

    async def send_last_items(self, to: JID, owners: list[str], nodes: frozenset[str]) -> None:
        """§4.3.4: the last item of each of ``nodes`` of ``owners`` that ``to`` may see."""
        if not nodes or not owners:
            return
        repo = self.host.storage.pep
        for owner, node, raw in await repo.find_nodes(owners, sorted(nodes)):
            config = NodeConfig.from_json(raw)
            if config.send_last_published_item == "never":
                continue
            if not await access.may_retrieve(self.host, owner, config, to):
                continue
            for item in await repo.items(owner, node, last=1):
                payload = etree.fromstring(item.xml.encode(), _PARSER)
                msg = event_message(f"{owner}@{self.host.domain}", str(to),
                                    items_payload(node, item.item_id, payload), item.published_at)
                await self.host.router.send(msg)

    # -- presence -----------------------------------------------------------------------------

    async def _interest(self, jid: JID, interest: Interest,
                        presence: etree._Element) -> frozenset[str]:
        """Update what a resource wants from its new presence; returns the nodes it newly
        wants. Presence without caps changes nothing (XEP-0115 §8.4 caps optimisation)."""
        caps = caps_of(presence)
        if caps is None:
            return frozenset()
        interest.caps = caps
        wanted = notify_nodes(await self.caps.features(jid, caps))
        new = wanted - interest.nodes
        interest.nodes = wanted
        return new

    async def local_presence(self, session: Session, presence: etree._Element) -> None:
        """A local resource's available presence: last items of the nodes it newly wants."""
        jid, username = session.jid, session.username
        if jid is None or username is None:
            return
        interest = session.data.setdefault(SESSION_KEY, Interest())
        assert isinstance(interest, Interest)
        new = await self._interest(jid, interest, presence)
        if not new:
            return
        items, _ = await self.host.storage.roster.get(username)
        owners = [username]
        for item in items:
            contact = JID.parse(item.jid)
            if (item.subscription in ("to", "both") and contact.domain == self.host.domain
                    and contact.local is not None):
                owners.append(contact.local)
        await self.send_last_items(jid, owners, new)

    async def remote_presence(self, owner: str, frm: JID, presence: etree._Element) -> None:
        """Presence from a remote resource to a local owner: track it, send last items."""
        known = self.remote.setdefault(owner, {})
        if presence.get("type") is not None:  # unavailable, error: gone
            known.pop(frm, None)
            if not known:
                del self.remote[owner]
            return
        new = await self._interest(frm, known.setdefault(frm, Interest()), presence)
        await self.send_last_items(frm, [owner], new)


_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
