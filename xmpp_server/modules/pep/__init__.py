"""XEP-0163: Personal Eventing Protocol — a pubsub service at every account's bare JID.

Built on the XEP-0060 subset PEP needs (``iq.py``, ``service.py``), with the access models
presence, open and whitelist (``access.py``), notifications filtered by entity capabilities
(``notify.py``, ``caps.py``), and XEP-0223 private nodes (whitelist + persistent items).
XEP-0084 avatars and XEP-0172 nicknames are PEP nodes like any other.

The account announces the service in disco (identity pubsub/pep, §4.1) and lists the nodes
the requester may see. Other features reach the service as ``host.modules["pep"].service``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xmpp_server.modules.base import Module
from xmpp_server.modules.disco import DiscoReply
from xmpp_server.modules.pep.iq import PO, PS, PubsubHandlers
from xmpp_server.modules.pep.nodes import PUBSUB
from xmpp_server.modules.pep.service import PepChange, PepService
from xmpp_server.stanza import element, iq_result

if TYPE_CHECKING:
    from xmpp_server.stanza import Stanza

__all__ = ["Pep", "PepChange", "PepService"]

# XEP-0060 §10 features of what iq.py implements, announced on the account.
ACCOUNT_FEATURES = (PUBSUB, *(PUBSUB + "#" + f for f in (
    "access-open", "access-presence", "access-whitelist", "auto-create", "auto-subscribe",
    "config-node", "config-node-max", "create-and-configure", "create-nodes", "delete-items",
    "delete-nodes", "filtered-notifications", "item-ids", "last-published", "modify-affiliations",
    "multi-items", "persistent-items", "presence-notifications", "publish", "publish-options",
    "retract-items", "retrieve-default", "retrieve-items",
)))
_DISCO_INFO = "{http://jabber.org/protocol/disco#info}query"


class Pep(Module):
    name = "pep"
    xeps = (60, 84, 163, 172, 223)

    def setup(self) -> None:
        self.service = PepService(self.host)
        handlers = PubsubHandlers(self.host, self.service)
        self.on_iq("set", "bare", PS + "pubsub", handlers.pubsub_set)
        self.on_iq("get", "bare", PS + "pubsub", handlers.pubsub_get)
        self.on_iq("set", "bare", PO + "pubsub", handlers.owner_set)
        self.on_iq("get", "bare", PO + "pubsub", handlers.owner_get)
        self.on_iq("get", "bare", _DISCO_INFO, self.node_info, priority=10)
        self.on("disco-info/account", self.account_info)
        self.on("disco-items/account", self.account_items)
        self.on("presence/broadcast", self.own_presence, priority=10)
        self.on("presence/bare", self.contact_presence, priority=10)
        self.on("user-deleted", self.user_deleted)

    # -- disco (XEP-0163 §4.1, XEP-0060 §5) -----------------------------------------------------

    def account_info(self, reply: DiscoReply) -> None:
        reply.identity("pubsub", "pep")
        for feature in ACCOUNT_FEATURES:
            reply.feature(feature)

    async def account_items(self, reply: DiscoReply) -> None:
        stanza = reply.stanza
        assert stanza.frm is not None
        owner = stanza.to or stanza.frm.bare
        assert owner.local is not None
        for node in await self.service.visible_nodes(owner.local, stanza.frm):
            reply.item(owner.bare_str, node=node)

    async def node_info(self, stanza: Stanza) -> bool | None:
        """disco#info of a node (XEP-0060 §5.3); anything else is the disco module's."""
        query = stanza.child
        node = query.get("node") if query is not None else None
        if not node or stanza.frm is None:
            return None
        owner = stanza.to or stanza.frm.bare
        assert owner.local is not None
        if node not in await self.service.visible_nodes(owner.local, stanza.frm):
            return None
        result = element(_DISCO_INFO, node=node)
        reply = DiscoReply(stanza, result)
        reply.identity("pubsub", "leaf")
        reply.feature(PUBSUB)
        await self.host.router.reply(stanza, iq_result(stanza, result))
        return True

    # -- presence: who wants notifications (XEP-0163 §4.3) ----------------------------------

    def own_presence(self, stanza: Stanza) -> None:
        session = stanza.origin
        if session is not None and stanza.type is None:
            self.host.spawn(self.service.notifier.local_presence(session, stanza.el),
                            name="pep-presence")

    def contact_presence(self, stanza: Stanza) -> None:
        frm, to = stanza.frm, stanza.to
        if (frm is None or to is None or to.local is None or frm.resource is None
                or frm.domain == self.host.domain):
            return  # local resources are looked up in the session registry instead
        if stanza.type in (None, "unavailable", "error"):
            self.host.spawn(self.service.notifier.remote_presence(to.local, frm, stanza.el),
                            name="pep-presence")

    def user_deleted(self, username: str) -> None:
        self.service.notifier.remote.pop(username, None)
