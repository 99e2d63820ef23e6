"""XEP-0030: Service Discovery of the server and its accounts, with XEP-0115 server caps.

The server's features are the union of every enabled module's ``features``. Items and account
information are open to other modules through events, fired with a ``DiscoReply`` that handlers
extend and must not claim (return ``None``):

- ``disco-items/host``: the server's services (MUC, upload...), none by default;
- ``disco-info/account``, ``disco-items/account``: what a bare JID offers (PEP, later).

A module that serves a disco *node* registers its own IQ handler with a higher priority and
returns ``True`` for its node; any node nobody claims is ``item-not-found``.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lxml import etree

from xmpp_server import namespaces as ns
from xmpp_server.errors import StanzaError
from xmpp_server.modules.base import Module
from xmpp_server.stanza import Stanza, element, iq_result, sub

if TYPE_CHECKING:
    from xmpp_server.host import Host
    from xmpp_server.jid import JID
    from xmpp_server.stream.session import Session

INFO = "{" + ns.DISCO_INFO + "}query"
ITEMS = "{" + ns.DISCO_ITEMS + "}query"
CAPS_NODE = "https://xmppd.invalid/caps"
SERVER_IDENTITY = ("server", "im", None, "xmppd")

Identity = tuple[str, str, str | None, str | None]  # category, type, xml:lang, name
Form = Mapping[str, Sequence[str]]  # var -> values, FORM_TYPE included


def caps_ver(identities: Iterable[Identity], features: Iterable[str],
             forms: Iterable[Form] = ()) -> str:
    """XEP-0115 §5.1: the sha-1 verification string of a disco#info result."""
    s = "".join(f"{cat}/{type_}/{lang or ''}/{name or ''}<" for cat, type_, lang, name in sorted(
        identities, key=lambda i: (i[0], i[1], i[2] or "", i[3] or "")))
    s += "".join(f + "<" for f in sorted(features))
    for form in sorted(forms, key=lambda f: f["FORM_TYPE"][0]):
        s += form["FORM_TYPE"][0] + "<"
        for var in sorted(v for v in form if v != "FORM_TYPE"):
            s += var + "<" + "".join(v + "<" for v in sorted(form[var]))
    return base64.b64encode(hashlib.sha1(s.encode()).digest()).decode()


async def may_see_account(host: Host, username: str, requester: JID) -> bool:
    """The user themself, or a contact subscribed to the user's presence (RFC 6121 §3)."""
    if requester.domain == host.domain and requester.local == username:
        return True
    item = await host.storage.roster.get_item(username, str(requester.bare))
    return item is not None and item.subscription in ("from", "both")


@dataclass
class DiscoReply:
    """A disco result being built: ``stanza`` is the request, ``query`` the reply payload."""

    stanza: Stanza
    query: etree._Element

    def identity(self, category: str, type_: str, name: str | None = None) -> None:
        sub(self.query, "identity", category=category, type=type_, name=name)

    def feature(self, var: str) -> None:
        sub(self.query, "feature", var=var)

    def item(self, jid: str, name: str | None = None, node: str | None = None) -> None:
        sub(self.query, "item", jid=jid, name=name, node=node)


class Disco(Module):
    name = "disco"
    xeps = (30, 115)
    features = (ns.DISCO_INFO, ns.DISCO_ITEMS)

    def setup(self) -> None:
        self._ver: str | None = None
        self.on_iq("get", "host", INFO, self.host_info)
        self.on_iq("get", "host", ITEMS, self.host_items)
        self.on_iq("get", "bare", INFO, self.account_info)
        self.on_iq("get", "bare", ITEMS, self.account_items)
        self.offer(self._caps_feature)

    # -- the server ---------------------------------------------------------------------------

    def server_features(self) -> list[str]:
        return sorted(self.host.disco_features())

    @property
    def ver(self) -> str:
        """Computed on first use, when every module is set up; modules do not change later."""
        if self._ver is None:
            self._ver = caps_ver([SERVER_IDENTITY], self.server_features())
        return self._ver

    def _caps_feature(self, session: Session, features: etree._Element) -> None:
        # XEP-0115 §6.3: the server's own capabilities as a stream feature.
        sub(features, "{" + ns.CAPS + "}c", hash="sha-1", node=CAPS_NODE, ver=self.ver)

    async def host_info(self, stanza: Stanza) -> bool:
        node = _node(stanza)
        # XEP-0115 §6.2: the caps node answers like the entity itself.
        if node is not None and node != f"{CAPS_NODE}#{self.ver}":
            raise StanzaError("item-not-found")
        query = element(INFO, node=node)
        category, type_, _, name = SERVER_IDENTITY
        reply = DiscoReply(stanza, query)
        reply.identity(category, type_, name)
        for var in self.server_features():
            reply.feature(var)
        await self.host.router.reply(stanza, iq_result(stanza, query))
        return True

    async def host_items(self, stanza: Stanza) -> bool:
        if _node(stanza) is not None:
            raise StanzaError("item-not-found")
        query = element(ITEMS)
        await self.host.events.fire("disco-items/host", DiscoReply(stanza, query))
        await self.host.router.reply(stanza, iq_result(stanza, query))
        return True

    # -- accounts -----------------------------------------------------------------------------

    async def _account(self, stanza: Stanza) -> bool:
        """Prosody's rule: only the user and their presence subscribers see the account; the
        rest get service-unavailable, as if there were no account (RFC 6121 §8.5.1)."""
        assert stanza.frm is not None
        target = stanza.to or stanza.frm.bare
        assert target.local is not None
        return await may_see_account(self.host, target.local, stanza.frm)

    async def account_info(self, stanza: Stanza) -> bool:
        if not await self._account(stanza):
            return False
        if _node(stanza) is not None:
            raise StanzaError("item-not-found")
        query = element(INFO)
        reply = DiscoReply(stanza, query)
        reply.identity("account", "registered")
        reply.feature(ns.DISCO_INFO)
        reply.feature(ns.DISCO_ITEMS)
        await self.host.events.fire("disco-info/account", reply)
        await self.host.router.reply(stanza, iq_result(stanza, query))
        return True

    async def account_items(self, stanza: Stanza) -> bool:
        if not await self._account(stanza):
            return False
        if _node(stanza) is not None:
            raise StanzaError("item-not-found")
        query = element(ITEMS)
        await self.host.events.fire("disco-items/account", DiscoReply(stanza, query))
        await self.host.router.reply(stanza, iq_result(stanza, query))
        return True


def _node(stanza: Stanza) -> str | None:
    child = stanza.child
    return child.get("node") if child is not None else None
