"""XEP-0163: the personal pubsub service of each account, on the XEP-0060 subset PEP needs.

The operations here are shared by the protocol handlers (``iq.py``) and by features that
publish for the user (vCard avatars, bookmarks compatibility). ``actor`` is the client that
asked, or None when the server acts for the user; features bridging one format to another
react only to what clients did, so no bridge echoes its own writes.

Events fired after a change: ``pep-published`` and ``pep-retracted`` (arg: ``PepChange``).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lxml import etree

from storage.pep import PepItem, Published
from xmpp_server.errors import StanzaError
from xmpp_server.modules.pep import access
from xmpp_server.modules.pep.nodes import EVENT, NodeConfig, pubsub_error
from xmpp_server.modules.pep.notify import Notifier, items_payload
from xmpp_server.stanza import element

if TYPE_CHECKING:
    from xmpp_server.host import Host
    from xmpp_server.jid import JID

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


@dataclass(frozen=True)
class PepChange:
    owner: str  # username
    node: str
    item_id: str
    payload: etree._Element | None  # None for a retraction
    actor: JID | None  # the client that made the change; None: the server


def parse_item(item: PepItem) -> etree._Element:
    return etree.fromstring(item.xml.encode(), _PARSER)


class PepService:
    def __init__(self, host: Host) -> None:
        self.host = host
        self.notifier = Notifier(host)
        limits = host.config.limits
        self.max_item_bytes = limits.max_pep_item_bytes
        self.max_items = limits.max_pep_items
        self.max_nodes = limits.max_pep_nodes

    async def config(self, owner: str, node: str) -> NodeConfig | None:
        raw = await self.host.storage.pep.node(owner, node)
        return None if raw is None else NodeConfig.from_json(raw)

    async def existing(self, owner: str, node: str) -> NodeConfig:
        config = await self.config(owner, node)
        if config is None:
            raise StanzaError("item-not-found", f"no node {node!r}")
        return config

    # -- publishing ---------------------------------------------------------------------------

    async def publish(self, owner: str, node: str, item_id: str | None,
                      payload: etree._Element, *, options: dict[str, Any] | None = None,
                      defaults: NodeConfig | None = None, actor: JID | None = None) -> str:
        """Publish one item (XEP-0060 §7.1), creating the node if needed (§7.1.4 auto-create).

        ``options`` are publish-options (§7.1.5): the configuration of a node made for this
        item, and preconditions an existing node must meet. ``defaults`` configure a node the
        server makes for its own publishing. Returns the item id (generated if none).
        """
        xml = etree.tostring(payload).decode()
        if len(xml) > self.max_item_bytes:
            raise pubsub_error("not-acceptable", "payload-too-big",
                               f"an item may hold at most {self.max_item_bytes} bytes")
        existing = await self.config(owner, node)
        if existing is not None and options and not existing.matches(options):
            raise pubsub_error("conflict", "precondition-not-met",
                               "the node's configuration differs from the publish-options")
        config = existing or (defaults or NodeConfig()).with_changes(options or {})
        item_id = item_id or secrets.token_hex(8)
        keep, trim = config.keep(self.max_items)
        result = await self.host.storage.pep.publish(
            owner, node, item_id, xml, config=config.to_json(), keep=keep, trim=trim,
            max_nodes=self.max_nodes,
        )
        if result is Published.NODE_FULL:
            raise StanzaError("policy-violation", f"the node holds {keep} items, its maximum")
        if result is Published.TOO_MANY_NODES:
            raise StanzaError("policy-violation", f"at most {self.max_nodes} nodes per user")
        if result is Published.NO_USER:
            raise StanzaError("item-not-found", "no such account")
        self.notifier.broadcast(owner, node, config, items_payload(node, item_id, payload))
        await self.host.events.fire("pep-published",
                                    PepChange(owner, node, item_id, payload, actor))
        return item_id

    async def retract(self, owner: str, node: str, item_id: str, *,
                      notify: bool | None = None, actor: JID | None = None) -> None:
        """XEP-0060 §7.2: delete an item, and tell the subscribers if asked or configured."""
        config = await self.existing(owner, node)
        if not await self.host.storage.pep.retract(owner, node, item_id):
            raise StanzaError("item-not-found", f"no item {item_id!r}")
        if config.notify_retract if notify is None else notify:
            self.notifier.broadcast(owner, node, config,
                                    items_payload(node, item_id, retract=True))
        await self.host.events.fire("pep-retracted", PepChange(owner, node, item_id, None, actor))

    # -- reading ------------------------------------------------------------------------------

    async def items(self, owner: str, node: str, requester: JID, *,
                    ids: list[str] | None = None, last: int | None = None) -> list[PepItem]:
        """XEP-0060 §6.5: items the requester may see, or the error saying why not."""
        config = await self.existing(owner, node)
        if not await access.may_retrieve(self.host, owner, config, requester):
            raise access.denied(config)
        return await self.host.storage.pep.items(owner, node, ids=ids, last=last)

    async def visible_nodes(self, owner: str, requester: JID) -> list[str]:
        nodes = await self.host.storage.pep.nodes(owner)
        return sorted([node for node, raw in nodes.items()
                       if await access.may_retrieve(self.host, owner,
                                                    NodeConfig.from_json(raw), requester)])

    # -- the owner's use cases (XEP-0060 §8) ----------------------------------------------------

    async def create(self, owner: str, node: str, changes: dict[str, Any]) -> None:
        if await self.config(owner, node) is not None:
            raise StanzaError("conflict", f"the node {node!r} exists")
        config = NodeConfig().with_changes(changes)
        result = await self.host.storage.pep.create(owner, node, config.to_json(),
                                                    self.max_nodes)
        if result is Published.TOO_MANY_NODES:
            raise StanzaError("policy-violation", f"at most {self.max_nodes} nodes per user")

    async def configure(self, owner: str, node: str, changes: dict[str, Any]) -> NodeConfig:
        config = (await self.existing(owner, node)).with_changes(changes)
        await self.host.storage.pep.configure(owner, node, config.to_json())
        return config

    async def delete(self, owner: str, node: str) -> None:
        """§8.4: delete the node; its subscribers are told."""
        config = await self.existing(owner, node)
        await self.host.storage.pep.delete(owner, node)
        self.notifier.broadcast(owner, node, config, element("{" + EVENT + "}delete", node=node))
