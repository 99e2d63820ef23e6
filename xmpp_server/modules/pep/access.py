"""XEP-0060 §4.5 access models, as PEP applies them (XEP-0163 §4.3, XEP-0223 §3).

- presence: the owner and contacts subscribed to the owner's presence (From or Both);
- open: anyone; notifications still go only to the owner's presence subscribers, the
  entities whose resources the service learns of through presence;
- whitelist: the owner and the JIDs given a member affiliation (XEP-0223 private storage:
  the owner alone).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xmpp_server.errors import StanzaError
from xmpp_server.modules.pep.nodes import NodeConfig, pubsub_error

if TYPE_CHECKING:
    from xmpp_server.host import Host
    from xmpp_server.jid import JID

SUBSCRIBED = ("from", "both")


def is_owner(host: Host, owner: str, jid: JID) -> bool:
    return jid.local == owner and jid.domain == host.domain


async def may_retrieve(host: Host, owner: str, config: NodeConfig, jid: JID) -> bool:
    if is_owner(host, owner, jid) or config.access_model == "open":
        return True
    if config.access_model == "whitelist":
        return jid.bare_str in config.whitelist
    item = await host.storage.roster.get_item(owner, jid.bare_str)
    return item is not None and item.subscription in SUBSCRIBED


def denied(config: NodeConfig) -> StanzaError:
    """XEP-0060 §6.5.9.3 and §6.5.9.5: why an entity may not have the items."""
    if config.access_model == "whitelist":
        return pubsub_error("not-allowed", "closed-node")
    return pubsub_error("not-authorized", "presence-subscription-required")


async def subscribers(host: Host, owner: str, config: NodeConfig) -> list[str]:
    """Bare JIDs, besides the owner, whose resources get the node's notifications."""
    if config.access_model == "whitelist":
        return list(config.whitelist)
    items, _ = await host.storage.roster.get(owner)
    return [item.jid for item in items if item.subscription in SUBSCRIBED]
